"""Dispatch (调度控制): deliveries → adapters, retried with the product's one retry policy
(``broadcast.retry``).

Adapters classify each attempt (accepted / retry / permanent); this module decides what happens next:
jittered exponential backoff until the message's end time, OFFLINE for terminals without a live link
(tried again the moment they reconnect, while the message is still valid), expiry at the end time,
and stop. Delivery progress is recorded in the ReceiptBook, which refuses anything that would play a
message twice. Never imports a concrete adapter: they come from the registry (``Adapters``).

Preemption (上级优先、应急优先, rule in ``preemption``, per-terminal state in ``stations``): the dispatcher knows, per terminal, which
of its deliveries is on air (start accepted, not yet settled). A delivery is sent to a terminal only if
nothing is on air there or it strictly outranks what is (and no higher-ranked delivery is waiting for
that terminal); otherwise it waits, still queued, until the terminal is free. When a higher-ranked start
is accepted, the delivery it displaced goes back to QUEUED with reason ``preempted`` and resumes (is
sent again, from the start) once the terminal is free — for every kind: a daily programme, a drill and
an emergency cut off by a higher emergency all resume while their message is still valid; one that
cannot resume before its end time fails with reason ``preempted``. A terminal that answers busy is
retried with the usual backoff. The ReceiptBook still refuses to play anything twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from typing import Protocol

from adapters.base import Adapter
from broadcast.clock import Clock
from broadcast.dispatch.receipts import ReceiptBook
from broadcast.dispatch.stations import LiveBroadcast, Station
from broadcast.events import DeliveryChanged, LinkChanged
from broadcast.messages import DeliveryReport, FailureKind, Outcome
from broadcast.model import DeliveryOrder, DeliveryStatus, FailureReason, LinkState, TerminalRef
from broadcast.retry import RetryPolicy

log = logging.getLogger(__name__)

WAIT_RECHECK_S = 5.0  # a delivery waiting for a busy terminal re-checks at least this often
# The terminal has (or had) it: nothing more for a delivery task to do.
_DONE = frozenset(
    {
        DeliveryStatus.ACKNOWLEDGED,
        DeliveryStatus.PLAYING,
        DeliveryStatus.PLAYED,
        DeliveryStatus.FAILED,
        DeliveryStatus.CANCELLED,
    }
)
PREEMPTED_DETAIL = "被更高优先级插播中断（{by}），终端空闲后恢复播发"
PREEMPTED_EXPIRED = "被更高优先级插播中断，结束时间前未能恢复播发"


class Adapters(Protocol):
    """Where the dispatcher finds the adapter of a terminal (the registry)."""

    def get(self, name: str) -> Adapter | None: ...


class Dispatcher:
    def __init__(
        self,
        registry: Adapters,
        receipts: ReceiptBook,
        clock: Clock,
        *,
        retry: RetryPolicy | None = None,
        concurrency_per_adapter: int = 1024,
        rng: random.Random | None = None,
    ) -> None:
        self._registry = registry
        self._receipts = receipts
        self._clock = clock
        self._retry = retry or RetryPolicy(initial_s=0.5, max_s=30.0)
        self._rng = rng or random.Random()
        self._limit = concurrency_per_adapter
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._live: dict[str, LiveBroadcast] = {}
        self._stations: dict[str, Station] = {}

    def _station(self, code: str) -> Station:
        st = self._stations.get(code)
        if st is None:
            st = self._stations[code] = Station()
        return st

    def on_air(self, terminal_code: str) -> str | None:
        """EBM id of the dispatcher's delivery on air at a terminal (start accepted, not settled)."""
        st = self._stations.get(terminal_code)
        return st.on_air.order.ebm_id if st is not None and st.on_air is not None else None

    def waiting_for(self, terminal_code: str) -> list[str]:
        """EBM ids of deliveries waiting for this terminal to be free (queued behind what is on air)."""
        st = self._stations.get(terminal_code)
        return [lv.order.ebm_id for lv in st.waiting] if st is not None else []

    def is_interruption_report(self, event: DeliveryReport) -> bool:
        """A device saying it was interrupted (cut off by a higher item) is not the end of the delivery:
        the dispatcher has queued it to resume. Such a report must not settle it as failed/cancelled."""
        live = self._live.get(event.ebm_id)
        if live is None or live.stopped or event.status not in (DeliveryStatus.FAILED, DeliveryStatus.CANCELLED):
            return False
        if event.reason is FailureReason.PREEMPTED:
            return True  # e.g. FM: the transmitter reports the displaced item before the switch is booked
        if self._receipts.status_of(event.ebm_id, event.terminal_code) is DeliveryStatus.QUEUED:
            return True  # already queued to resume
        # The device may report the cut-off before it acknowledges the item that cut it off.
        st = self._stations.get(event.terminal_code)
        return (
            st is not None
            and st.on_air is live
            and st.incoming is not None
            and st.incoming.outranks(live)
        )

    def on_delivery_changed(self, event: DeliveryChanged) -> None:
        """A delivery on air that settles (or goes back to the queue) frees its terminal."""
        st = self._stations.get(event.terminal_code)
        if st is None or st.on_air is None or st.on_air.broadcast_id != event.broadcast_id:
            return
        if event.status.settled or event.status is DeliveryStatus.QUEUED:
            st.release(st.on_air)

    def on_link_changed(self, event: LinkChanged) -> None:
        """A terminal that comes back online gets its parked deliveries again."""
        if event.state is LinkState.ONLINE and event.was in (None, LinkState.OFFLINE):
            self.on_terminal_online(event.terminal_code)

    def _sem(self, adapter: str) -> asyncio.Semaphore:
        sem = self._sems.get(adapter)
        if sem is None:
            sem = self._sems[adapter] = asyncio.Semaphore(self._limit)
        return sem

    def is_live(self, ebm_id: str) -> bool:
        return ebm_id in self._live

    async def dispatch(self, broadcast_id: int, order: DeliveryOrder, targets: Sequence[TerminalRef]) -> None:
        """Start delivering; returns once every first attempt is under way (not when played)."""
        tracked = {d.terminal_code: d for d in await self._receipts.track(broadcast_id, order.ebm_id)}
        live = LiveBroadcast(broadcast_id, order, {t.resource_code: t for t in targets})
        self._live[order.ebm_id] = live
        for t in targets:
            td = tracked.get(t.resource_code)
            if td is None:
                continue
            if td.status in (DeliveryStatus.ACKNOWLEDGED, DeliveryStatus.PLAYING):
                # Resumed after a restart: the terminal has it already. Never send it again, but
                # let the adapter expect its reports.
                adapter = self._registry.get(t.adapter)
                if adapter is not None:
                    adapter.adopt(order, t.resource_code)
                self._station(t.resource_code).on_air = live
            elif td.status in (DeliveryStatus.QUEUED, DeliveryStatus.SENT, DeliveryStatus.OFFLINE):
                self._spawn(live, t)
        live.tasks.add(asyncio.create_task(self._expire_at_end(live), name=f"expire-{order.ebm_id}"))

    def _spawn(self, live: LiveBroadcast, terminal: TerminalRef) -> None:
        task = asyncio.create_task(self._deliver(live, terminal), name=f"deliver-{terminal.resource_code}")
        live.tasks.add(task)
        task.add_done_callback(live.tasks.discard)

    def _seconds_left(self, order: DeliveryOrder) -> float:
        return (order.end_at - self._clock.now()).total_seconds()

    async def _deliver(self, live: LiveBroadcast, terminal: TerminalRef) -> None:
        order = live.order
        code = terminal.resource_code
        station = self._station(code)
        attempt = 0
        while not live.stopped:
            if self._receipts.status_of(order.ebm_id, code) in _DONE:
                return  # e.g. a preempted delivery the terminal reported finished after all
            if self._seconds_left(order) <= 0:
                self._expire_one(live, code)
                return
            adapter = self._registry.get(terminal.adapter)
            if adapter is None:
                self._record(
                    order,
                    code,
                    DeliveryStatus.FAILED,
                    FailureReason.REJECTED,
                    f"适配器 {terminal.adapter} 未运行",
                )
                return
            if not adapter.is_reachable(code):
                # Parked: on_terminal_online() re-spawns this delivery when the link comes back.
                self._record(order, code, DeliveryStatus.OFFLINE, FailureReason.NOT_CONNECTED, "终端不在线")
                return
            async with station.lock:
                blocker = station.blocker(live)
                if blocker is None:
                    attempt += 1
                    self._record(order, code, DeliveryStatus.SENT, None, f"attempt {attempt}")
                    station.incoming = live
                    try:
                        async with self._sem(terminal.adapter):
                            result_outcome, failure, detail = await self._attempt(adapter, order, terminal)
                    finally:
                        station.incoming = None
                    if live.stopped:
                        return
                    if result_outcome is Outcome.ACCEPTED:
                        self._record(order, code, DeliveryStatus.ACKNOWLEDGED, None, detail)
                        self._take(station, live, code)
                        return
                else:
                    waiting_for = station.changed
            if blocker is not None:
                # Equal or lower rank than what the terminal plays: wait behind it, still queued.
                await self._wait_behind(station, live, waiting_for)
                continue
            if result_outcome is Outcome.PERMANENT:
                self._record(order, code, DeliveryStatus.FAILED, FailureReason.REJECTED, detail)
                return
            if failure is FailureKind.NOT_CONNECTED:
                self._record(order, code, DeliveryStatus.OFFLINE, FailureReason.NOT_CONNECTED, detail)
                return
            delay = min(self._retry.delay(attempt, self._rng), max(0.0, self._seconds_left(order)))
            await asyncio.sleep(delay)

    async def _attempt(
        self, adapter: Adapter, order: DeliveryOrder, terminal: TerminalRef
    ) -> tuple[Outcome, FailureKind | None, str]:
        try:
            result = await adapter.deliver(order, terminal.resource_code)
        except Exception as exc:  # an adapter bug must not kill the broadcast
            log.exception(
                "adapter %s raised delivering %s to %s", terminal.adapter, order.ebm_id, terminal.resource_code
            )
            return Outcome.RETRY, FailureKind.IO, str(exc)
        return result.outcome, result.failure, result.detail

    async def _wait_behind(self, station: Station, live: LiveBroadcast, changed: asyncio.Event) -> None:
        station.waiting.append(live)
        try:
            timeout = max(0.0, min(WAIT_RECHECK_S, self._seconds_left(live.order)))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await changed.wait()
        finally:
            station.waiting.remove(live)

    def _take(self, station: Station, live: LiveBroadcast, code: str) -> None:
        """``live`` is on air at ``code`` now; what it displaced waits to resume."""
        prev, station.on_air = station.on_air, live
        live.preempted.discard(code)
        if prev is None or prev is live or prev.stopped:
            return
        detail = PREEMPTED_DETAIL.format(by=live.order.ebm_id)
        if self._record(prev.order, code, DeliveryStatus.QUEUED, FailureReason.PREEMPTED, detail):
            log.info("EBM %s preempted by %s on terminal %s", prev.order.ebm_id, live.order.ebm_id, code)
            prev.preempted.add(code)
            self._spawn(prev, prev.terminals[code])

    def _expire_one(self, live: LiveBroadcast, code: str) -> None:
        if code in live.preempted:
            self._record(live.order, code, DeliveryStatus.FAILED, FailureReason.PREEMPTED, PREEMPTED_EXPIRED)
        else:
            self._record(live.order, code, DeliveryStatus.FAILED, FailureReason.EXPIRED, "消息已过结束时间")

    def _record(
        self,
        order: DeliveryOrder,
        code: str,
        status: DeliveryStatus,
        reason: FailureReason | None,
        detail: str,
    ) -> bool:
        return self._receipts.record(
            order.ebm_id, code, status, self._clock.now(), reason=reason, detail=detail
        )

    async def _expire_at_end(self, live: LiveBroadcast) -> None:
        left = self._seconds_left(live.order)
        if left > 0:
            await asyncio.sleep(left)
        await self._halt(live.order.ebm_id, DeliveryStatus.FAILED, FailureReason.EXPIRED, "消息已过结束时间")

    def on_terminal_online(self, terminal_code: str) -> None:
        """A terminal (re)connected: retry its parked deliveries of still-valid messages."""
        for live in list(self._live.values()):
            if live.stopped or terminal_code not in live.terminals:
                continue
            if self._receipts.status_of(live.order.ebm_id, terminal_code) is not DeliveryStatus.OFFLINE:
                continue
            if self._seconds_left(live.order) <= 0:
                continue
            log.info("terminal %s back online: retrying EBM %s", terminal_code, live.order.ebm_id)
            self._spawn(live, live.terminals[terminal_code])

    def finish(self, ebm_id: str, status: DeliveryStatus, reason: FailureReason, detail: str) -> None:
        """End a live broadcast: unsettled deliveries get ``status``; parked/offline ones stay offline."""
        live = self._live.pop(ebm_id, None)
        if live is None:
            return
        live.stopped = True
        current = asyncio.current_task()
        for task in list(live.tasks):
            if task is not current:
                task.cancel()
        now = self._clock.now()
        for td in self._receipts.deliveries_of(ebm_id):
            if not td.status.settled:
                why, text = reason, detail
                if reason is FailureReason.EXPIRED and td.terminal_code in live.preempted:
                    why, text = FailureReason.PREEMPTED, PREEMPTED_EXPIRED
                self._receipts.record(ebm_id, td.terminal_code, status, now, reason=why, detail=text)
        for st in self._stations.values():
            st.release(live)
        self._receipts.untrack(ebm_id)

    def halt(
        self,
        ebm_id: str,
        status: DeliveryStatus = DeliveryStatus.CANCELLED,
        reason: FailureReason = FailureReason.CANCELLED,
        detail: str = "已停止播发",
    ) -> list[TerminalRef]:
        """Settle every unsettled delivery of a live broadcast with ``status``, in memory and at once
        (the receipt book writes them), and let the broadcast go; returns the terminals that may be
        playing it, which ``send_stops`` must tell to stop. Nothing (``[]``) when it is not live."""
        live = self._live.get(ebm_id)
        if live is None:
            return []
        targets = [
            live.terminals[td.terminal_code]
            for td in self._receipts.deliveries_of(ebm_id)
            if td.status in (DeliveryStatus.SENT, DeliveryStatus.ACKNOWLEDGED, DeliveryStatus.PLAYING)
        ]
        self.finish(ebm_id, status, reason, detail)
        return targets

    async def send_stops(self, ebm_id: str, terminals: Sequence[TerminalRef]) -> int:
        """Tell each terminal to stop ``ebm_id`` so that it really goes off the air; returns how many
        stop instructions went out."""

        async def stop_one(terminal: TerminalRef) -> None:
            code = terminal.resource_code
            adapter = self._registry.get(terminal.adapter)
            if adapter is None:
                return
            try:
                res = await adapter.stop(ebm_id, code)
            except Exception:
                log.exception("stop of %s on %s failed", ebm_id, code)
                return
            if res.outcome is not Outcome.ACCEPTED:
                log.warning("stop of %s on %s not acknowledged: %s", ebm_id, code, res.detail)

        await asyncio.gather(*(stop_one(t) for t in terminals))
        return len(terminals)

    async def stop(self, ebm_id: str) -> int:
        """Stop a broadcast on every terminal that has it; returns how many stop instructions went out.
        The settled deliveries are written before the instructions go out."""
        terminals = self.halt(ebm_id)
        await self._receipts.flush()
        return await self.send_stops(ebm_id, terminals)

    async def _halt(self, ebm_id: str, status: DeliveryStatus, reason: FailureReason, detail: str) -> int:
        return await self.send_stops(ebm_id, self.halt(ebm_id, status, reason, detail))

    async def close(self) -> None:
        for live in list(self._live.values()):
            live.stopped = True
            for task in list(live.tasks):
                task.cancel()
        self._live.clear()
        self._stations.clear()
