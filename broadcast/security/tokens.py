"""API tokens for machine sources (e.g. the meteorological feed), sent as ``Authorization: Bearer <token>``.

Owns the ``api_tokens`` table: each token stored only as its SHA-256, with its scopes (permissions from
``roles.TOKEN_SCOPES``), an optional expiry and revocation. Must never store or log the token itself;
it is returned to the creating admin once.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Integer, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.security.roles import TOKEN_SCOPES, Permission
from broadcast.security.sessions import hash_token
from broadcast.store.tables import UtcDateTime, metadata

TOKEN_PREFIX = "ebt_"

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scopes", String(400), nullable=False),  # space-separated Permission values
    Column("created_by", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
)


class TokenScopeError(ValueError):
    def __init__(self, scope: str) -> None:
        self.scope = scope
        allowed = "、".join(sorted(s.value for s in TOKEN_SCOPES))
        self.message = f"令牌权限范围 {scope!r} 不允许；可选：{allowed}"
        super().__init__(f"token scope {scope!r} not allowed")


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    scopes: frozenset[Permission]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def public_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": sorted(s.value for s in self.scopes),
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def parse_scopes(values: Iterable[str]) -> frozenset[Permission]:
    out: set[Permission] = set()
    for v in values:
        try:
            p = Permission(v)
        except ValueError:
            raise TokenScopeError(v) from None
        if p not in TOKEN_SCOPES:
            raise TokenScopeError(v)
        out.add(p)
    if not out:
        raise TokenScopeError("")
    return frozenset(out)


def _row(m: object) -> ApiToken:
    r = m._mapping  # type: ignore[attr-defined]
    return ApiToken(
        id=int(r["id"]),
        name=str(r["name"]),
        scopes=frozenset(Permission(s) for s in str(r["scopes"]).split()),
        created_by=str(r["created_by"]),
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        revoked_at=r["revoked_at"],
    )


async def create_token(
    engine: AsyncEngine,
    clock: Clock,
    name: str,
    scopes: Iterable[str],
    created_by: str,
    valid_for: timedelta | None = None,
) -> tuple[str, ApiToken]:
    """Create a token; returns (the bearer secret — shown once, token record)."""
    scope_set = parse_scopes(scopes)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    async with engine.begin() as conn:
        res = await conn.execute(
            insert(api_tokens).values(
                name=name[:100],
                token_hash=hash_token(secret),
                scopes=" ".join(sorted(s.value for s in scope_set)),
                created_by=created_by,
                created_at=now,
                expires_at=now + valid_for if valid_for else None,
                revoked_at=None,
            )
        )
        pk = res.inserted_primary_key
        assert pk is not None
        row = (await conn.execute(select(api_tokens).where(api_tokens.c.id == pk[0]))).one()
    return secret, _row(row)


async def resolve_token(engine: AsyncEngine, clock: Clock, secret: str) -> ApiToken | None:
    """The live token for a bearer secret, or None (unknown, revoked or expired)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(api_tokens).where(api_tokens.c.token_hash == hash_token(secret)))
        ).first()
    if row is None:
        return None
    token = _row(row)
    now = clock.now()
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    return token


async def list_tokens(engine: AsyncEngine) -> list[ApiToken]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(api_tokens).order_by(api_tokens.c.id))).all()
    return [_row(r) for r in rows]


async def revoke_token(engine: AsyncEngine, clock: Clock, token_id: int) -> bool:
    async with engine.begin() as conn:
        res = await conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=clock.now())
        )
    return bool(res.rowcount)


async def sync_configured_tokens(
    engine: AsyncEngine, clock: Clock, entries: Iterable[Mapping[str, Any]]
) -> list[str]:
    """Make the tokens named in the configuration (``[[intake.tokens]]``) exist with their scopes.

    Each entry: ``name``, ``scopes`` and either ``token_sha256`` (preferred: the secret stays out of the
    file) or ``token`` (the secret itself, for the demo). A configured token replaces an earlier one of
    the same name created by the configuration; tokens created through the API are left alone.
    Returns the names synced.
    """
    names: list[str] = []
    now = clock.now()
    async with engine.begin() as conn:
        for entry in entries:
            name = str(entry["name"])
            digest = str(entry.get("token_sha256") or "")
            if not digest:
                secret = str(entry.get("token") or "")
                if not secret.startswith(TOKEN_PREFIX) or len(secret) < 20:
                    raise TokenScopeError(
                        f"配置的接入令牌 {name} 无效：token 须以 {TOKEN_PREFIX} 开头且不少于 20 个字符，"
                        "或改填 token_sha256"
                    )
                digest = hash_token(secret)
            scopes = " ".join(sorted(s.value for s in parse_scopes(entry.get("scopes", ()))))
            await conn.execute(
                update(api_tokens)
                .where(
                    api_tokens.c.name == name,
                    api_tokens.c.created_by == "config",
                    api_tokens.c.revoked_at.is_(None),
                )
                .where(api_tokens.c.token_hash != digest)
                .values(revoked_at=now)
            )
            existing = (
                await conn.execute(select(api_tokens.c.id).where(api_tokens.c.token_hash == digest))
            ).first()
            if existing is None:
                await conn.execute(
                    insert(api_tokens).values(
                        name=name[:100], token_hash=digest, scopes=scopes, created_by="config", created_at=now
                    )
                )
            else:
                await conn.execute(
                    update(api_tokens)
                    .where(api_tokens.c.id == existing[0])
                    .values(scopes=scopes, revoked_at=None)
                )
            names.append(name)
    return names
