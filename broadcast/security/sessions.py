"""Server-side login sessions (会话) behind the ``ebc_session`` cookie.

Owns the ``account_sessions`` table: a random 32-byte token per login, stored only as its SHA-256, with
its CSRF token, idle timeout and absolute lifetime. Must never store the cookie value itself, and never
accept a session whose row is gone (logout deletes the row, so a replayed cookie is refused).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, ForeignKey, Integer, String, Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.store.tables import UtcDateTime, metadata

COOKIE_NAME = "ebc_session"

account_sessions = Table(
    "account_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("remote", String(64), nullable=False, default=""),
)


@dataclass(frozen=True)
class SessionPolicy:
    idle_timeout: timedelta = timedelta(minutes=30)
    absolute_lifetime: timedelta = timedelta(hours=12)
    # last_seen is written at most this often, so a busy console does not write on every request.
    touch_interval: timedelta = timedelta(seconds=60)


@dataclass(frozen=True)
class Session:
    token_hash: str
    account_id: int
    csrf_token: str
    created_at: datetime
    last_seen: datetime


def hash_token(token: str) -> str:
    """Tokens are 256-bit random, so a plain SHA-256 suffices (no brute force to slow down)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_session(
    engine: AsyncEngine, clock: Clock, account_id: int, remote: str
) -> tuple[str, Session]:
    """Open a session; returns (cookie token — give it to the browser and forget it, session)."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session = Session(hash_token(token), account_id, secrets.token_urlsafe(32), now, now)
    async with engine.begin() as conn:
        await conn.execute(
            insert(account_sessions).values(
                token_hash=session.token_hash,
                account_id=account_id,
                csrf_token=session.csrf_token,
                created_at=now,
                last_seen=now,
                remote=remote[:64],
            )
        )
    return token, session


async def resolve_session(
    engine: AsyncEngine, clock: Clock, policy: SessionPolicy, token: str
) -> Session | None:
    """The live session for a cookie value, or None. Expired sessions are deleted on sight."""
    if not token or len(token) > 200:
        return None
    token_hash = hash_token(token)
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(account_sessions).where(account_sessions.c.token_hash == token_hash))
        ).first()
    if row is None:
        return None
    m = row._mapping
    session = Session(token_hash, int(m["account_id"]), str(m["csrf_token"]), m["created_at"], m["last_seen"])
    now = clock.now()
    if now - session.last_seen > policy.idle_timeout or now - session.created_at > policy.absolute_lifetime:
        await delete_session(engine, token_hash)
        return None
    if now - session.last_seen >= policy.touch_interval:
        async with engine.begin() as conn:
            await conn.execute(
                update(account_sessions)
                .where(account_sessions.c.token_hash == token_hash)
                .values(last_seen=now)
            )
    return session


async def delete_session(engine: AsyncEngine, token_hash: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(account_sessions).where(account_sessions.c.token_hash == token_hash))


async def delete_sessions_of(engine: AsyncEngine, account_id: int, *, keep: str | None = None) -> int:
    """End every session of an account (password change, disable), optionally keeping one by hash."""
    stmt = delete(account_sessions).where(account_sessions.c.account_id == account_id)
    if keep is not None:
        stmt = stmt.where(account_sessions.c.token_hash != keep)
    async with engine.begin() as conn:
        res = await conn.execute(stmt)
    return int(res.rowcount)
