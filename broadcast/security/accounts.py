"""Operator accounts (用户账号): creation, roles, password changes and the first-admin bootstrap.

Owns the ``accounts`` table. Must never store or log a password in clear: only argon2 hashes reach the
database, and a one-time password is returned to the caller once and never kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Column, Integer, String, Table, Text, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from broadcast.clock import Clock
from broadcast.security.passwords import Passwords, check_policy, generate_one_time_password
from broadcast.security.roles import Role, parse_roles
from broadcast.store.tables import UtcDateTime, metadata

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("roles", String(200), nullable=False),  # space-separated Role values
    Column("must_change_password", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("password_changed_at", UtcDateTime, nullable=False),
)

FIRST_ADMIN = "admin"
_USERNAME = re.compile(r"^[A-Za-z0-9_.\-]{2,64}$")


class AccountErrorKind(StrEnum):
    INVALID_USERNAME = "invalid_username"
    EXISTS = "exists"
    NOT_FOUND = "not_found"
    NO_ROLES = "no_roles"


_MESSAGES = {
    AccountErrorKind.INVALID_USERNAME: "用户名只能包含字母、数字、点、下划线和连字符，长度 2–64，请修改后重试",
    AccountErrorKind.EXISTS: "该用户名已存在，请换一个用户名",
    AccountErrorKind.NOT_FOUND: "找不到该用户，请检查用户名",
    AccountErrorKind.NO_ROLES: "至少需要指定一个角色（operator、approver、admin、auditor）",
}


class AccountError(ValueError):
    def __init__(self, kind: AccountErrorKind, username: str) -> None:
        self.kind = kind
        self.username = username
        self.message = _MESSAGES[kind]
        super().__init__(f"account {username!r}: {kind}")


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    roles: frozenset[Role]
    must_change_password: bool
    disabled: bool
    created_at: datetime
    password_changed_at: datetime
    password_hash: str

    def public_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "username": self.username,
            "roles": sorted(r.value for r in self.roles),
            "must_change_password": self.must_change_password,
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
        }


def _row_to_account(row: object) -> Account:
    m = row._mapping  # type: ignore[attr-defined]
    return Account(
        id=int(m["id"]),
        username=str(m["username"]),
        roles=parse_roles(str(m["roles"]).split()),
        must_change_password=bool(m["must_change_password"]),
        disabled=bool(m["disabled"]),
        created_at=m["created_at"],
        password_changed_at=m["password_changed_at"],
        password_hash=str(m["password_hash"]),
    )


def _roles_text(roles: Iterable[Role]) -> str:
    return " ".join(sorted(r.value for r in roles))


async def get_by_username(engine: AsyncEngine, username: str) -> Account | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(accounts).where(accounts.c.username == username))).first()
    return None if row is None else _row_to_account(row)


async def get_by_id(engine: AsyncEngine, account_id: int) -> Account | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(accounts).where(accounts.c.id == account_id))).first()
    return None if row is None else _row_to_account(row)


async def list_accounts(engine: AsyncEngine) -> list[Account]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(accounts).order_by(accounts.c.username))).all()
    return [_row_to_account(r) for r in rows]


async def _insert(
    conn: AsyncConnection,
    username: str,
    password_hash: str,
    roles: frozenset[Role],
    must_change: bool,
    now: datetime,
) -> int:
    res = await conn.execute(
        insert(accounts).values(
            username=username,
            password_hash=password_hash,
            roles=_roles_text(roles),
            must_change_password=must_change,
            disabled=False,
            created_at=now,
            password_changed_at=now,
        )
    )
    pk = res.inserted_primary_key
    assert pk is not None
    return int(pk[0])


async def create_account(
    engine: AsyncEngine,
    clock: Clock,
    passwords: Passwords,
    username: str,
    roles: Iterable[Role],
    password: str | None = None,
) -> tuple[Account, str | None]:
    """Create an account. Without ``password`` a one-time password is generated, returned once, and the
    account must change it at first login. Returns (account, one_time_password_or_None)."""
    role_set = frozenset(roles)
    if not _USERNAME.match(username):
        raise AccountError(AccountErrorKind.INVALID_USERNAME, username)
    if not role_set:
        raise AccountError(AccountErrorKind.NO_ROLES, username)
    one_time = None
    if password is None:
        one_time = password = generate_one_time_password()
    check_policy(username, password)
    hashed = await passwords.hash(password)
    try:
        async with engine.begin() as conn:
            await _insert(conn, username, hashed, role_set, one_time is not None, clock.now())
    except IntegrityError:
        raise AccountError(AccountErrorKind.EXISTS, username) from None
    account = await get_by_username(engine, username)
    assert account is not None
    return account, one_time


async def ensure_first_admin(engine: AsyncEngine, clock: Clock, passwords: Passwords) -> str | None:
    """At first start (no account at all) create "admin" with a one-time password and return it — the
    caller prints it ONCE. Returns None when any account already exists."""
    async with engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(accounts))).scalar_one()
    if count:
        return None
    one_time = generate_one_time_password()
    hashed = await passwords.hash(one_time)
    try:
        async with engine.begin() as conn:
            # Re-check inside the transaction: two processes starting together must not both bootstrap.
            again = (await conn.execute(select(func.count()).select_from(accounts))).scalar_one()
            if again:
                return None
            await _insert(conn, FIRST_ADMIN, hashed, frozenset({Role.ADMIN}), True, clock.now())
    except IntegrityError:
        return None
    return one_time


async def set_password(
    engine: AsyncEngine,
    clock: Clock,
    passwords: Passwords,
    account: Account,
    new_password: str,
    *,
    must_change: bool = False,
) -> None:
    """Store a new password (policy-checked). ``must_change`` marks it one-time (admin reset)."""
    check_policy(account.username, new_password)
    hashed = await passwords.hash(new_password)
    async with engine.begin() as conn:
        await conn.execute(
            update(accounts)
            .where(accounts.c.id == account.id)
            .values(password_hash=hashed, must_change_password=must_change, password_changed_at=clock.now())
        )


async def rehash(engine: AsyncEngine, account_id: int, new_hash: str) -> None:
    """Store an upgraded hash of the same password (argon2 parameters changed)."""
    async with engine.begin() as conn:
        await conn.execute(update(accounts).where(accounts.c.id == account_id).values(password_hash=new_hash))


async def set_roles(engine: AsyncEngine, username: str, roles: Iterable[Role]) -> None:
    role_set = frozenset(roles)
    if not role_set:
        raise AccountError(AccountErrorKind.NO_ROLES, username)
    async with engine.begin() as conn:
        res = await conn.execute(
            update(accounts).where(accounts.c.username == username).values(roles=_roles_text(role_set))
        )
    if res.rowcount == 0:
        raise AccountError(AccountErrorKind.NOT_FOUND, username)


async def set_disabled(engine: AsyncEngine, username: str, disabled: bool) -> None:
    async with engine.begin() as conn:
        res = await conn.execute(
            update(accounts).where(accounts.c.username == username).values(disabled=disabled)
        )
    if res.rowcount == 0:
        raise AccountError(AccountErrorKind.NOT_FOUND, username)
