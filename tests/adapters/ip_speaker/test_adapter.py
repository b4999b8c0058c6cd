"""The ip_speaker adapter against simulated terminals over real loopback sockets: registration,
delivery and its classification, reports, lies, link states, and the fault levers."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapters.base import Adapter
from adapters.ip_speaker.adapter import IpSpeakerAdapter, IpSpeakerConfigError
from adapters.ip_speaker.codec import Frame, FrameDecoder, HeaderVariant, PacketType, encode_frame
from adapters.ip_speaker.params import QueryReply
from adapters.ip_speaker.payload_fields import BusinessType, ResultCode
from adapters.ip_speaker.payloads import FaultReport, Heartbeat, Reply
from broadcast.clock import ManualClock
from broadcast.messages import FailureKind, Outcome
from broadcast.model import (
    DeliveryOrder,
    DeliveryStatus,
    FailureReason,
    LinkState,
    MsgType,
    Priority,
    Severity,
    TerminalKind,
    TerminalRef,
)
from sim.ip_playback import FETCH_FAILED
from sim.ip_terminal import SimTerminal
from tests.helpers.poll import until
from tests.helpers.sink import RecordingSink

PLATFORM = "45301810000000101010101"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
FRAME_LEN = 417  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no padding: 144 * 128000 / 44100
MP3_FRAMES = 20  # 20 × 1152 / 44100 ≈ 0.52 s


def _mp3(frames: int) -> bytes:
    return (bytes.fromhex("FFFB9000") + bytes(FRAME_LEN - 4)) * frames


def _ref(i: int) -> TerminalRef:
    return TerminalRef(
        resource_code=f"6530181001001031401{i // 100:02d}{i % 100:02d}",
        area_code="530181001001",
        name=f"测试音柱{i}",
        kind=TerminalKind.VILLAGE,
        physical_address=f"A0B0C0D0{i:04X}",
    )


@dataclass
class Rig:
    adapter: IpSpeakerAdapter
    sink: RecordingSink
    clock: ManualClock
    http: aiohttp.ClientSession
    audio_url: str
    refs: list[TerminalRef]
    sims: dict[str, SimTerminal] = field(default_factory=dict)
    seq: int = 0

    async def sim(self, ref: TerminalRef, **kw: Any) -> SimTerminal:
        kw.setdefault("time_scale", 0.01)
        t = SimTerminal(ref, "127.0.0.1", self.adapter.port, http=self.http, reconnect_initial_s=0.01, **kw)
        self.sims[ref.resource_code] = t
        await t.start()
        return t

    async def online(self, i: int, **kw: Any) -> SimTerminal:
        t = await self.sim(self.refs[i], **kw)
        assert await t.wait_registered(3.0)
        return t

    def order(self, url: str | None = None, **kw: Any) -> DeliveryOrder:
        self.seq += 1
        fields: dict[str, Any] = {
            "ebm_id": f"{PLATFORM}20261101{self.seq:04d}",
            "msg_type": MsgType.ACTUAL,
            "severity": Severity.RED,
            "event_type": "11B03",
            "priority": Priority.EMERGENCY,
            "start_at": T0,
            "end_at": T0 + timedelta(hours=1),
            "title": "暴雨红色预警",
            "audio_url": url if url is not None else self.audio_url,
            "audio": None,
            "volume": 90,
        }
        fields.update(kw)
        return DeliveryOrder(**fields)


async def make_rig(**config: Any) -> AsyncIterator[Rig]:
    async def short(_: web.Request) -> web.Response:
        return web.Response(body=_mp3(MP3_FRAMES), content_type="audio/mpeg")

    async def long(_: web.Request) -> web.Response:
        return web.Response(body=_mp3(2000), content_type="audio/mpeg")

    app = web.Application()
    app.router.add_get("/a.mp3", short)
    app.router.add_get("/long.mp3", long)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    clock = ManualClock(T0)
    refs = [_ref(i) for i in range(1, 9)]
    adapter = IpSpeakerAdapter({"port": 0, "platform_code": PLATFORM, "ack_timeout_s": 1.0, **config}, clock)
    sink = RecordingSink()
    await adapter.start(sink, refs)
    http = aiohttp.ClientSession()
    rig = Rig(adapter, sink, clock, http, f"http://127.0.0.1:{port}/a.mp3", refs)
    try:
        yield rig
    finally:
        for t in rig.sims.values():
            await t.stop()
        await adapter.close()
        await http.close()
        await runner.cleanup()


@pytest.fixture
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    async for r in make_rig(**getattr(request, "param", {})):
        yield r


def test_config_requires_platform_code() -> None:
    with pytest.raises(IpSpeakerConfigError, match="platform_code"):
        IpSpeakerAdapter({}, ManualClock(T0))
    adapter = IpSpeakerAdapter({"platform_code": PLATFORM}, ManualClock(T0))
    assert isinstance(adapter, Adapter)
    assert adapter.port == 9300


async def test_registration_marks_online(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    await rig.online(0)
    await until(lambda: rig.sink.link_states(code) == [LinkState.ONLINE])
    assert rig.sink.links[0].detail == "首次注册"
    assert rig.sink.heartbeats == [code]
    assert rig.adapter.is_reachable(code)
    assert rig.adapter.status()["connected"] == 1


async def test_deliver_ok_then_playing_then_played(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    sim = await rig.online(0)
    order = rig.order()
    result = await rig.adapter.deliver(order, code)
    assert result.outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.PLAYED in rig.sink.statuses(order.ebm_id, code))
    assert rig.sink.statuses(order.ebm_id, code) == [DeliveryStatus.PLAYING, DeliveryStatus.PLAYED]
    played = rig.sink.events[-1]
    assert played.meta["play_count"] == "1"
    (record,) = sim.played
    assert record.ebm_id == order.ebm_id and record.completed
    assert record.ended_at is not None and record.ended_at >= record.started_at
    assert rig.adapter.status()["frames_in"] >= 4


async def test_deliver_to_unconnected_or_unknown(rig: Rig) -> None:
    result = await rig.adapter.deliver(rig.order(), rig.refs[1].resource_code)
    assert (result.outcome, result.failure) == (Outcome.RETRY, FailureKind.NOT_CONNECTED)
    result = await rig.adapter.deliver(rig.order(), "69999999999999999999999")
    assert result.outcome is Outcome.PERMANENT


@pytest.mark.parametrize(
    ("result", "outcome", "failure"),
    [
        (ResultCode.BUSY, Outcome.RETRY, FailureKind.BUSY),
        (ResultCode.TERMINAL_BUSY, Outcome.RETRY, FailureKind.BUSY),
        (ResultCode.PARAM_ILLEGAL, Outcome.PERMANENT, FailureKind.REJECTED),
        (ResultCode.RESOURCE_CODE_INVALID, Outcome.PERMANENT, FailureKind.REJECTED),
    ],
)
async def test_nack_is_classified(rig: Rig, result: int, outcome: Outcome, failure: FailureKind) -> None:
    code = rig.refs[0].resource_code
    sim = await rig.online(0)
    sim.nack_next(1, result)
    order = rig.order()
    sent = await rig.adapter.deliver(order, code)
    assert (sent.outcome, sent.failure) == (outcome, failure)
    assert str(int(result)) in sent.detail
    assert sim.played == []
    again = await rig.adapter.deliver(order, code)  # the lever was for one frame only
    assert again.outcome is Outcome.ACCEPTED


async def test_reject_all_until_accept_all(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    sim = await rig.online(0)
    sim.reject_all(ResultCode.UNSUPPORTED)
    for _ in range(2):
        assert (await rig.adapter.deliver(rig.order(), code)).failure is FailureKind.REJECTED
    sim.accept_all()
    assert (await rig.adapter.deliver(rig.order(), code)).outcome is Outcome.ACCEPTED


@pytest.mark.parametrize("rig", [{"ack_timeout_s": 0.2}], indirect=True)
async def test_dropped_frame_times_out_and_link_still_works(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    sim = await rig.online(0)
    sim.drop_next(1)
    result = await rig.adapter.deliver(rig.order(), code)
    assert (result.outcome, result.failure) == (Outcome.RETRY, FailureKind.TIMEOUT)
    assert rig.adapter.status()["ack_timeouts"] == 1
    assert (await rig.adapter.deliver(rig.order(), code)).outcome is Outcome.ACCEPTED


@pytest.mark.parametrize("rig", [{"ack_timeout_s": 0.2}], indirect=True)
async def test_delayed_reply_beyond_timeout_then_within(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    sim = await rig.online(0)
    sim.delay(400)
    assert (await rig.adapter.deliver(rig.order(), code)).failure is FailureKind.TIMEOUT
    sim.delay(20)
    assert (await rig.adapter.deliver(rig.order(), code)).outcome is Outcome.ACCEPTED


async def test_corrupted_frame_is_dropped_and_connection_survives(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    sim = await rig.online(0)
    beats = len(rig.sink.heartbeats)
    sim.corrupt_next_frame()
    sim.send_heartbeat()
    await until(lambda: rig.adapter.status()["crc_errors"] == 1)
    assert len(rig.sink.heartbeats) == beats  # the corrupted heartbeat was not believed
    assert rig.adapter.is_reachable(code)
    sim.send_heartbeat()
    await until(lambda: len(rig.sink.heartbeats) == beats + 1)
    order = rig.order()
    assert (await rig.adapter.deliver(order, code)).outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.PLAYED in rig.sink.statuses(order.ebm_id, code))
    assert rig.sink.link_states(code) == [LinkState.ONLINE]


async def test_lies_are_rejected_without_events(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    sim = await rig.online(0)
    order = rig.order()
    assert (await rig.adapter.deliver(order, code)).outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.PLAYED in rig.sink.statuses(order.ebm_id, code))
    before = list(rig.sink.events)
    never = f"{PLATFORM}202611019999"
    sim.lie_next_result(never)  # an EBM never delivered to it
    sim.lie_next_result(order.ebm_id, wrong_source=True)  # someone else's resource code
    sim.lie_next_result(order.ebm_id, end_before_start=True)  # impossible times
    await until(lambda: len(sim.rejections) == 3)
    assert {r.result for r in sim.rejections} == {ResultCode.PARAM_ILLEGAL}
    assert rig.sink.events == before
    assert rig.adapter.status()["rejected_reports"] == 3
    assert rig.adapter.is_reachable(code)


async def test_duplicate_start_is_acknowledged_not_replayed(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    sim = await rig.online(0)
    order = rig.order()
    first, second = await asyncio.gather(rig.adapter.deliver(order, code), rig.adapter.deliver(order, code))
    assert first.outcome is Outcome.ACCEPTED and second.outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.PLAYED in rig.sink.statuses(order.ebm_id, code))
    assert (await rig.adapter.deliver(order, code)).outcome is Outcome.ACCEPTED
    assert sim.duplicates_ignored == 2
    assert [p.ebm_id for p in sim.played] == [order.ebm_id]


async def test_fetch_failure_reports_playback_failed(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    sim = await rig.online(0)
    order = rig.order(url=rig.audio_url.replace("a.mp3", "missing.mp3"))
    assert (await rig.adapter.deliver(order, code)).outcome is Outcome.ACCEPTED
    await until(lambda: rig.sink.statuses(order.ebm_id, code) == [DeliveryStatus.FAILED])
    failed = rig.sink.events[-1]
    assert failed.reason is FailureReason.PLAYBACK_FAILED and failed.detail == FETCH_FAILED
    assert sim.fetch_failures == 1 and sim.played == []


async def test_stop_cancels_playback(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    sim = await rig.online(0, time_scale=1.0)
    order = rig.order(url=rig.audio_url.replace("a.mp3", "long.mp3"))
    assert (await rig.adapter.deliver(order, code)).outcome is Outcome.ACCEPTED
    await until(lambda: rig.sink.statuses(order.ebm_id, code) == [DeliveryStatus.PLAYING])
    assert (await rig.adapter.stop(order.ebm_id, code)).outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.CANCELLED in rig.sink.statuses(order.ebm_id, code))
    assert rig.sink.events[-1].reason is FailureReason.CANCELLED
    (record,) = sim.played
    assert not record.completed and sim.playing is None


async def test_go_offline_and_come_back(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    sim = await rig.online(0)
    await sim.go_offline()
    await until(lambda: rig.sink.link_states(code) == [LinkState.ONLINE, LinkState.OFFLINE])
    result = await rig.adapter.deliver(rig.order(), code)
    assert result.failure is FailureKind.NOT_CONNECTED
    await sim.come_online()
    await until(lambda: rig.sink.link_states(code)[-1] is LinkState.ONLINE)
    assert rig.sink.links[-1].detail == "重新连接"
    assert sim.first_registrations == 1 and sim.registrations == 2


async def test_reboot_re_registers_and_forgets(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    sim = await rig.online(0)
    order = rig.order()
    await rig.adapter.deliver(order, code)
    await until(lambda: DeliveryStatus.PLAYED in rig.sink.statuses(order.ebm_id, code))
    await sim.reboot()
    await until(lambda: rig.sink.link_states(code) == [LinkState.ONLINE, LinkState.OFFLINE, LinkState.ONLINE])
    assert rig.sink.links[-1].detail == "首次注册"
    assert sim.first_registrations == 2
    await rig.adapter.deliver(order, code)  # forgotten: it plays again
    await until(lambda: len(sim.played) == 2 and sim.played[1].completed)
    assert sim.duplicates_ignored == 0


async def test_unknown_physical_address_is_refused(rig: Rig) -> None:
    stranger = TerminalRef(
        "65301810010010314019999", "530181001001", "陌生终端", TerminalKind.VILLAGE, "FFFFFFFF"
    )
    sim = await rig.sim(stranger)
    await until(lambda: rig.adapter.status()["unknown_terminals"] >= 1)
    assert not sim.registered
    assert rig.sink.links == []
    await sim.stop()


async def test_fault_and_recovery(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    sim = await rig.online(0)
    sim.report_fault()
    await until(lambda: rig.sink.link_states(code)[-1:] == [LinkState.FAULT])
    sim.send_heartbeat()  # still faulty: no repeated link event
    await until(lambda: len(rig.sink.heartbeats) == 2)
    sim.recover()
    await until(lambda: rig.sink.link_states(code) == [LinkState.ONLINE, LinkState.FAULT, LinkState.ONLINE])


async def test_heartbeat_silence_marks_offline(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    sim = await rig.online(0)
    rig.clock.advance(60)
    assert rig.adapter.check_liveness() == 0
    rig.clock.advance(31)
    assert rig.adapter.check_liveness() == 1
    assert rig.sink.link_states(code) == [LinkState.ONLINE, LinkState.OFFLINE]
    assert rig.sink.links[-1].detail.startswith("90")
    await until(lambda: sim.registrations == 2)  # the terminal notices and reconnects
    await until(lambda: rig.sink.link_states(code)[-1] is LinkState.ONLINE)


async def test_query_returns_parameters(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    await rig.online(0)
    reply = await rig.adapter.query(code)
    assert isinstance(reply, QueryReply)
    assert (reply.resource_code, reply.volume, reply.physical_address) == (code, 80, b"A0B0C0D00001")


async def test_second_connection_replaces_first(rig: Rig) -> None:
    ref = rig.refs[2]

    async def register() -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Reply]:
        reader, writer = await asyncio.open_connection("127.0.0.1", rig.adapter.port)
        hb = Heartbeat(1, True, ref.physical_address.encode())
        writer.write(encode_frame(Frame(1, 1, ref.resource_code, (), BusinessType.HEARTBEAT, hb.encode())))
        (frame,) = FrameDecoder().feed(await reader.read(1024))
        assert isinstance(frame, Frame) and frame.packet_type == PacketType.RESPONSE
        reply = frame.payload()
        assert isinstance(reply, Reply)
        return reader, writer, reply

    r1, w1, reply1 = await register()
    _r2, w2, reply2 = await register()
    assert reply1.ok and reply2.ok
    assert await r1.read(1024) == b""  # the first link was closed by the controller
    assert rig.sink.link_states(ref.resource_code) == [LinkState.ONLINE]  # no offline blip
    assert rig.adapter.is_reachable(ref.resource_code)
    w1.close()
    w2.close()
    await until(lambda: rig.sink.link_states(ref.resource_code)[-1] is LinkState.OFFLINE)


async def test_request_before_registration_is_refused(rig: Rig) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", rig.adapter.port)
    report = FaultReport(1, 3, "功放输出过低", 0).encode()
    writer.write(encode_frame(Frame(5, 1, rig.refs[0].resource_code, (), BusinessType.FAULT_REPORT, report)))
    (frame,) = FrameDecoder().feed(await reader.read(1024))
    assert isinstance(frame, Frame)
    reply = frame.payload()
    assert isinstance(reply, Reply) and reply.result == ResultCode.RESOURCE_CODE_INVALID
    assert await reader.read(1024) == b""
    writer.close()


@pytest.mark.parametrize("rig", [{"header_variant": "return_channel"}], indirect=True)
async def test_return_channel_header_variant(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    await rig.online(0, header_variant=HeaderVariant.RETURN_CHANNEL)
    order = rig.order(msg_type=MsgType.TERMINAL_DRILL, priority=Priority.DRILL)
    assert (await rig.adapter.deliver(order, code)).outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.PLAYED in rig.sink.statuses(order.ebm_id, code))


async def test_many_terminals_concurrently(rig: Rig) -> None:
    sims = [await rig.online(i) for i in range(len(rig.refs))]
    order = rig.order()
    results = await asyncio.gather(*(rig.adapter.deliver(order, r.resource_code) for r in rig.refs))
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    await until(lambda: sum(e.status is DeliveryStatus.PLAYED for e in rig.sink.events) == len(rig.refs))
    assert all(len(s.played) == 1 and s.played[0].completed for s in sims)


def test_frame_layout_sanity() -> None:
    # The 11-byte header really lacks the sign flag: total length sits at bytes 9-10.
    raw = encode_frame(Frame(1, 1, PLATFORM, (), 0x10, b"\x01\x01\x00"), HeaderVariant.RETURN_CHANNEL)
    assert struct.unpack(">H", raw[9:11])[0] == len(raw)
