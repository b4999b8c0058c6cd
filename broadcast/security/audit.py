"""Tamper-evident audit ledger (审计日志): every security-relevant action, hash-chained.

Owns the ``audit_ledger`` table. Each row stores ``hash = sha256(prev_hash ‖ canonical JSON of the row)``
where the canonical JSON covers seq, at, actor, remote, action, target and detail; the first row's
prev_hash is 64 zeros. ``verify`` recomputes the chain and names every edited, deleted, reordered or
forged row. Must never update or delete a row, and never write a password or token into ``detail``.

Appends are serialised per engine with an asyncio.Lock; the UNIQUE ``seq`` column catches a second
process appending at the same time (the loser retries on the new head).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Integer, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.store.tables import UtcDateTime, metadata

GENESIS = "0" * 64

audit_ledger = Table(
    "audit_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("seq", Integer, nullable=False, unique=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("remote", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(200), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)


class AuditAction(StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGIN_LOCKED = "login_locked"
    LOGOUT = "logout"
    PASSWORD_CHANGED = "password_changed"
    ACCOUNT_CREATED = "account_created"
    ACCOUNT_CHANGED = "account_changed"
    TOKEN_CREATED = "token_created"
    TOKEN_REVOKED = "token_revoked"
    ALERT_RECEIVED = "alert_received"
    MESSAGE_COMPOSED = "message_composed"
    MESSAGE_SUBMITTED = "message_submitted"
    MESSAGE_APPROVED = "message_approved"
    MESSAGE_REJECTED = "message_rejected"
    BROADCAST_STARTED = "broadcast_started"
    BROADCAST_STOPPED = "broadcast_stopped"
    CONFIG_CHANGED = "config_changed"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    seq: int
    at: datetime
    actor: str
    remote: str
    action: str
    target: str
    detail: str  # canonical JSON text
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "remote": self.remote,
            "action": self.action,
            "target": self.target,
            "detail": json.loads(self.detail) if self.detail else {},
            "hash": self.hash,
        }


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def compute_hash(
    prev_hash: str, *, seq: int, at: datetime, actor: str, remote: str, action: str, target: str, detail: str
) -> str:
    body = canonical_json(
        {
            "seq": seq,
            "at": at.isoformat(timespec="microseconds"),
            "actor": actor,
            "remote": remote,
            "action": action,
            "target": target,
            "detail": detail,
        }
    )
    return hashlib.sha256(prev_hash.encode("ascii", "replace") + body.encode("utf-8")).hexdigest()


def _entry_hash(e: AuditEntry, seq: int | None = None) -> str:
    return compute_hash(
        e.prev_hash,
        seq=e.seq if seq is None else seq,
        at=e.at,
        actor=e.actor,
        remote=e.remote,
        action=e.action,
        target=e.target,
        detail=e.detail,
    )


def _entry(row: Any) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        id=int(m["id"]),
        seq=int(m["seq"]),
        at=m["at"],
        actor=str(m["actor"]),
        remote=str(m["remote"]),
        action=str(m["action"]),
        target=str(m["target"]),
        detail=str(m["detail"]),
        prev_hash=str(m["prev_hash"]),
        hash=str(m["hash"]),
    )


_LOCKS: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Lock] = weakref.WeakKeyDictionary()


def _lock_for(engine: AsyncEngine) -> asyncio.Lock:
    lock = _LOCKS.get(engine)
    if lock is None:
        lock = _LOCKS[engine] = asyncio.Lock()
    return lock


class AuditAppendError(RuntimeError):
    pass


class AuditLedger:
    """Append entries. One instance per component is fine: the lock is per engine."""

    MAX_ATTEMPTS = 50  # each lost race means another writer made progress, so this bounds contention

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def append(
        self,
        action: AuditAction | str,
        *,
        actor: str,
        remote: str = "",
        target: str = "",
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        action_s = AuditAction(action).value  # unknown actions are a programming error: refuse
        detail_s = canonical_json(dict(detail or {}))
        async with _lock_for(self._engine):
            for _ in range(self.MAX_ATTEMPTS):
                at = self._clock.now()
                try:
                    async with self._engine.begin() as conn:
                        last = (
                            await conn.execute(
                                select(audit_ledger.c.seq, audit_ledger.c.hash)
                                .order_by(audit_ledger.c.seq.desc())
                                .limit(1)
                            )
                        ).first()
                        seq, prev = (1, GENESIS) if last is None else (int(last[0]) + 1, str(last[1]))
                        h = compute_hash(
                            prev,
                            seq=seq,
                            at=at,
                            actor=actor[:100],
                            remote=remote[:64],
                            action=action_s,
                            target=target[:200],
                            detail=detail_s,
                        )
                        res = await conn.execute(
                            insert(audit_ledger).values(
                                seq=seq,
                                at=at,
                                actor=actor[:100],
                                remote=remote[:64],
                                action=action_s,
                                target=target[:200],
                                detail=detail_s,
                                prev_hash=prev,
                                hash=h,
                            )
                        )
                        pk = res.inserted_primary_key
                        assert pk is not None
                        return AuditEntry(
                            int(pk[0]),
                            seq,
                            at,
                            actor[:100],
                            remote[:64],
                            action_s,
                            target[:200],
                            detail_s,
                            prev,
                            h,
                        )
                except IntegrityError:
                    await asyncio.sleep(
                        0
                    )  # another writer took this seq: let it finish, retry on the new head
        raise AuditAppendError(f"audit append of {action_s} lost the race {self.MAX_ATTEMPTS} times")


async def tail(engine: AsyncEngine, limit: int = 20, *, before_seq: int | None = None) -> list[AuditEntry]:
    """The newest ``limit`` entries (optionally older than ``before_seq``), oldest first."""
    stmt = select(audit_ledger).order_by(audit_ledger.c.seq.desc()).limit(max(1, min(limit, 1000)))
    if before_seq is not None:
        stmt = stmt.where(audit_ledger.c.seq < before_seq)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [_entry(r) for r in reversed(rows)]


async def head(engine: AsyncEngine) -> tuple[int, str] | None:
    """(seq, hash) of the newest entry: record it outside the database to detect later truncation."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(audit_ledger.c.seq, audit_ledger.c.hash).order_by(audit_ledger.c.seq.desc()).limit(1)
            )
        ).first()
    return None if row is None else (int(row[0]), str(row[1]))


