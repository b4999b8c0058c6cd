"""A drill through the real controller and the simulated county: the scheduled slot airs once, the
effect and drill reports agree with the broadcast API's deliveries, and the day's health report sees the
connected fleet."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from broadcast.clock import BEIJING
from broadcast.reports.drill import drill_report
from broadcast.reports.effect import effect_report
from broadcast.reports.health import Period, health_report
from broadcast.schedule.drill_service import DrillService
from broadcast.schedule.drills import DrillOutcome, DrillSpec
from broadcast.schedule.slots import pipeline_submitter
from tests.e2e.conftest import County, county  # noqa: F401  (county is a fixture)
from tests.helpers.poll import wait_until

STREET = "530181003"  # 八街街道


async def test_drill_airs_once_and_reports_agree(county: County, tmp_path: Path) -> None:  # noqa: F811
    c = county.controller
    svc = DrillService(c.engine, c.clock, pipeline_submitter(c.pipeline), [DrillSpec("monthly", (STREET,))],
                       sender_name="安宁市应急广播平台", sender_code=c.inventory.platform_code,
                       jobstore_url=f"sqlite:///{tmp_path / 'jobs.sqlite3'}", name="e2e")
    now = c.clock.now()
    slot = now - timedelta(minutes=2)
    run = await svc.run_slot("monthly", slot, now=now)
    assert run.outcome is DrillOutcome.SUBMITTED and run.broadcast_id is not None
    again = await svc.run_slot("monthly", slot, now=now + timedelta(seconds=5))
    assert again.broadcast_id == run.broadcast_id

    def done(b: dict[str, Any]) -> bool:
        return bool(b["state"] in ("completed", "failed"))

    api = await wait_until(lambda: county.broadcast(run.broadcast_id or 0, deliveries=True), done, 30)
    assert api["state"] == "completed" and api["msg_type"] in (5, "terminal_drill")
    await c.receipts.flush()
    effect = await effect_report(c.engine, run.broadcast_id, c.inventory)
    played = sum(1 for d in api["deliveries"] if d["status"] == "played")
    assert effect["targeted"] == len(c.inventory.resolve([STREET])) == len(api["deliveries"])
    assert effect["coverage"]["played"] == played
    assert [a["code"] for a in effect["by_area"]["street"]] == [STREET + "000"]
    assert effect["time_to_air"]["count"] >= played > 0

    drills = await drill_report(c.engine, "monthly", c.inventory)
    assert drills["runs"][0]["coverage"] == effect["coverage"]["rate"]

    await c.links.flush()
    today = c.clock.now().astimezone(BEIJING).date()
    health = await health_report(c.engine, c.inventory, Period.day(today), now=c.clock.now())
    assert health["county"]["terminals"] == len(c.inventory.terminals)
    assert health["county"]["available_s"] > 0
