"""Dispatcher preemption with a fake adapter: a higher item takes the terminal, the displaced one resumes
once the terminal is free, a lower or equal one waits (never preempts), busy is retried, and nothing is
played twice. Real ReceiptBook, CoreSink and SQLite store, wired by events as the composition root wires
them; the fake terminal is driven by the test and reports through the sink, as an adapter does."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.base import AdapterSink, Capability
from adapters.registry import AdapterRegistry
from broadcast.app.schema import feature_tables
from broadcast.clock import ManualClock
from broadcast.dispatch.dispatcher import Dispatcher
from broadcast.dispatch.links import LinkTracker
from broadcast.dispatch.preemption import order_rank
from broadcast.dispatch.receipts import ReceiptBook
from broadcast.dispatch.sink import CoreSink
from broadcast.events import DeliveryChanged, Events
from broadcast.messages import DeliveryReport, FailureKind, SendResult
from broadcast.model import (
    Content,
    DeliveryOrder,
    DeliveryStatus,
    MessageDraft,
    MsgType,
    Severity,
    SourceKind,
    SourceRef,
    TerminalKind,
    TerminalRef,
)
from broadcast.retry import RetryPolicy
from broadcast.store import broadcasts as store
from broadcast.store.db import make_engine, prepare_schema
from broadcast.store.tables import deliveries, delivery_events
from tests.helpers.poll import until

T0 = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)
PLATFORM = "34530181000000000000000"  # 23 digits
CODE = "06530181001001010101001"  # 23 digits
TERMINAL = TerminalRef(CODE, "530181001001", "一号喇叭", TerminalKind.VILLAGE, "AA0001", adapter="fake")


@dataclass
class FakeTerminal:
    """A terminal behind a fake adapter: follows the controller's ranking, refuses lower/equal (busy)."""

    clock: ManualClock
    sink: AdapterSink | None = None
    playing: DeliveryOrder | None = None
    starts: list[str] = field(default_factory=list)  # every accepted start, in order
    completed: list[str] = field(default_factory=list)
    busy_next: int = 0
    attempts: int = 0


class FakeAdapter:
    name = "fake"
    capabilities = frozenset({Capability.AUDIO_URL, Capability.STOP})

    def __init__(self, term: FakeTerminal) -> None:
        self.t = term

    async def start(self, sink: AdapterSink, terminals: Sequence[TerminalRef]) -> None:
        self.t.sink = sink

    async def close(self) -> None:
        return None

    def is_reachable(self, terminal_code: str) -> bool:
        return True

    async def deliver(self, order: DeliveryOrder, terminal_code: str) -> SendResult:
        self.t.attempts += 1
        await asyncio.sleep(0)  # a reply takes a loop turn, like a real one
        if self.t.busy_next:
            self.t.busy_next -= 1
            return SendResult.retry(FailureKind.BUSY, "结果码 31 终端忙")
        cur = self.t.playing
        if cur is not None and order_rank(order) <= order_rank(cur):
            return SendResult.retry(FailureKind.BUSY, "结果码 31 终端忙")
        self.t.playing = order
        self.t.starts.append(order.ebm_id)
        return SendResult.ok()

    async def stop(self, ebm_id: str, terminal_code: str) -> SendResult:
        if self.t.playing is not None and self.t.playing.ebm_id == ebm_id:
            self.t.playing = None
        return SendResult.ok()

    def adopt(self, order: DeliveryOrder, terminal_code: str) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {}

    # driven by the test, as the terminal's reports would be
    def report(self, ebm_id: str, status: DeliveryStatus) -> None:
        assert self.t.sink is not None
        self.t.sink.report(DeliveryReport(ebm_id, CODE, status, self.t.clock.now()))

    def report_playing(self) -> None:
        assert self.t.playing is not None
        self.report(self.t.playing.ebm_id, DeliveryStatus.PLAYING)

    def report_played(self) -> None:
        cur = self.t.playing
        assert cur is not None
        self.t.playing = None
        self.t.completed.append(cur.ebm_id)
        self.report(cur.ebm_id, DeliveryStatus.PLAYED)


