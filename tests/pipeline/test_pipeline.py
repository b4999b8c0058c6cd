"""The pipeline stage alone (no controller): real SQLite store, a recording dispatcher, a renderer
stand-in and the event bus. It records a broadcast with one queued delivery per target, announces
``BroadcastAiring`` and waits for its subscribers before anything goes out, hands the dispatcher one
order whose audio URL follows the one rule, completes on ``BroadcastSettled``, stops, and marks a
broadcast failed when it cannot go on air."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from broadcast.app.schema import feature_tables
from broadcast.clock import ManualClock
from broadcast.events import BroadcastAiring, BroadcastSettled, Events
from broadcast.model import (
    AudioRef,
    BroadcastState,
    Content,
    DeliveryOrder,
    DeliveryStatus,
    MessageDraft,
    MsgType,
    Severity,
    SourceKind,
    SourceRef,
    TerminalRef,
)
from broadcast.pipeline.pipeline import Pipeline
from broadcast.store import broadcasts as store
from broadcast.store.db import make_engine, prepare_schema
from terminals.inventory import default_inventory
from tests.helpers.poll import until

T0 = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)
STREET = "530181001000"
BASE = "http://127.0.0.1:9999"
DIGEST = "cd" * 32


def draft(n: int = 1, *, area: str = STREET) -> MessageDraft:
    return MessageDraft(
        msg_type=MsgType.ACTUAL,
        event_type="11B03",
        severity=Severity.RED,
        sender_name="安宁市气象台",
        sender_code="53018141600000",
        sent_at=T0,
        start_at=T0,
        end_at=T0 + timedelta(hours=1),
        area_codes=(area,),
        contents=(Content("zho", f"暴雨红色预警 {n}", "请立即停止户外活动。"),),
        source=SourceRef(SourceKind.CAP, "安宁市气象台", f"pipeline-{n}", "2026-12-08T11:00:00+08:00"),
    )


@dataclass
class Dispatched:
    broadcast_id: int
    order: DeliveryOrder
    targets: tuple[str, ...]


@dataclass
class RecordingDispatcher:
    sent: list[Dispatched] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    live: set[str] = field(default_factory=set)

    async def dispatch(self, broadcast_id: int, order: DeliveryOrder, targets: Sequence[TerminalRef]) -> None:
        self.sent.append(Dispatched(broadcast_id, order, tuple(t.resource_code for t in targets)))
        self.live.add(order.ebm_id)

    def is_live(self, ebm_id: str) -> bool:
        return ebm_id in self.live

    def halt(self, ebm_id: str) -> list[TerminalRef]:
        self.stopped.append(ebm_id)
        self.live.discard(ebm_id)
        return list(default_inventory().terminals[:1])

    async def send_stops(self, ebm_id: str, terminals: Sequence[TerminalRef]) -> int:
        return len(terminals)


@dataclass(frozen=True)
class Rendered:
    ref: AudioRef


class Renderer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.fail = False

    async def render(self, title: str, text: str, *, repeats: int = 1) -> Rendered:
        if self.fail:
            raise RuntimeError("语音引擎全部失败")
        self.calls.append((title, text, repeats))
        return Rendered(AudioRef(DIGEST, "mp3", 42.0, engine="stand-in"))


class Unsettled:
    engine: AsyncEngine

    def __init__(self) -> None:
        self.count = 1
        self.flushes = 0

    def unsettled(self, broadcast_id: int) -> int:
        return self.count

    async def flush(self, *, also: Callable[[AsyncConnection], Awaitable[None]] | None = None) -> None:
        self.flushes += 1
        if also is not None:
            async with self.engine.begin() as conn:
                await also(conn)


@dataclass
class Rig:
    pipeline: Pipeline
    dispatcher: RecordingDispatcher
    renderer: Renderer
    events: Events
    engine: Any
    receipts: Unsettled

    async def state(self, bid: int) -> BroadcastState:
        row = await store.get_broadcast(self.engine, bid)
        assert row is not None
        return BroadcastState(row["state"])


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.sqlite3'}")
    await prepare_schema(engine, feature_tables())
    events = Events()
    dispatcher, renderer, receipts = RecordingDispatcher(), Renderer(), Unsettled()
    receipts.engine = engine
    pipeline = Pipeline(
        engine, default_inventory(), renderer, dispatcher, receipts, ManualClock(T0), events, audio_base_url=BASE + "/"
    )
    events.subscribe(BroadcastSettled, pipeline.complete)
    try:
        yield Rig(pipeline, dispatcher, renderer, events, engine, receipts)
    finally:
        await pipeline.close()
        await engine.dispose()


async def test_recorded_then_aired_with_one_order_per_broadcast(rig: Rig) -> None:
    street = default_inventory().resolve([STREET])
    rec = await rig.pipeline.record(draft())
    assert [t.resource_code for t in rec.targets] == [t.resource_code for t in street]
    rows = await store.delivery_rows(rig.engine, rec.broadcast_id)
    assert len(rows) == len(street) and {r["status"] for r in rows} == {str(DeliveryStatus.QUEUED)}
    assert rig.dispatcher.sent == [] and await rig.state(rec.broadcast_id) is BroadcastState.RECEIVED

    rig.pipeline.air(rec.broadcast_id, rec.ebm_id, draft())  # targets: those recorded with it
    await until(lambda: len(rig.dispatcher.sent) == 1)
    (sent,) = rig.dispatcher.sent
    assert sent.targets == tuple(t.resource_code for t in street)
    assert sent.order.ebm_id == rec.ebm_id and sent.order.audio is not None
    assert sent.order.audio_url == f"{BASE}/audio/{DIGEST}.mp3"
    assert rig.renderer.calls == [("暴雨红色预警 1", "请立即停止户外活动。", 3)]  # red: read three times
    assert await rig.state(rec.broadcast_id) is BroadcastState.BROADCASTING


async def test_airing_subscribers_finish_before_anything_goes_out(rig: Rig) -> None:
    gate = asyncio.Event()
    seen: list[tuple[int, BroadcastState, int]] = []

    async def supersede(event: BroadcastAiring) -> None:
        seen.append((event.broadcast_id, await rig.state(event.broadcast_id), len(rig.dispatcher.sent)))
        await gate.wait()

    rig.events.subscribe(BroadcastAiring, supersede)
    rec = await rig.pipeline.submit(draft())
    await until(lambda: bool(seen))
    assert seen == [(rec.broadcast_id, BroadcastState.RENDERING, 0)]
    assert rig.renderer.calls == [] and rig.dispatcher.sent == []
    gate.set()
    await until(lambda: len(rig.dispatcher.sent) == 1)


async def test_settlement_completes_once_and_only_what_is_on_air(rig: Rig) -> None:
    rec = await rig.pipeline.submit(draft())
    await until(lambda: len(rig.dispatcher.sent) == 1)
    await rig.events.publish(BroadcastSettled(rec.broadcast_id))
    assert await rig.state(rec.broadcast_id) is BroadcastState.COMPLETED
    await rig.events.publish(BroadcastSettled(rec.broadcast_id))  # again: nothing to do
    history = await store.broadcast_history(rig.engine, rec.broadcast_id)
    assert [h["state"] for h in history].count(str(BroadcastState.COMPLETED)) == 1

    held = await rig.pipeline.record(draft(2))
    await rig.pipeline.hold(held.broadcast_id, detail="等待值班员确认")
    await rig.events.publish(BroadcastSettled(held.broadcast_id))
    assert await rig.state(held.broadcast_id) is BroadcastState.PENDING_APPROVAL


async def test_nothing_to_wait_for_completes_at_dispatch(rig: Rig) -> None:
    rig.receipts.count = 0  # e.g. resumed after a restart with every delivery already played
    rec = await rig.pipeline.submit(draft())
    await until(lambda: len(rig.dispatcher.sent) == 1)
    await until(lambda: rig.pipeline.in_flight == 0)
    assert await rig.state(rec.broadcast_id) is BroadcastState.COMPLETED


async def test_stop_on_air_halts_dispatch_and_cancels_in_one_write(rig: Rig) -> None:
    rec = await rig.pipeline.submit(draft())
    await until(lambda: len(rig.dispatcher.sent) == 1)
    assert await rig.pipeline.stop(rec.broadcast_id, actor="值班员") == 1  # one terminal was playing
    assert rig.dispatcher.stopped == [rec.ebm_id] and rig.receipts.flushes == 1
    assert await rig.state(rec.broadcast_id) is BroadcastState.CANCELLED


async def test_stop_before_air_settles_the_queue_and_it_never_goes_out(rig: Rig) -> None:
    rec = await rig.pipeline.record(draft())
    assert await rig.pipeline.stop(rec.broadcast_id, actor="值班员") == 0  # nothing was playing
    assert await rig.state(rec.broadcast_id) is BroadcastState.CANCELLED
    rows = await store.delivery_rows(rig.engine, rec.broadcast_id)
    assert {r["status"] for r in rows} == {str(DeliveryStatus.CANCELLED)}
    rig.pipeline.air(rec.broadcast_id, rec.ebm_id, draft())  # a late release finds it stopped
    await until(lambda: rig.pipeline.in_flight == 0)
    assert rig.dispatcher.sent == [] and await rig.state(rec.broadcast_id) is BroadcastState.CANCELLED
    assert await rig.pipeline.stop(rec.broadcast_id) == 0  # stopping twice sends nothing


async def test_a_broadcast_that_cannot_be_rendered_is_marked_failed(rig: Rig) -> None:
    rig.renderer.fail = True
    rec = await rig.pipeline.submit(draft())
    await until(lambda: rig.pipeline.in_flight == 0)
    assert await rig.state(rec.broadcast_id) is BroadcastState.FAILED
    history = await store.broadcast_history(rig.engine, rec.broadcast_id)
    assert "语音引擎全部失败" in history[-1]["detail"] and rig.dispatcher.sent == []
