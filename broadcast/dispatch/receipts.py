"""Receipts (回执): per-terminal delivery state of live broadcasts, persisted in batches, and the
coverage / time-to-air summary of a broadcast.

Owns the in-memory view of active deliveries and the append-only delivery_events writer. Status
changes are validated against the lifecycle table, so a late or lying report cannot move a delivery
backwards or play it twice. Never talks to adapters.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.lifecycle import delivery_allows
from broadcast.model import DeliveryStatus, FailureReason
from broadcast.store.tables import deliveries, delivery_events

log = logging.getLogger(__name__)


@dataclass
class TrackedDelivery:
    delivery_id: int
    broadcast_id: int
    terminal_code: str
    area_code: str
    status: DeliveryStatus
    attempts: int = 0


@dataclass
class _Pending:
    delivery_id: int
    status: DeliveryStatus
    reason: FailureReason | None
    detail: str
    at: datetime
    attempts: int


@dataclass
class _Active:
    broadcast_id: int
    ebm_id: str
    by_terminal: dict[str, TrackedDelivery] = field(default_factory=dict)
    unsettled: int = 0


Listener = Callable[[int, str, DeliveryStatus], None]


class ReceiptBook:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        *,
        flush_interval_s: float = 0.05,
        on_settled: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._interval = flush_interval_s
        self.on_settled = on_settled
        self._active: dict[str, _Active] = {}
        self._by_id: dict[int, _Active] = {}
        self._queue: list[_Pending] = []
        self._settled_pending: list[int] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Listener] = []
        self._flush_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="receipt-book")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.flush()

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def track(self, broadcast_id: int, ebm_id: str) -> list[TrackedDelivery]:
        """Load a broadcast's deliveries into memory (on dispatch, or on restart)."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(
                    deliveries.c.id,
                    deliveries.c.terminal_code,
                    deliveries.c.area_code,
                    deliveries.c.status,
                    deliveries.c.attempts,
                ).where(deliveries.c.broadcast_id == broadcast_id)
            )
            active = _Active(broadcast_id, ebm_id)
            for r in rows:
                td = TrackedDelivery(r[0], broadcast_id, r[1], r[2], DeliveryStatus(r[3]), int(r[4]))
                active.by_terminal[td.terminal_code] = td
                if not td.status.settled:
                    active.unsettled += 1
        self._active[ebm_id] = active
        self._by_id[broadcast_id] = active
        return list(active.by_terminal.values())

    def untrack(self, ebm_id: str) -> None:
        active = self._active.pop(ebm_id, None)
        if active is not None:
            self._by_id.pop(active.broadcast_id, None)

    def broadcast_id(self, ebm_id: str) -> int | None:
        a = self._active.get(ebm_id)
        return a.broadcast_id if a else None

    def status_of(self, ebm_id: str, terminal_code: str) -> DeliveryStatus | None:
        a = self._active.get(ebm_id)
        td = a.by_terminal.get(terminal_code) if a else None
        return td.status if td else None

    def deliveries_of(self, ebm_id: str) -> list[TrackedDelivery]:
        a = self._active.get(ebm_id)
        return list(a.by_terminal.values()) if a else []

    def unsettled(self, broadcast_id: int) -> int:
        a = self._by_id.get(broadcast_id)
        return a.unsettled if a else 0

    # -- recording -------------------------------------------------------------------------------
    def record(
        self,
        ebm_id: str,
        terminal_code: str,
        status: DeliveryStatus,
        at: datetime,
        *,
        reason: FailureReason | None = None,
        detail: str = "",
    ) -> bool:
        """Apply one status change if the lifecycle allows it. Returns False when refused."""
        a = self._active.get(ebm_id)
        if a is None:
            log.debug("receipt for untracked EBM %s from %s ignored", ebm_id, terminal_code)
            return False
        td = a.by_terminal.get(terminal_code)
        if td is None:
            log.warning("receipt for EBM %s from terminal %s that was not targeted", ebm_id, terminal_code)
            return False
        if not delivery_allows(td.status, status):
            log.debug("delivery %s %s: %s → %s refused", ebm_id, terminal_code, td.status, status)
            return False
        was_settled = td.status.settled
        if status is DeliveryStatus.SENT:
            td.attempts += 1
        td.status = status
        if status.settled and not was_settled:
            a.unsettled -= 1
            if a.unsettled == 0:
                self._settled_pending.append(a.broadcast_id)
        elif was_settled and not status.settled:
            a.unsettled += 1
        self._queue.append(_Pending(td.delivery_id, status, reason, detail, at, td.attempts))
        for listener in self._listeners:
            listener(a.broadcast_id, terminal_code, status)
        self._wake.set()
        return True

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            # Coalesce a burst (586 sends, then 586 acks, within milliseconds) into one transaction,
            # and keep database work out of the way while the burst is on the wire.
            await asyncio.sleep(self._interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # keep the writer alive; the queue is retried on the next wake
                log.exception("writing delivery receipts failed; will retry")
                await asyncio.sleep(1.0)
                self._wake.set()
                continue

    async def flush(self) -> None:
        async with self._flush_lock:
            batch, self._queue = self._queue, []
            settled, self._settled_pending = self._settled_pending, []
            if batch:
                try:
                    await self._write(batch)
                except Exception:
                    self._queue[:0] = batch
                    self._settled_pending[:0] = settled
                    raise
        for bid in settled:
            if self.on_settled is not None and self.unsettled(bid) == 0:
                await self.on_settled(bid)

    async def _write(self, batch: list[_Pending]) -> None:
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
        async with self._engine.begin() as conn:
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


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _ms_stats(values: list[float]) -> dict[str, float | int | None]:
    values = sorted(values)
    if not values:
        return {"count": 0, "first_ms": None, "p50_ms": None, "p95_ms": None, "max_ms": None}
    return {
        "count": len(values),
        "first_ms": round(values[0], 1),
        "p50_ms": round(_percentile(values, 50), 1),
        "p95_ms": round(_percentile(values, 95), 1),
        "max_ms": round(values[-1], 1),
    }


def summarise(received_at: datetime, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts per delivery state, coverage (played / targeted) and time-to-air from delivery rows."""
    counts = {str(s): 0 for s in DeliveryStatus}
    reasons: dict[str, int] = {}
    to_air: list[float] = []
    to_ack: list[float] = []
    for r in rows:
        counts[r["status"]] += 1
        if r["reason"]:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        if r["playing_at"] is not None:
            to_air.append((r["playing_at"] - received_at).total_seconds() * 1000)
        if r["acknowledged_at"] is not None:
            to_ack.append((r["acknowledged_at"] - received_at).total_seconds() * 1000)
    targeted = len(rows)
    played = counts[str(DeliveryStatus.PLAYED)]
    return {
        "targeted": targeted,
        "counts": counts,
        "failure_reasons": reasons,
        "coverage": {
            "played": played,
            "targeted": targeted,
            "rate": round(played / targeted, 4) if targeted else 0.0,
        },
        "time_to_air": _ms_stats(to_air),
        "time_to_ack": _ms_stats(to_ack),
    }
