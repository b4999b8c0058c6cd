"""The core↔adapter seam is plain serialisable values: every report the IP loudspeaker adapter sends
through its sink in a real exchange with the simulated terminal (link states, heartbeats, playing,
played, a failed playback, the 0x16 records, a stop, a fault, a lost link) survives
``broadcast.messages.to_json`` → JSON text → ``from_json`` unchanged, meta included."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from broadcast.messages import DeliveryReport, HeartbeatReport, LinkReport, Outcome, from_json, to_json
from broadcast.model import DeliveryStatus, LinkState
from tests.adapters.ip_speaker.test_adapter import Rig, make_rig
from tests.helpers.poll import until


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async for r in make_rig():
        yield r


async def test_every_report_of_a_real_exchange_round_trips_through_json_text(rig: Rig) -> None:
    code = rig.refs[0].resource_code
    sim = await rig.online(0)
    sim.send_heartbeat()
    await until(lambda: len(rig.sink.heartbeats) == 2)

    played = rig.order()
    assert (await rig.adapter.deliver(played, code)).outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.PLAYED in rig.sink.statuses(played.ebm_id, code))
    sim.report_records()
    await until(lambda: rig.adapter.status()["records_in"] == 1)

    failed = rig.order(url=rig.audio_url.replace("a.mp3", "missing.mp3"))
    assert (await rig.adapter.deliver(failed, code)).outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.FAILED in rig.sink.statuses(failed.ebm_id, code))

    sim.time_scale = 1.0
    stopped = rig.order(url=rig.audio_url.replace("a.mp3", "long.mp3"))
    assert (await rig.adapter.deliver(stopped, code)).outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.PLAYING in rig.sink.statuses(stopped.ebm_id, code))
    assert (await rig.adapter.stop(stopped.ebm_id, code)).outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.CANCELLED in rig.sink.statuses(stopped.ebm_id, code))

    sim.report_fault()
    await until(lambda: rig.sink.link_states(code)[-1:] == [LinkState.FAULT])
    await sim.go_offline()
    await until(lambda: rig.sink.link_states(code)[-1:] == [LinkState.OFFLINE])

    reports = list(rig.sink.reports)
    kinds = {type(r) for r in reports}
    assert kinds == {DeliveryReport, LinkReport, HeartbeatReport}
    statuses = {r.status for r in reports if isinstance(r, DeliveryReport)}
    assert statuses >= {DeliveryStatus.PLAYING, DeliveryStatus.PLAYED, DeliveryStatus.FAILED}
    assert DeliveryStatus.CANCELLED in statuses
    assert any(r.meta.get("source") == "records" for r in reports if isinstance(r, DeliveryReport))

    for report in reports:
        text = json.dumps(to_json(report), ensure_ascii=False)
        back = from_json(json.loads(text))
        assert type(back) is type(report)
        assert back == report
        if isinstance(report, DeliveryReport):
            assert isinstance(back, DeliveryReport)
            assert back.meta == report.meta  # meta takes no part in ==, so check it on its own
        assert to_json(back) == to_json(report)
