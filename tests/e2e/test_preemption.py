"""Preemption end to end (上级优先、应急优先): a daily programme on one street is cut off by a red warning
and resumes after it; a drill never cuts off a warning. Real controller, simulated terminals."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from broadcast.model import Priority
from broadcast.schedule.drills import DrillKind, DrillSpec, drill_draft
from broadcast.schedule.programme_specs import ProgrammeSpec, SlotOutcome
from broadcast.schedule.programmes import ProgrammeService
from broadcast.schedule.slots import pipeline_submitter
from tests.e2e.capdoc import make_cap
from tests.e2e.conftest import County, running_county
from tests.helpers.poll import wait_until

STREET = "530181008000"  # the smallest street of Anning (39 terminals)
SENTENCE = "各位居民，现在播送日常广播：请注意防火安全，出门随手关好门窗，爱护公共设施，文明出行。"


def _finished(b: dict[str, Any]) -> bool:
    return b["state"] in ("completed", "failed", "cancelled", "expired")


def _all(status: str) -> Any:
    return lambda b: all(d["status"] == status for d in b["deliveries"])


async def _programme(county: County) -> tuple[int, str]:
    c = county.controller
    spec = ProgrammeSpec("morning-news", (STREET,), "早间广播", (SENTENCE * 8,), duration=timedelta(minutes=30))
    svc = ProgrammeService(
        c.clock, pipeline_submitter(c.pipeline), [spec], "安宁市应急广播", c.inventory.platform_code, "sqlite://"
    )
    run = await svc.run_slot(spec.programme_id, c.clock.now())
    assert run.outcome is SlotOutcome.SUBMITTED and run.broadcast_id is not None
    again = await svc.run_slot(spec.programme_id, run.slot or c.clock.now())
    assert again.outcome is SlotOutcome.ALREADY  # the same slot never airs twice
    b = await county.broadcast(run.broadcast_id)
    return run.broadcast_id, b["ebm_id"]


async def test_daily_programme_preempted_by_red_warning_then_resumed(tmp_path: Path) -> None:
    async with running_county(tmp_path, area=STREET, time_scale=0.03) as county:
        codes = [t.resource_code for t in county.controller.inventory.resolve([STREET])]
        prog_id, prog_ebm = await _programme(county)
        await wait_until(lambda: county.broadcast(prog_id, deliveries=True), _all("playing"), within=30)

        status, body = await county.post_cap(make_cap(f"53018141600000_{uuid.uuid4().hex[:14]}", STREET))
        assert status == 202, body
        warn = await wait_until(
            lambda: county.broadcast(body["broadcast_id"], deliveries=True), _finished, within=60
        )
        assert warn["state"] == "completed" and _all("played")(warn), warn
        prog = await wait_until(lambda: county.broadcast(prog_id, deliveries=True), _finished, within=60)
        assert prog["state"] == "completed" and _all("played")(prog), prog

        for code in codes:
            sim = county.fleet.terminal(code)
            p = [r for r in sim.played if r.ebm_id == prog_ebm]
            w = [r for r in sim.played if r.ebm_id == body["ebm_id"]]
            assert len(w) == 1 and w[0].completed, code
            # Cut off by the warning, then played again in full after it: completed exactly once.
            assert [r.completed for r in p] == [False, True], code
            assert p[0].ended_at is not None and w[0].ended_at is not None
            assert p[0].started_at <= w[0].started_at and p[0].ended_at <= w[0].ended_at
            assert p[1].started_at >= w[0].ended_at, code


async def test_warning_is_never_preempted_by_a_drill(tmp_path: Path) -> None:
    async with running_county(tmp_path, area=STREET, time_scale=0.02) as county:
        c = county.controller
        codes = [t.resource_code for t in c.inventory.resolve([STREET])]
        status, body = await county.post_cap(make_cap(f"53018141600000_{uuid.uuid4().hex[:14]}", STREET))
        assert status == 202, body
        warn_id = body["broadcast_id"]
        await wait_until(lambda: county.broadcast(warn_id, deliveries=True), _all("playing"), within=30)

        spec = DrillSpec("monthly", (STREET,), kind=DrillKind.TERMINAL)
        draft = drill_draft(spec, c.clock.now(), c.clock.now(), sender_name="安宁市", sender_code="5301810")
        assert draft.priority is Priority.DRILL
        drill = await c.pipeline.submit(draft)
        warn = await wait_until(lambda: county.broadcast(warn_id, deliveries=True), _finished, within=60)
        assert warn["state"] == "completed" and _all("played")(warn), warn
        done = await wait_until(lambda: county.broadcast(drill.broadcast_id, deliveries=True), _finished, within=60)
        assert done["state"] == "completed" and _all("played")(done), done
        for code in codes:
            sim = county.fleet.terminal(code)
            (w,) = [r for r in sim.played if r.ebm_id == body["ebm_id"]]
            (d,) = [r for r in sim.played if r.ebm_id == drill.ebm_id]
            assert w.completed and d.completed and w.ended_at is not None
            assert d.started_at >= w.ended_at, code  # the drill waited for the warning to end
