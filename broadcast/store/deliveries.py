"""Delivery rows as the receipt book reads and writes them: the deliveries of one broadcast, and a
batch of status changes written in one transaction (append-only ``delivery_events`` plus the current
state in ``deliveries``).

Records what the caller decided; never validates a transition (the receipt book does, in memory).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from broadcast.model import DeliveryStatus, FailureReason
from broadcast.store.tables import deliveries, delivery_events


@dataclass(frozen=True)
class StoredDelivery:
    delivery_id: int
    terminal_code: str
    area_code: str
    status: DeliveryStatus
    attempts: int


@dataclass(frozen=True)
class StatusWrite:
    """One accepted status change of one delivery, to be written."""

    delivery_id: int
    status: DeliveryStatus
    reason: FailureReason | None
    detail: str
    at: datetime
    attempts: int


async def deliveries_of(engine: AsyncEngine, broadcast_id: int) -> list[StoredDelivery]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.terminal_code,
                deliveries.c.area_code,
                deliveries.c.status,
                deliveries.c.attempts,
            ).where(deliveries.c.broadcast_id == broadcast_id)
        )
        return [StoredDelivery(r[0], r[1], r[2], DeliveryStatus(r[3]), int(r[4])) for r in rows]


async def write_statuses(
    engine: AsyncEngine,
    batch: Sequence[StatusWrite],
    *,
    also: Callable[[AsyncConnection], Awaitable[None]] | None = None,
) -> None:
    """The history rows of every change, and each delivery's latest state, in one transaction; ``also``
    writes in the same transaction (e.g. the broadcast's own state change that caused the batch)."""
    if not batch:
        if also is not None:
            async with engine.begin() as conn:
                await also(conn)
        return
    latest: dict[int, dict[str, Any]] = {}
    for p in batch:
        row = latest.setdefault(
            p.delivery_id,
            {"b_id": p.delivery_id, "b_ack": None, "b_playing": None, "b_played": None},
        )
        row.update(
            b_status=str(p.status),
            b_reason=str(p.reason) if p.reason else None,
            b_detail=p.detail,
            b_attempts=p.attempts,
            b_at=p.at,
        )
        if p.status is DeliveryStatus.ACKNOWLEDGED and row["b_ack"] is None:
            row["b_ack"] = p.at
        elif p.status is DeliveryStatus.PLAYING and row["b_playing"] is None:
            row["b_playing"] = p.at
        elif p.status is DeliveryStatus.PLAYED:
            row["b_played"] = p.at
    async with engine.begin() as conn:
        await conn.execute(
            insert(delivery_events),
            [
                {
                    "delivery_id": p.delivery_id,
                    "status": str(p.status),
                    "reason": str(p.reason) if p.reason else None,
                    "detail": p.detail,
                    "at": p.at,
                }
                for p in batch
            ],
        )
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                reason=bindparam("b_reason"),
                detail=bindparam("b_detail"),
                attempts=bindparam("b_attempts"),
                updated_at=bindparam("b_at"),
                acknowledged_at=func.coalesce(deliveries.c.acknowledged_at, bindparam("b_ack")),
                playing_at=func.coalesce(deliveries.c.playing_at, bindparam("b_playing")),
                played_at=func.coalesce(deliveries.c.played_at, bindparam("b_played")),
            ),
            list(latest.values()),
        )
        if also is not None:
            await also(conn)