# --- verification -------------------------------------------------------------------------------------


class FindingKind(StrEnum):
    EDITED = "edited"  # the row's content no longer matches its hash
    MISSING = "missing"  # the entry a row follows is gone (deleted, or rewritten with a new hash)
    REORDERED = "reordered"  # the row was written at another position (its seq was changed)
    FORKED = "forked"  # two rows claim the same predecessor: an entry was inserted
    TRUNCATED = "truncated"  # the recorded head (anchor) is not in the ledger any more


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    row_id: int | None
    seq: int | None
    expected: str
    found: str

    def message_zh(self) -> str:
        where = f"记录 id={self.row_id}（序号 {self.seq}）"
        match self.kind:
            case FindingKind.EDITED:
                return f"{where} 的内容被修改：应有哈希 {self.expected}，实存 {self.found}"
            case FindingKind.MISSING:
                return f"{where} 之前的记录缺失（被删除或被改写）：应衔接 {self.expected}，实为 {self.found}"
            case FindingKind.REORDERED:
                return f"{where} 的位置被调换：原序号应为 {self.expected}，现为 {self.found}"
            case FindingKind.FORKED:
                return f"{where} 与其他记录接在同一前驱之后，疑似插入伪造记录：{self.expected} / {self.found}"
            case FindingKind.TRUNCATED:
                return f"记录的链尾 序号 {self.seq} 不在账本中（末尾被删除或改写）：应为 {self.expected}，实为 {self.found}"
        return where

    def message_en(self) -> str:
        where = f"row id={self.row_id} (seq {self.seq})"
        match self.kind:
            case FindingKind.EDITED:
                return f"{where} was edited: expected hash {self.expected}, found {self.found}"
            case FindingKind.MISSING:
                return f"the entry before {where} is missing (deleted or rewritten): expected link {self.expected}, found {self.found}"
            case FindingKind.REORDERED:
                return f"{where} was moved: written at seq {self.expected}, now at seq {self.found}"
            case FindingKind.FORKED:
                return f"{where} shares its predecessor with another row (inserted entry?): {self.expected} / {self.found}"
            case FindingKind.TRUNCATED:
                return f"recorded head seq {self.seq} not found (tail deleted or rewritten): expected {self.expected}, found {self.found}"
        return where

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "row_id": self.row_id,
            "seq": self.seq,
            "expected": self.expected,
            "found": self.found,
            "message": self.message_zh(),
            "message_en": self.message_en(),
        }


