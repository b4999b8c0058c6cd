"""The core's sink alone: each kind of adapter report goes where it belongs — delivery progress to the
receipt book, a device's cut-off report for a delivery the dispatcher already queued to resume nowhere,
link state to the link tracker (whose ``LinkChanged`` brings a parked delivery back the moment its
terminal reconnects), heartbeats to last-seen only — and an unknown report is an error, not a drop.
Real receipt book, link tracker, dispatcher and SQLite store, wired as the composition root wires them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.base import AdapterSink, Capability
from adapters.registry import AdapterRegistry
from broadcast.app.schema import feature_tables
from broadcast.clock import ManualClock
from broadcast.dispatch.dispatcher import Dispatcher
from broadcast.dispatch.links import LinkTracker
from broadcast.dispatch.receipts import ReceiptBook
from broadcast.dispatch.sink import CoreSink
from broadcast.events import DeliveryChanged, Events, LinkChanged
from broadcast.messages import DeliveryReport, HeartbeatReport, LinkReport, SendResult
from broadcast.model import (
    Content,
    DeliveryOrder,
    DeliveryStatus,
    FailureReason,
    LinkState,
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
from tests.helpers.poll import until

T0 = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)
PLATFORM = "34530181000000000000000"
CODE = "06530181001001010101001"
TERMINAL = TerminalRef(CODE, "530181001001", "一号喇叭", TerminalKind.VILLAGE, "AA0001", adapter="fake")


@dataclass
class Speaker:
    """A fake adapter: accepts every start while its terminal is reachable."""

    name: str = "fake"
    capabilities: frozenset[Capability] = frozenset({Capability.AUDIO_URL})
    reachable: bool = True
    starts: list[str] = field(default_factory=list)

    async def start(self, sink: AdapterSink, terminals: Sequence[TerminalRef]) -> None: ...

    async def close(self) -> None: ...

    def is_reachable(self, terminal_code: str) -> bool:
        return self.reachable

    async def deliver(self, order: DeliveryOrder, terminal_code: str) -> SendResult:
        self.starts.append(order.ebm_id)
        return SendResult.ok()

    async def stop(self, ebm_id: str, terminal_code: str) -> SendResult:
        return SendResult.ok()

    def adopt(self, order: DeliveryOrder, terminal_code: str) -> None: ...

    def status(self) -> dict[str, Any]:
        return {}


@dataclass
class Rig:
    sink: CoreSink
    receipts: ReceiptBook
    links: LinkTracker
    dispatcher: Dispatcher
    speaker: Speaker
    engine: Any
    clock: ManualClock
    link_events: list[LinkChanged] = field(default_factory=list)

    async def broadcast(self, n: int = 1) -> DeliveryOrder:
        draft = MessageDraft(
            msg_type=MsgType.ACTUAL,
            event_type="11B03",
            severity=Severity.RED,
            sender_name="测试",
            sender_code=PLATFORM,
            sent_at=T0,
            start_at=T0,
            end_at=T0 + timedelta(hours=1),
            area_codes=("530181001001",),
            contents=(Content("zho", f"消息{n}", "正文"),),
            source=SourceRef(SourceKind.CAP, "test", f"sink-{n}"),
        )
        bid, ebm = await store.create_broadcast(
            self.engine, draft, platform_code=PLATFORM, received_at=T0, local_day=date(2026, 12, 8), targets=[TERMINAL]
        )
        order = DeliveryOrder(
            ebm, draft.msg_type, draft.severity, "11B03", draft.priority, T0, draft.end_at, "t", "http://x/a.mp3", None
        )
        await self.dispatcher.dispatch(bid, order, [TERMINAL])
        return order

    def status(self, order: DeliveryOrder) -> DeliveryStatus | None:
        return self.receipts.status_of(order.ebm_id, CODE)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 's.sqlite3'}")
    await prepare_schema(engine, feature_tables())
    clock = ManualClock(T0)
    events = Events()
    receipts = ReceiptBook(engine, clock, events)
    links = LinkTracker(engine, events)
    links.seed({CODE: LinkState.OFFLINE})
    speaker = Speaker()
    registry = AdapterRegistry(clock, {})
    registry.add("fake", speaker)
    dispatcher = Dispatcher(registry, receipts, clock, retry=RetryPolicy(initial_s=0.01, max_s=0.02, jitter=(1.0, 1.0)))
    events.subscribe(DeliveryChanged, dispatcher.on_delivery_changed)
    events.subscribe(LinkChanged, dispatcher.on_link_changed)
    sink = CoreSink(receipts, links, dispatcher)
    await registry.start_all(sink, [TERMINAL])
    rig = Rig(sink, receipts, links, dispatcher, speaker, engine, clock)
    events.subscribe(LinkChanged, rig.link_events.append)
    await receipts.start()
    try:
        yield rig
    finally:
        await dispatcher.close()
        await receipts.close()
        await links.close()
        await engine.dispose()


async def test_delivery_reports_reach_the_receipt_book(rig: Rig) -> None:
    order = await rig.broadcast()
    await until(lambda: rig.status(order) is DeliveryStatus.ACKNOWLEDGED)
    rig.sink.report(DeliveryReport(order.ebm_id, CODE, DeliveryStatus.PLAYING, T0))
    assert rig.status(order) is DeliveryStatus.PLAYING
    rig.sink.report(DeliveryReport(order.ebm_id, CODE, DeliveryStatus.PLAYED, T0))
    assert rig.status(order) is DeliveryStatus.PLAYED
    rig.sink.report(DeliveryReport(order.ebm_id, CODE, DeliveryStatus.PLAYING, T0))  # late, lying: refused
    assert rig.status(order) is DeliveryStatus.PLAYED


async def test_a_cut_off_report_for_a_delivery_that_will_resume_is_not_a_failure(rig: Rig) -> None:
    order = await rig.broadcast()
    await until(lambda: rig.status(order) is DeliveryStatus.ACKNOWLEDGED)
    rig.sink.report(DeliveryReport(order.ebm_id, CODE, DeliveryStatus.FAILED, T0, FailureReason.PREEMPTED, "被插播"))
    assert rig.status(order) is DeliveryStatus.ACKNOWLEDGED
    rig.sink.report(DeliveryReport(order.ebm_id, CODE, DeliveryStatus.FAILED, T0, FailureReason.PLAYBACK_FAILED))
    assert rig.status(order) is DeliveryStatus.FAILED  # any other failure is believed


async def test_links_change_once_and_a_reconnect_brings_the_parked_delivery_back(rig: Rig) -> None:
    rig.speaker.reachable = False
    order = await rig.broadcast()
    await until(lambda: rig.status(order) is DeliveryStatus.OFFLINE)
    assert rig.speaker.starts == []

    rig.sink.report(HeartbeatReport(CODE, T0 + timedelta(seconds=1)))  # a sign of life is not a change
    assert rig.links.last_seen(CODE) == T0 + timedelta(seconds=1) and rig.link_events == []

    rig.speaker.reachable = True
    at = T0 + timedelta(seconds=2)
    rig.sink.report(LinkReport(CODE, LinkState.ONLINE, at, "重新连接"))
    rig.sink.report(LinkReport(CODE, LinkState.ONLINE, at, "重新连接"))  # same state again: no event
    assert rig.link_events == [LinkChanged(CODE, LinkState.ONLINE, LinkState.OFFLINE, at, "重新连接")]
    assert rig.links.state(CODE) is LinkState.ONLINE and rig.links.changed_at(CODE) == at
    await until(lambda: rig.status(order) is DeliveryStatus.ACKNOWLEDGED)
    assert rig.speaker.starts == [order.ebm_id]


async def test_an_unknown_report_is_an_error(rig: Rig) -> None:
    with pytest.raises(TypeError, match="unknown adapter report"):
        rig.sink.report("played")  # type: ignore[arg-type]
