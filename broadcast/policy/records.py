"""The intake decision record (接收决定记录): every decision the desk took, append-only, and the parked
Cancels/Updates waiting for their original (``open`` rows carry their message and references).

Owns the ``intake_decisions`` table and its queries. Records what the desk decided; never decides.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Integer, String, Table, Text, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.model import MessageDraft
from broadcast.policy.types import Decision
from broadcast.store.broadcasts import draft_to_record, record_to_draft
from broadcast.store.tables import UtcDateTime, metadata

intake_decisions = Table(
    "intake_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source_key", String(400), nullable=False, index=True),
    Column("broadcast_id", Integer, nullable=True, index=True),
    Column("action", String(32), nullable=False),
    Column("reason", String(48), nullable=False),
    Column("reason_zh", Text, nullable=False),
    Column("actor", String(100), nullable=False, default=""),
    Column("at", UtcDateTime, nullable=False),
    # A parked Cancel/Update keeps its message and references here until its original arrives.
    Column("message_json", Text, nullable=True),
    Column("references", Text, nullable=False, default=""),
    Column("until", UtcDateTime, nullable=True),
    Column("open", Integer, nullable=False, default=0),
)


@dataclass(frozen=True)
class ParkedRecord:
    """A Cancel or Update still waiting for its original."""

    source_key: str
    draft: MessageDraft
    references: tuple[str, ...]
    until: datetime


class DecisionRecord:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def note(
        self,
        key: str,
        decision: Decision,
        actor: str,
        broadcast_id: int | None,
        at: datetime,
        *,
        parked: MessageDraft | None = None,
        references: Sequence[str] = (),
    ) -> None:
        """Append one decision; a ``parked`` draft stays open until ``close_parked``."""
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(intake_decisions).values(
                    source_key=key,
                    broadcast_id=broadcast_id,
                    action=str(decision.action),
                    reason=str(decision.reason),
                    reason_zh=decision.reason_zh,
                    actor=actor,
                    at=at,
                    message_json=json.dumps(draft_to_record(parked), ensure_ascii=False) if parked else None,
                    references=json.dumps(list(references), ensure_ascii=False),
                    until=decision.until,
                    open=int(parked is not None),
                )
            )

    async def close_parked(self, key: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(intake_decisions)
                .where(intake_decisions.c.source_key == key, intake_decisions.c.open == 1)
                .values(open=0)
            )

    async def parked(self) -> list[ParkedRecord]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(intake_decisions).where(intake_decisions.c.open == 1))
            return [
                ParkedRecord(
                    r.source_key,
                    record_to_draft(json.loads(r.message_json)),
                    tuple(json.loads(r.references)),
                    r.until,
                )
                for r in rows
            ]

    async def decisions(
        self, *, broadcast_id: int | None = None, source_keys: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Decisions about a broadcast (by id, or by its source keys), oldest first; all without filters."""
        stmt = select(intake_decisions).order_by(intake_decisions.c.id)
        if broadcast_id is not None:
            stmt = stmt.where(
                (intake_decisions.c.broadcast_id == broadcast_id)
                | intake_decisions.c.source_key.in_(list(source_keys))
            )
        elif source_keys:
            stmt = stmt.where(intake_decisions.c.source_key.in_(list(source_keys)))
        async with self._engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(stmt)]