@dataclass
class Rig:
    dispatcher: Dispatcher
    receipts: ReceiptBook
    adapter: FakeAdapter
    term: FakeTerminal
    engine: Any
    clock: ManualClock
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # Every accepted delivery change, as the event bus tells subscribers (outlives the receipt book's
    # memory of a broadcast, which it forgets when the dispatcher lets it go).
    latest: dict[str, DeliveryStatus] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def on_delivery(self, event: DeliveryChanged) -> None:
        self.latest[event.ebm_id] = event.status

    async def air(
        self,
        *,
        msg_type: MsgType = MsgType.ACTUAL,
        severity: Severity = Severity.RED,
        kind: SourceKind = SourceKind.CAP,
        valid_s: float = 3600.0,
    ) -> DeliveryOrder:
        n = next(self.seq)
        draft = MessageDraft(
            msg_type=msg_type,
            event_type="11B03",
            severity=severity,
            sender_name="测试",
            sender_code=PLATFORM,
            sent_at=T0,
            start_at=T0,
            end_at=T0 + timedelta(seconds=valid_s),
            area_codes=("530181001001",),
            contents=(Content("zho", f"消息{n}", "正文"),),
            source=SourceRef(kind, "test", f"item-{n}"),
        )
        bid, ebm = await store.create_broadcast(
            self.engine,
            draft,
            platform_code=PLATFORM,
            received_at=T0,
            local_day=date(2026, 7, 1),
            targets=[TERMINAL],
        )
        order = DeliveryOrder(
            ebm_id=ebm,
            msg_type=draft.msg_type,
            severity=draft.severity,
            event_type=draft.event_type,
            priority=draft.priority,
            start_at=draft.start_at,
            end_at=draft.end_at,
            title=draft.primary.title,
            audio_url="http://127.0.0.1:1/a.mp3",
            audio=None,
        )
        self.ids[ebm] = bid
        await self.dispatcher.dispatch(bid, order, [TERMINAL])
        return order

    def status(self, order: DeliveryOrder) -> DeliveryStatus | None:
        tracked = self.receipts.status_of(order.ebm_id, CODE)
        return tracked if tracked is not None else self.latest.get(order.ebm_id)

    async def history(self, order: DeliveryOrder) -> list[tuple[str, str | None]]:
        await self.receipts.flush()
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(delivery_events.c.status, delivery_events.c.reason)
                .join(deliveries, deliveries.c.id == delivery_events.c.delivery_id)
                .where(deliveries.c.terminal_code == CODE)
                .where(deliveries.c.broadcast_id == self.ids[order.ebm_id])
                .order_by(delivery_events.c.id)
            )
            return [(r[0], r[1]) for r in rows]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}")
    await prepare_schema(engine, feature_tables())
    clock = ManualClock(T0)
    events = Events()
    receipts = ReceiptBook(engine, clock, events)
    term = FakeTerminal(clock)
    adapter = FakeAdapter(term)
    registry = AdapterRegistry(clock, {})
    registry.add("fake", adapter)
    retry = RetryPolicy(initial_s=0.01, max_s=0.02, jitter=(1.0, 1.0))
    dispatcher = Dispatcher(registry, receipts, clock, retry=retry)
    events.subscribe(DeliveryChanged, dispatcher.on_delivery_changed)
    links = LinkTracker(engine, events)
    await registry.start_all(CoreSink(receipts, links, dispatcher), [TERMINAL])
    await receipts.start()
    try:
        rig = Rig(dispatcher, receipts, adapter, term, engine, clock)
        events.subscribe(DeliveryChanged, rig.on_delivery)
        yield rig
    finally:
        await dispatcher.close()
        await receipts.close()
        await engine.dispose()


async def test_daily_programme_preempted_by_red_then_resumes(rig: Rig) -> None:
    daily = await rig.air(kind=SourceKind.SCHEDULE, severity=Severity.UNKNOWN)
    await until(lambda: rig.status(daily) is DeliveryStatus.ACKNOWLEDGED)
    rig.adapter.report_playing()
    assert rig.dispatcher.on_air(CODE) == daily.ebm_id

    red = await rig.air(severity=Severity.RED)
    await until(lambda: rig.status(red) is DeliveryStatus.ACKNOWLEDGED)
    assert rig.status(daily) is DeliveryStatus.QUEUED
    assert rig.dispatcher.on_air(CODE) == red.ebm_id
    # The programme waits behind the warning: not sent again while the warning is on air.
    await until(lambda: daily.ebm_id in rig.dispatcher.waiting_for(CODE))
    assert rig.term.starts == [daily.ebm_id, red.ebm_id]

    rig.adapter.report_playing()
    rig.adapter.report_played()  # the warning is over: the programme resumes
    await until(lambda: rig.status(daily) is DeliveryStatus.ACKNOWLEDGED)
    rig.adapter.report_played()
    assert rig.status(daily) is DeliveryStatus.PLAYED and rig.status(red) is DeliveryStatus.PLAYED
    assert rig.term.starts == [daily.ebm_id, red.ebm_id, daily.ebm_id]
    assert rig.term.completed == [red.ebm_id, daily.ebm_id]  # each played to the end once
    hist = await rig.history(daily)
    assert ("queued", "preempted") in hist
    assert [s for s, _ in hist].count("played") == 1


async def test_emergency_never_preempted_by_drill(rig: Rig) -> None:
    red = await rig.air(severity=Severity.BLUE)
    await until(lambda: rig.status(red) is DeliveryStatus.ACKNOWLEDGED)
    rig.adapter.report_playing()
    drill = await rig.air(msg_type=MsgType.TERMINAL_DRILL, kind=SourceKind.SCHEDULE)
    await until(lambda: drill.ebm_id in rig.dispatcher.waiting_for(CODE))
    # The controller does not even try: the terminal saw one start only.
    assert rig.term.attempts == 1 and rig.term.starts == [red.ebm_id]
    assert rig.status(red) is DeliveryStatus.PLAYING and rig.status(drill) is DeliveryStatus.QUEUED
    rig.adapter.report_played()
    await until(lambda: rig.status(drill) is DeliveryStatus.ACKNOWLEDGED)
    assert rig.term.starts == [red.ebm_id, drill.ebm_id]
    assert ("queued", "preempted") not in await rig.history(red)


