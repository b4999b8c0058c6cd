"""The front_end adapter with a simulated front-end and terminals behind it: one instruction for many
terminals, per-terminal results and reports, link states through the relay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.front_end.adapter import FrontEndAdapter, FrontEndConfigError
from adapters.ip_speaker.payload_fields import BusinessType, ResultCode
from broadcast.clock import ManualClock
from broadcast.messages import FailureKind, Outcome
from broadcast.model import DeliveryStatus, LinkState
from tests.contract.rigs import FRONT_END, T0, FrontEndDriver, audio_server
from tests.helpers.poll import until


class Many(FrontEndDriver):
    n_terminals = 5


@pytest.fixture
async def rig() -> AsyncIterator[Many]:
    async with audio_server() as base:
        d = Many(base)
        await d.start()
        try:
            yield d
        finally:
            await d.close()


def test_config_requires_platform_code() -> None:
    with pytest.raises(FrontEndConfigError, match="platform_code"):
        FrontEndAdapter({}, ManualClock(T0))


async def test_terminals_come_online_through_the_front_end(rig: Many) -> None:
    for ref in rig.refs:
        assert rig.sink.link_states(ref.resource_code) == [LinkState.ONLINE]
    assert rig.fe_adapter.status()["front_ends_connected"] == 1
    assert rig.front_end.registrations == 1


async def test_one_instruction_for_all_terminals_and_receipts_per_terminal(rig: Many) -> None:
    order = rig.order()
    results = await asyncio.gather(*(rig.adapter.deliver(order, r.resource_code) for r in rig.refs))
    assert all(r.outcome is Outcome.ACCEPTED for r in results), results
    starts = [x for x in rig.front_end.relayed if x[0] == BusinessType.START_BROADCAST]
    assert len(starts) == 1
    assert set(starts[0][2]) == {r.resource_code for r in rig.refs}
    assert rig.fe_adapter.status()["batches"] == 1
    for ref in rig.refs:
        code = ref.resource_code
        await until(lambda c=code: DeliveryStatus.PLAYED in rig.sink.statuses(order.ebm_id, c))
        assert rig.sink.statuses(order.ebm_id, code) == [DeliveryStatus.PLAYING, DeliveryStatus.PLAYED]
        assert sum(p.completed for p in rig.sims[code].played) == 1
    assert {e.meta.get("front_end") for e in rig.sink.events} == {FRONT_END}


async def test_mixed_answers_are_split_per_terminal(rig: Many) -> None:
    codes = [r.resource_code for r in rig.refs]
    rig.sims[codes[1]].nack_next(1, ResultCode.BUSY)
    rig.sims[codes[2]].reject_all(ResultCode.TERMINAL_ERROR)
    await rig.sims[codes[3]].go_offline()
    await until(lambda: not rig.fe_adapter.is_reachable(codes[3]))
    order = rig.order()
    results = await asyncio.gather(*(rig.adapter.deliver(order, c) for c in codes))
    assert results[0].outcome is Outcome.ACCEPTED
    assert (results[1].outcome, results[1].failure) == (Outcome.RETRY, FailureKind.BUSY)
    assert (results[2].outcome, results[2].failure) == (Outcome.PERMANENT, FailureKind.REJECTED)
    assert (results[3].outcome, results[3].failure) == (Outcome.RETRY, FailureKind.NOT_CONNECTED)
    assert results[4].outcome is Outcome.ACCEPTED
    assert rig.sink.link_states(codes[3]) == [LinkState.ONLINE, LinkState.OFFLINE]


async def test_front_end_link_loss_marks_its_terminals_offline(rig: Many) -> None:
    await rig.front_end.go_offline()
    for ref in rig.refs:
        await until(lambda c=ref.resource_code: rig.sink.link_states(c)[-1] is LinkState.OFFLINE)
    result = await rig.adapter.deliver(rig.order(), rig.code)
    assert (result.outcome, result.failure) == (Outcome.RETRY, FailureKind.NOT_CONNECTED)
    await rig.front_end.come_online()
    for ref in rig.refs:
        await until(lambda c=ref.resource_code: rig.sink.link_states(c)[-1] is LinkState.ONLINE)


async def test_report_about_an_unsent_broadcast_is_refused(rig: Many) -> None:
    rig.sim.lie_next_result(rig.order().ebm_id)
    await until(lambda: rig.fe_adapter.status()["rejected_reports"] == 1)
    assert rig.sink.events == []


async def test_broadcast_records_join_the_delivery_history(rig: Many) -> None:
    order = rig.order()
    assert (await rig.adapter.deliver(order, rig.code)).outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.PLAYED in rig.sink.statuses(order.ebm_id, rig.code))
    before = len(rig.sink.events)
    rig.sim.report_records()
    await until(lambda: len(rig.sink.events) > before)
    rec = rig.sink.events[-1]
    assert rec.status is DeliveryStatus.PLAYED and rec.meta["source"] == "records"


async def test_unknown_front_end_is_refused(rig: Many) -> None:
    from sim.front_end import FrontEndSim

    other = FrontEndSim(
        "65301810010020399010101", [], "127.0.0.1", rig.fe_adapter.port, reconnect_initial_s=0.5
    )
    await other.start()
    try:
        await until(lambda: rig.fe_adapter.status()["unknown_front_ends"] >= 1)
        assert not other.registered
    finally:
        await other.stop()


async def test_front_end_own_health_is_recorded_once_per_change(rig: Many) -> None:
    assert rig.sink.link_states(FRONT_END) == [LinkState.ONLINE]
    await rig.front_end.go_offline()
    await until(lambda: rig.sink.link_states(FRONT_END)[-1] is LinkState.OFFLINE)
    await rig.front_end.come_online()
    await until(lambda: rig.sink.link_states(FRONT_END)[-1] is LinkState.ONLINE)
    assert rig.sink.link_states(FRONT_END) == [LinkState.ONLINE, LinkState.OFFLINE, LinkState.ONLINE]