@dataclass(frozen=True)
class VerifyReport:
    rows_checked: int
    head_seq: int | None
    head_hash: str | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows_checked": self.rows_checked,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "findings": [f.as_json() for f in self.findings],
        }


def _derive_seqs(rows: list[AuditEntry], by_hash: dict[str, AuditEntry]) -> dict[int, int]:
    """The seq each row was written with according to the chain: follow prev_hash links from the start
    (seq 1) and from every orphan (whose own stored seq is taken as given)."""
    children: dict[str, list[AuditEntry]] = {}
    for r in rows:
        children.setdefault(r.prev_hash, []).append(r)
    derived: dict[int, int] = {}
    starts = [
        (r, 1 if r.prev_hash == GENESIS else r.seq)
        for r in rows
        if r.prev_hash == GENESIS or r.prev_hash not in by_hash
    ]
    stack = list(starts)
    while stack:
        r, s = stack.pop()
        if r.id in derived:
            continue
        derived[r.id] = s
        stack.extend((c, s + 1) for c in children.get(r.hash, []))
    for r in rows:  # unreachable (a crafted cycle): take the stored seq
        derived.setdefault(r.id, r.seq)
    return derived


def check_entries(rows: list[AuditEntry], anchor: tuple[int, str] | None = None) -> VerifyReport:
    """Pure verification of entries (any order); see ``verify``."""
    rows = sorted(rows, key=lambda e: (e.seq, e.id))
    by_hash: dict[str, AuditEntry] = {}
    for r in rows:
        by_hash.setdefault(r.hash, r)
    derived = _derive_seqs(rows, by_hash)
    findings: list[Finding] = []
    children: dict[str, list[AuditEntry]] = {}
    prev: AuditEntry | None = None
    for r in rows:
        children.setdefault(r.prev_hash, []).append(r)
        orphan = r.prev_hash != GENESIS and r.prev_hash not in by_hash
        recomputed = _entry_hash(r)
        moved = False
        if recomputed != r.hash:
            d = derived[r.id]
            moved = d != r.seq and _entry_hash(r, d) == r.hash
            if moved:
                findings.append(Finding(FindingKind.REORDERED, r.id, r.seq, str(d), str(r.seq)))
            else:
                findings.append(Finding(FindingKind.EDITED, r.id, r.seq, recomputed, r.hash))
        if orphan:
            findings.append(Finding(FindingKind.MISSING, r.id, r.seq, r.prev_hash, "(no such entry)"))
        elif r.prev_hash == GENESIS and r.seq != 1 and not moved:
            findings.append(Finding(FindingKind.FORKED, r.id, r.seq, "seq 1", f"seq {r.seq}"))
        elif prev is not None and r.seq != prev.seq + 1 and not moved:
            # A gap the chain does not explain: the row was re-linked over a deleted entry.
            findings.append(Finding(FindingKind.MISSING, r.id, r.seq, f"seq {prev.seq + 1}", f"seq {r.seq}"))
        prev = r
    for kids in children.values():
        if len(kids) > 1:
            first = kids[0]
            for k in kids[1:]:
                findings.append(
                    Finding(FindingKind.FORKED, k.id, k.seq, f"row id={first.id}", f"row id={k.id}")
                )
    if anchor is not None:
        a_seq, a_hash = anchor
        match = next((r for r in rows if r.seq == a_seq), None)
        if match is None or match.hash != a_hash:
            findings.append(
                Finding(
                    FindingKind.TRUNCATED,
                    None if match is None else match.id,
                    a_seq,
                    a_hash,
                    "(no such entry)" if match is None else match.hash,
                )
            )
    last = rows[-1] if rows else None
    findings.sort(key=lambda f: (f.seq if f.seq is not None else 0, f.kind.value))
    return VerifyReport(len(rows), last.seq if last else None, last.hash if last else None, findings)


async def verify(engine: AsyncEngine, *, anchor: tuple[int, str] | None = None) -> VerifyReport:
    """Recompute the whole chain. ``anchor`` = a (seq, hash) recorded earlier via ``head`` also detects
    deletion of the newest entries, which no chain can reveal by itself."""
    async with engine.connect() as conn:
        rows = [_entry(r) for r in (await conn.execute(select(audit_ledger))).all()]
    return check_entries(rows, anchor)