async def test_equal_rank_waits_behind(rig: Rig) -> None:
    first = await rig.air(severity=Severity.ORANGE)
    await until(lambda: rig.status(first) is DeliveryStatus.ACKNOWLEDGED)
    second = await rig.air(severity=Severity.ORANGE)
    await until(lambda: second.ebm_id in rig.dispatcher.waiting_for(CODE))
    assert rig.status(first) is DeliveryStatus.ACKNOWLEDGED
    rig.adapter.report_played()
    await until(lambda: rig.status(second) is DeliveryStatus.ACKNOWLEDGED)
    assert rig.term.starts == [first.ebm_id, second.ebm_id]


async def test_highest_waiter_goes_first(rig: Rig) -> None:
    red = await rig.air(severity=Severity.RED)
    await until(lambda: rig.status(red) is DeliveryStatus.ACKNOWLEDGED)
    daily = await rig.air(kind=SourceKind.SCHEDULE, severity=Severity.UNKNOWN)
    drill = await rig.air(msg_type=MsgType.FRONT_END_DRILL, kind=SourceKind.SCHEDULE)
    await until(lambda: set(rig.dispatcher.waiting_for(CODE)) == {daily.ebm_id, drill.ebm_id})
    rig.adapter.report_played()
    await until(lambda: rig.status(drill) is DeliveryStatus.ACKNOWLEDGED)
    assert rig.status(daily) is DeliveryStatus.QUEUED
    rig.adapter.report_played()
    await until(lambda: rig.status(daily) is DeliveryStatus.ACKNOWLEDGED)
    assert rig.term.starts == [red.ebm_id, drill.ebm_id, daily.ebm_id]


async def test_busy_is_retried_with_backoff(rig: Rig) -> None:
    rig.term.busy_next = 2
    order = await rig.air()
    await until(lambda: rig.status(order) is DeliveryStatus.ACKNOWLEDGED)
    assert rig.term.attempts == 3
    assert [s for s, _ in await rig.history(order)] == ["queued", "sent", "sent", "sent", "acknowledged"]


async def test_preempted_item_reported_finished_is_not_resumed(rig: Rig) -> None:
    daily = await rig.air(kind=SourceKind.SCHEDULE, severity=Severity.UNKNOWN)
    await until(lambda: rig.status(daily) is DeliveryStatus.ACKNOWLEDGED)
    red = await rig.air(severity=Severity.YELLOW)
    await until(lambda: rig.status(red) is DeliveryStatus.ACKNOWLEDGED)
    assert rig.status(daily) is DeliveryStatus.QUEUED
    # A late report: the terminal had finished the programme just before the warning came.
    rig.adapter.report(daily.ebm_id, DeliveryStatus.PLAYED)
    rig.adapter.report_played()
    await until(lambda: rig.dispatcher.on_air(CODE) is None and not rig.dispatcher.waiting_for(CODE))
    assert rig.term.starts == [daily.ebm_id, red.ebm_id]


async def test_preempted_item_that_cannot_resume_fails_as_preempted(rig: Rig) -> None:
    daily = await rig.air(kind=SourceKind.SCHEDULE, severity=Severity.UNKNOWN, valid_s=0.3)
    await until(lambda: rig.status(daily) is DeliveryStatus.ACKNOWLEDGED)
    red = await rig.air(severity=Severity.RED)
    await until(lambda: rig.status(red) is DeliveryStatus.ACKNOWLEDGED)
    # The warning outlasts the programme's end time: the programme never comes back.
    await until(lambda: rig.status(daily) is DeliveryStatus.FAILED)
    assert (await rig.history(daily))[-1] == ("failed", "preempted")
    assert rig.term.starts == [daily.ebm_id, red.ebm_id]
    assert rig.dispatcher.on_air(CODE) == red.ebm_id


async def test_stopping_the_preempting_item_resumes_the_programme(rig: Rig) -> None:
    daily = await rig.air(kind=SourceKind.SCHEDULE, severity=Severity.UNKNOWN)
    await until(lambda: rig.status(daily) is DeliveryStatus.ACKNOWLEDGED)
    red = await rig.air(severity=Severity.RED)
    await until(lambda: rig.status(red) is DeliveryStatus.ACKNOWLEDGED)
    assert await rig.dispatcher.stop(red.ebm_id) == 1
    await until(lambda: rig.status(daily) is DeliveryStatus.ACKNOWLEDGED)
    assert rig.status(red) is DeliveryStatus.CANCELLED
    assert rig.term.starts == [daily.ebm_id, red.ebm_id, daily.ebm_id]
