"""Cable-TV adapter + simulated head-end inserter over a real pty pair and over socket://."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.cable_tv.adapter import CableTvAdapter
from adapters.cable_tv.link import NackReason
from adapters.cable_tv.sections import Charset
from broadcast.clock import ManualClock
from broadcast.messages import FailureKind, Outcome
from broadcast.model import (
    AudioRef,
    DeliveryOrder,
    DeliveryStatus,
    FailureReason,
    LinkState,
    MsgType,
    Priority,
    Severity,
)
from sim.cable_inserter import CableInserterSim
from sim.serial_pty import PtyHost, TcpHost
from tests.helpers.sink import RecordingSink

T0 = datetime(2026, 11, 15, 2, 0, tzinfo=UTC)
HEAD_END = "43415230000000302010301"
CODES = ["43415230000000000000000", "63415231002000302010401"]
EBM = "43415230000000101010101202611150001"
TITLE = "安宁县气象台发布暴雨红色预警"


def order(ebm_id: str = EBM, minutes: int = 30) -> DeliveryOrder:
    return DeliveryOrder(
        ebm_id=ebm_id,
        msg_type=MsgType.ACTUAL,
        severity=Severity.RED,
        event_type="11B03",
        priority=Priority.EMERGENCY,
        start_at=T0,
        end_at=T0 + timedelta(minutes=minutes),
        title=TITLE,
        audio_url="http://127.0.0.1:8080/audio/ab.mp3",
        audio=AudioRef(digest="ab" * 32, format="mp3", duration_s=30.0),
    )


Rig = tuple[CableInserterSim, CableTvAdapter, RecordingSink, ManualClock]


@pytest.fixture(params=["pty", "socket"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    sim = CableInserterSim()
    host: PtyHost | TcpHost
    if request.param == "pty":
        host = PtyHost(sim)
        url = host.start()
    else:
        host = TcpHost(sim)
        url = await host.start()
    clock = ManualClock(T0)
    cfg: dict[str, Any] = {
        "url": url,
        "resource_code": HEAD_END,
        "original_network_id": 0x0101,
        "ack_timeout_s": 0.15,
        "retransmits": 1,
        "agency_name": "安宁县应急管理局",
        "ebit_resource_codes": CODES,
    }
    adapter = CableTvAdapter(cfg, clock)
    sink = RecordingSink()
    await adapter.start(sink, [])
    yield sim, adapter, sink, clock
    await adapter.close()
    await host.close()


async def test_deliver_inserts_ebit_and_content_then_end_withdraws(rig: Rig) -> None:
    sim, adapter, sink, clock = rig
    result = await adapter.deliver(order(), HEAD_END)
    assert result.outcome is Outcome.ACCEPTED, result

    on_air = sim.on_air[EBM]
    (e,) = on_air.ebit
    assert e.ebm_id == EBM and e.original_network_id == 0x0101
    assert e.start == T0 and e.end == T0 + timedelta(minutes=30)
    assert e.event_type == "11B03" and (e.ebm_class, e.level) == (1, 1)
    assert list(e.resource_codes) == CODES
    (c,) = on_air.content.entries
    assert c.charset is Charset.GB18030 and c.language == "zho"
    assert c.text == TITLE and c.agency == "安宁县应急管理局"
    assert c.aux[0].aux_type == 2 and c.aux[0].desc.endswith("ab.mp3") and c.aux[0].digest == b"\xab" * 32
    assert sink.statuses(EBM) == [DeliveryStatus.PLAYING]

    await adapter.tick()
    assert EBM in sim.on_air
    clock.advance(30 * 60)
    await adapter.tick()
    assert sim.on_air == {}
    assert sim.withdrawals_applied == 1
    assert sink.statuses(EBM) == [DeliveryStatus.PLAYING, DeliveryStatus.PLAYED]


async def test_stop_withdraws(rig: Rig) -> None:
    sim, adapter, sink, _ = rig
    await adapter.deliver(order(), HEAD_END)
    other = EBM[:-1] + "2"
    await adapter.deliver(order(other), HEAD_END)
    assert set(sim.on_air) == {EBM, other}
    assert (await adapter.stop(EBM, HEAD_END)).outcome is Outcome.ACCEPTED
    assert set(sim.on_air) == {other}
    assert sink.statuses(EBM) == [DeliveryStatus.PLAYING, DeliveryStatus.CANCELLED]
    assert sink.events[-1].reason is FailureReason.CANCELLED
    assert await adapter.query() == [other]


async def test_refusal_is_permanent(rig: Rig) -> None:
    sim, adapter, sink, _ = rig
    sim.nack_next(1, NackReason.REFUSED)
    result = await adapter.deliver(order(), HEAD_END)
    assert result.outcome is Outcome.PERMANENT and result.failure is FailureKind.REJECTED
    assert sim.on_air == {} and sink.statuses(EBM) == []


async def test_lost_requests_are_classified_retry(rig: Rig) -> None:
    sim, adapter, sink, _ = rig
    sim.drop_next(2)
    result = await adapter.deliver(order(), HEAD_END)
    assert result.outcome is Outcome.RETRY and result.failure is FailureKind.TIMEOUT
    assert not adapter.is_reachable(HEAD_END)
    assert LinkState.OFFLINE in sink.link_states(HEAD_END)
    # the next attempt works and the link is back
    assert (await adapter.deliver(order(), HEAD_END)).outcome is Outcome.ACCEPTED
    assert adapter.is_reachable(HEAD_END)


async def test_lost_reply_retransmission_is_idempotent(rig: Rig) -> None:
    sim, adapter, _, _ = rig
    sim.drop_next_reply(1)
    result = await adapter.deliver(order(), HEAD_END)
    assert result.outcome is Outcome.ACCEPTED
    assert sim.inserts_applied == 1 and sim.duplicates == 1
    assert adapter.status()["link"]["retransmits"] == 1


async def test_corrupted_frame_gets_nack_and_retransmission_succeeds(rig: Rig) -> None:
    sim, adapter, _, _ = rig
    sim.corrupt_next_frame()
    result = await adapter.deliver(order(), HEAD_END)
    assert result.outcome is Outcome.ACCEPTED
    assert sim.nacks_sent == [NackReason.BAD_CRC]
    assert [r.reason for r in sim.rejected] == [NackReason.BAD_CRC]
    assert EBM in sim.on_air


async def test_two_concurrent_delivers_share_the_line_cleanly(rig: Rig) -> None:
    sim, adapter, _, _ = rig
    ids = [EBM[:-1] + str(i) for i in range(1, 5)]
    results = await asyncio.gather(*(adapter.deliver(order(i), HEAD_END) for i in ids))
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert set(sim.on_air) == set(ids)
    assert sim.rejected == [] and sim.duplicates == 0


async def test_other_terminal_and_expired_order_are_permanent(rig: Rig) -> None:
    _, adapter, _, clock = rig
    assert (await adapter.deliver(order(), "43415230000000302010302")).failure is FailureKind.UNSUPPORTED
    clock.advance(3600)
    assert (await adapter.deliver(order(), HEAD_END)).outcome is Outcome.PERMANENT


async def test_withdraw_failure_is_retried_on_next_tick(rig: Rig) -> None:
    sim, adapter, sink, clock = rig
    await adapter.deliver(order(), HEAD_END)
    clock.advance(31 * 60)
    sim.go_offline()
    await adapter.tick()
    assert sink.statuses(EBM) == [DeliveryStatus.PLAYING, DeliveryStatus.PLAYED]
    assert adapter.status()["withdraw_pending"] == [EBM]
    sim.come_online()
    await adapter.tick()
    assert sim.on_air == {} and adapter.status()["withdraw_pending"] == []
    assert sink.statuses(EBM) == [DeliveryStatus.PLAYING, DeliveryStatus.PLAYED]


def test_implements_adapter_protocol_and_checks_config() -> None:
    from adapters.base import Adapter

    adapter = CableTvAdapter({"url": "/dev/null", "resource_code": HEAD_END}, ManualClock(T0))
    assert isinstance(adapter, Adapter)
    with pytest.raises(ValueError, match="url"):
        CableTvAdapter({"resource_code": HEAD_END}, ManualClock(T0))
