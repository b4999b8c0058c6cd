"""The simulated front-end: a local village announcement, its preemption by any county instruction,
and store-and-forward of results while the county link is down."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.ip_speaker.payload_fields import BusinessType
from broadcast.messages import Outcome
from broadcast.model import DeliveryStatus
from sim.front_end import LocalRefused
from tests.contract.rigs import FrontEndDriver, audio_server
from tests.helpers.poll import until


class Two(FrontEndDriver):
    n_terminals = 2


@pytest.fixture
async def rig() -> AsyncIterator[Two]:
    async with audio_server() as base:
        d = Two(base)
        await d.start()
        try:
            yield d
        finally:
            await d.close()


async def test_local_announcement_plays_and_stays_local(rig: Two) -> None:
    local = rig.front_end.announce(audio_url=f"{rig.audio_base}/a.mp3")
    assert local.startswith(rig.front_end.code)
    for sim in rig.sims.values():
        await until(lambda s=sim: any(p.ebm_id == local and p.completed for p in s.played))
    ann = rig.front_end.locals[0]
    await until(lambda: len(ann.reports) >= 4)  # start + result (+ end) per terminal, kept here
    assert set(ann.accepted) == set(rig.sims)
    assert rig.sink.events == []
    assert ann.preempted_by is None


async def test_county_start_preempts_the_local_announcement(rig: Two) -> None:
    local = rig.front_end.announce(audio_url=f"{rig.audio_base}/long.mp3")
    await until(lambda: all(s.playing == local for s in rig.sims.values()))
    order = rig.order()
    for code in rig.sims:
        assert (await rig.adapter.deliver(order, code)).outcome is Outcome.ACCEPTED
    ann = rig.front_end.locals[0]
    assert ann.preempted_by == order.ebm_id
    for code, sim in rig.sims.items():
        await until(lambda c=code: DeliveryStatus.PLAYED in rig.sink.statuses(order.ebm_id, c))
        local_plays = [p for p in sim.played if p.ebm_id == local]
        assert not local_plays[0].completed  # cut off by the county
    stops = [x for x in rig.front_end.relayed if x[0] == BusinessType.STOP_BROADCAST]
    assert stops == []  # the local stop is the front-end's own, not a relayed county request


async def test_local_announcement_refused_while_county_broadcast_on_air(rig: Two) -> None:
    order = rig.order(long=True)
    assert (await rig.adapter.deliver(order, rig.code)).outcome is Outcome.ACCEPTED
    with pytest.raises(LocalRefused, match="县级应急广播"):
        rig.front_end.announce(text="村委会通知：今晚八点开会")
    await until(lambda: DeliveryStatus.PLAYED in rig.sink.statuses(order.ebm_id, rig.code))
    text_id = rig.front_end.announce(text="村委会通知：今晚八点开会")
    assert rig.front_end.locals[-1].text and rig.front_end.locals[-1].ebm_id == text_id


async def test_results_are_stored_while_the_county_link_is_down(rig: Two) -> None:
    order = rig.order(long=True)
    assert (await rig.adapter.deliver(order, rig.code)).outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.PLAYING in rig.sink.statuses(order.ebm_id, rig.code))
    await rig.front_end.go_offline()
    await until(lambda: any(p.ebm_id == order.ebm_id and p.completed for p in rig.sim.played))
    assert DeliveryStatus.PLAYED not in rig.sink.statuses(order.ebm_id, rig.code)
    await rig.front_end.come_online()
    await until(lambda: DeliveryStatus.PLAYED in rig.sink.statuses(order.ebm_id, rig.code))


async def test_preempted_local_announcement_resumes_after_the_county_broadcast(rig: Two) -> None:
    local = rig.front_end.announce(audio_url=f"{rig.audio_base}/long.mp3")
    await until(lambda: all(s.playing == local for s in rig.sims.values()))
    order = rig.order()
    for code in rig.sims:
        assert (await rig.adapter.deliver(order, code)).outcome is Outcome.ACCEPTED
    for code, sim in rig.sims.items():
        await until(lambda c=code: DeliveryStatus.PLAYED in rig.sink.statuses(order.ebm_id, c))
        # Back on air from the start once the county is done, and played to the end this time.
        await until(lambda s=sim: any(p.ebm_id == local and p.completed for p in s.played))
        plays = [p for p in sim.played if p.ebm_id == local]
        assert [p.completed for p in plays] == [False, True]
        county = [p for p in sim.played if p.ebm_id == order.ebm_id]
        assert county[0].ended_at is not None and county[0].ended_at <= plays[1].started_at
    assert rig.front_end.locals[0].resumed >= 1  # once per time the county left it free
