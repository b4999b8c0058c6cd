"""FM adapter + simulated encoder over a real pty pair and over socket://: the whole path runs real code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.fm.adapter import FmAdapter, radiotext_for
from adapters.fm.device import ProgrammeInput
from adapters.fm.uecp import StuffingVariant
from adapters.fm.uecp_elements import AckCode
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
)
from sim.fm_encoder import FmEncoderSim
from sim.serial_pty import PtyHost, TcpHost
from tests.helpers.sink import RecordingSink

T0 = datetime(2026, 11, 15, 2, 0, tzinfo=UTC)
TX = "43415230000000301010301"
EBM = "43415230000000101010101202611150001"


def order(ebm_id: str = EBM, minutes: int = 10, title: str = "安宁县暴雨红色预警") -> DeliveryOrder:
    return DeliveryOrder(
        ebm_id=ebm_id,
        msg_type=MsgType.ACTUAL,
        severity=Severity.RED,
        event_type="11B03",
        priority=Priority.EMERGENCY,
        start_at=T0,
        end_at=T0 + timedelta(minutes=minutes),
        title=title,
        audio_url="http://127.0.0.1/a.mp3",
        audio=None,
    )


def config(url: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "url": url,
        "site": 0,
        "encoder": 1,
        "stuffing": "standard",
        "ack_timeout_s": 0.15,
        "retransmits": 1,
        "resource_code": TX,
        "pi": 0xC201,
        "normal": {"ps": "ANNINGFM", "pty": 10, "rt": "Anning FM 97.4", "tp": True},
    }
    base.update(extra)
    return base


Rig = tuple[FmEncoderSim, FmAdapter, RecordingSink, ManualClock]
MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture(params=["pty", "socket"])
async def make_rig(request: pytest.FixtureRequest) -> AsyncIterator[MakeRig]:
    hosts: list[PtyHost | TcpHost] = []
    adapters: list[FmAdapter] = []

    async def make(variant: StuffingVariant = StuffingVariant.STANDARD, **extra: Any) -> Rig:
        sim = FmEncoderSim(variant=variant)
        if request.param == "pty":
            pty = PtyHost(sim)
            url = pty.start()
            hosts.append(pty)
        else:
            tcp = TcpHost(sim)
            url = await tcp.start()
            hosts.append(tcp)
        clock = ManualClock(T0)
        adapter = FmAdapter(config(url, stuffing=variant.value, **extra), clock)
        sink = RecordingSink()
        await adapter.start(sink, [])
        adapters.append(adapter)
        return sim, adapter, sink, clock

    yield make
    for a in adapters:
        await a.close()
    for h in hosts:
        await h.close()


@pytest.mark.parametrize("variant", list(StuffingVariant))
async def test_deliver_puts_alarm_on_air_and_end_restores(
    make_rig: MakeRig, variant: StuffingVariant
) -> None:
    sim, adapter, sink, clock = await make_rig(variant)
    assert adapter.is_reachable(TX)

    result = await adapter.deliver(order(), TX)

    assert result.outcome is Outcome.ACCEPTED, result
    s = sim.state
    assert (s.pty, s.ta, s.tp) == (31, True, True)
    assert s.radiotext == radiotext_for(order())
    assert s.radiotext.startswith("EMERGENCY ALERT 11B03 RED") and s.radiotext.endswith("202611150001")
    assert s.programme_input is ProgrammeInput.EMERGENCY
    assert sink.statuses(EBM) == [DeliveryStatus.PLAYING]
    assert sim.rejected == []

    await adapter.tick()  # not yet due
    assert sim.state.pty == 31 and sink.statuses(EBM) == [DeliveryStatus.PLAYING]

    clock.advance(10 * 60)
    await adapter.tick()
    s = sim.state
    assert (s.pty, s.ta, s.tp, s.ps, s.pi) == (10, False, True, "ANNINGFM", 0xC201)
    assert s.radiotext == "Anning FM 97.4"
    assert s.programme_input is ProgrammeInput.NORMAL
    assert sink.statuses(EBM) == [DeliveryStatus.PLAYING, DeliveryStatus.PLAYED]
    assert adapter.on_air is None


async def test_stop_restores_and_reports_cancelled(make_rig: MakeRig) -> None:
    sim, adapter, sink, _ = await make_rig()
    assert (await adapter.deliver(order(), TX)).outcome is Outcome.ACCEPTED
    result = await adapter.stop(EBM, TX)
    assert result.outcome is Outcome.ACCEPTED
    assert sim.state.programme_input is ProgrammeInput.NORMAL and sim.state.pty == 10
    assert sink.statuses(EBM) == [DeliveryStatus.PLAYING, DeliveryStatus.CANCELLED]
    assert sink.events[-1].reason is FailureReason.CANCELLED


async def test_nack_is_permanent(make_rig: MakeRig) -> None:
    sim, adapter, sink, _ = await make_rig()
    sim.nack_next(1, AckCode.MSG_NOT_ACCEPTABLE)
    result = await adapter.deliver(order(), TX)
    assert result.outcome is Outcome.PERMANENT and result.failure is FailureKind.REJECTED
    assert "MSG_NOT_ACCEPTABLE" in result.detail
    assert sink.statuses(EBM) == []


async def test_silent_encoder_is_classified_retry(make_rig: MakeRig) -> None:
    sim, adapter, sink, _ = await make_rig()
    sim.drop_next(2)  # first frame and its retransmission
    result = await adapter.deliver(order(), TX)
    assert result.outcome is Outcome.RETRY and result.failure is FailureKind.TIMEOUT
    assert sim.dropped == 2
    assert not adapter.is_reachable(TX)
    assert LinkState.OFFLINE in sink.link_states(TX)


async def test_one_drop_is_covered_by_retransmission(make_rig: MakeRig) -> None:
    sim, adapter, _, _ = await make_rig()
    sim.drop_next(1)
    result = await adapter.deliver(order(), TX)
    assert result.outcome is Outcome.ACCEPTED
    assert sim.dropped == 1 and adapter.status()["encoder"]["retransmits"] == 1


async def test_corrupted_frame_gets_nack_and_retransmission_succeeds(make_rig: MakeRig) -> None:
    sim, adapter, _, _ = await make_rig()
    sim.corrupt_next_frame()
    result = await adapter.deliver(order(), TX)
    assert result.outcome is Outcome.ACCEPTED
    assert [r.code for r in sim.rejected] == [AckCode.CRC_ERROR]
    assert sim.nacks_sent == [AckCode.CRC_ERROR]
    assert sim.state.pty == 31 and sim.state.programme_input is ProgrammeInput.EMERGENCY


async def test_offline_encoder_then_recovery(make_rig: MakeRig) -> None:
    sim, adapter, sink, _ = await make_rig()
    sim.go_offline()
    assert (await adapter.deliver(order(), TX)).outcome is Outcome.RETRY
    sim.come_online()
    assert (await adapter.deliver(order(), TX)).outcome is Outcome.ACCEPTED
    assert adapter.is_reachable(TX)
    assert (sink.links[-1].terminal_code, sink.links[-1].state) == (TX, LinkState.ONLINE)


async def test_unknown_terminal_and_expired_order_are_permanent(make_rig: MakeRig) -> None:
    _, adapter, _, clock = await make_rig()
    other = await adapter.deliver(order(), "43415230000000301010302")
    assert other.outcome is Outcome.PERMANENT and other.failure is FailureKind.UNSUPPORTED
    clock.advance(3600)
    late = await adapter.deliver(order(), TX)
    assert late.outcome is Outcome.PERMANENT


async def test_newer_delivery_preempts_older(make_rig: MakeRig) -> None:
    sim, adapter, sink, _ = await make_rig()
    second = EBM[:-1] + "2"
    await adapter.deliver(order(), TX)
    await adapter.deliver(order(second, title="Test alert two"), TX)
    assert sim.state.radiotext == "Test alert two"
    assert sink.statuses(EBM) == [DeliveryStatus.PLAYING, DeliveryStatus.CANCELLED]
    assert sink.statuses(second) == [DeliveryStatus.PLAYING]
    assert adapter.status()["on_air"] == second


async def test_absent_device_is_not_reachable_and_retry() -> None:
    clock = ManualClock(T0)
    adapter = FmAdapter(config("/dev/does-not-exist-ebc"), clock)
    sink = RecordingSink()
    await adapter.start(sink, [])
    try:
        assert not adapter.is_reachable(TX)
        result = await adapter.deliver(order(), TX)
        assert result.outcome is Outcome.RETRY and result.failure is FailureKind.NOT_CONNECTED
    finally:
        await adapter.close()


async def test_two_encoders_on_one_line_never_interleave() -> None:
    """Two adapters (UECP encoders 1 and 2 on one RS-485 line) deliver at once; the line lock keeps
    each frame's exchange whole even though the encoders answer slowly."""
    sim = FmEncoderSim(addresses=((0, 1), (0, 2)))
    pty = PtyHost(sim)
    url = pty.start()
    sim.delay_acks(0.02)
    clock = ManualClock(T0)
    a1 = FmAdapter(config(url, encoder=1, resource_code=TX), clock)
    a2 = FmAdapter(config(url, encoder=2, resource_code=TX[:-1] + "2"), clock)
    s1, s2 = RecordingSink(), RecordingSink()
    await a1.start(s1, [])
    await a2.start(s2, [])
    try:
        second = EBM[:-1] + "2"
        r1, r2 = await asyncio.gather(
            a1.deliver(order(), TX), a2.deliver(order(second), TX[:-1] + "2")
        )
        assert r1.outcome is Outcome.ACCEPTED and r2.outcome is Outcome.ACCEPTED
        assert sim.overlapping_frames == 0
        assert sim.rejected == []
        assert len(sim.history) == 8
        assert sim.states[(0, 1)].pty == 31 and sim.states[(0, 2)].pty == 31
        assert sim.states[(0, 2)].radiotext.endswith("202611150002")
    finally:
        await a1.close()
        await a2.close()
        await pty.close()


def test_implements_adapter_protocol_and_checks_config() -> None:
    from adapters.base import Adapter

    assert isinstance(FmAdapter(config("/dev/null"), ManualClock(T0)), Adapter)
    with pytest.raises(ValueError, match="resource_code"):
        FmAdapter({"url": "/dev/null"}, ManualClock(T0))
