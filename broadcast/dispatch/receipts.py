"""Receipts (回执): per-terminal delivery state of the broadcasts being dispatched, persisted in batches.

Owns the in-memory view of the deliveries of each broadcast the dispatcher tracks (from ``track`` until
``untrack`` when the dispatcher lets the broadcast go) and the batched writer. Status changes are
validated against the lifecycle table, so a late or lying report cannot move a delivery backwards or
play it twice. Every accepted change is emitted as ``DeliveryChanged``; once every delivery of a
broadcast is settled and written, ``BroadcastSettled`` is published. Never talks to adapters; the
read side (coverage, time-to-air) is ``broadcast.reports.stats``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from broadcast.clock import Clock
from broadcast.events import BroadcastSettled, DeliveryChanged, Events
from broadcast.lifecycle import delivery_allows
from broadcast.model import DeliveryStatus, FailureReason
from broadcast.periodic import Periodic
from broadcast.store.deliveries import StatusWrite, deliveries_of, write_statuses

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
class _Active:
    broadcast_id: int
    ebm_id: str
    by_terminal: dict[str, TrackedDelivery] = field(default_factory=dict)
    unsettled: int = 0


class ReceiptBook:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        events: Events,
        *,
        flush_interval_s: float = 0.05,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._events = events
        self._active: dict[str, _Active] = {}
        self._by_id: dict[int, _Active] = {}
        self._queue: list[StatusWrite] = []
        self._settled_pending: list[int] = []
        # Coalesce a burst (586 sends, then 586 acks, within milliseconds) into one transaction, and
        # keep database work out of the way while the burst is on the wire.
        self._writer = Periodic("receipt-book", self.flush, coalesce_s=flush_interval_s, retry_s=1.0)
        self._flush_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        await self._writer.start()

    async def close(self) -> None:
        """Stop the writer (letting a write under way finish), then write what is left."""
        await self._writer.stop()
        await self.flush()

    async def track(self, broadcast_id: int, ebm_id: str) -> list[TrackedDelivery]:
        """Load a broadcast's deliveries into memory (on dispatch, or on restart)."""
        active = _Active(broadcast_id, ebm_id)
        for d in await deliveries_of(self._engine, broadcast_id):
            td = TrackedDelivery(d.delivery_id, broadcast_id, d.terminal_code, d.area_code, d.status, d.attempts)
            active.by_terminal[td.terminal_code] = td
            if not td.status.settled:
                active.unsettled += 1
        self._active[ebm_id] = active
        self._by_id[broadcast_id] = active
        return list(active.by_terminal.values())

    def untrack(self, ebm_id: str) -> None:
        """Forget a broadcast the dispatcher let go (ended or stopped): later reports are ignored."""
        active = self._active.pop(ebm_id, None)
        if active is not None:
            self._by_id.pop(active.broadcast_id, None)

    def tracked(self) -> int:
        """How many broadcasts are held in memory."""
        return len(self._active)

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
        self._queue.append(StatusWrite(td.delivery_id, status, reason, detail, at, td.attempts))
        self._events.emit(DeliveryChanged(a.broadcast_id, ebm_id, terminal_code, status))
        self._writer.wake()
        return True

    async def flush(self, *, also: Callable[[AsyncConnection], Awaitable[None]] | None = None) -> None:
        """Write what is pending now; ``also`` commits in the same transaction (a stop: the broadcast's
        cancellation and its deliveries' together). On failure the batch waits for the next flush."""
        async with self._flush_lock:
            batch, self._queue = self._queue, []
            settled, self._settled_pending = self._settled_pending, []
            if batch or also is not None:
                try:
                    await write_statuses(self._engine, batch, also=also)
                except Exception:
                    self._queue[:0] = batch
                    self._settled_pending[:0] = settled
                    raise
        for bid in settled:
            if self.unsettled(bid) == 0:
                await self._events.publish(BroadcastSettled(bid))
