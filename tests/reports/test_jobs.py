"""OpsService with a manual clock: due daily/monthly health reports generated once, kept keep_days and
purged, read back; the [reports] configuration."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import BEIJING, ManualClock
from broadcast.reports.health import Period
from broadcast.reports.jobs import (
    OpsConfig,
    OpsConfigError,
    OpsService,
    due_day,
    due_month,
)
from broadcast.reports.store import ReportKind
from broadcast.store.tables import link_events
from terminals.inventory_model import Inventory


def bj(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BEIJING)


def test_due_rules() -> None:
    at = time(1, 0)
    assert due_day(bj(11, 2, 0, 59), at).isoformat() == "2026-10-31"
    assert due_day(bj(11, 2, 1, 0), at).isoformat() == "2026-11-01"
    assert due_month(bj(12, 1, 1, 59), time(2, 0)).label == "2026-10"
    assert due_month(bj(12, 1, 2, 0), time(2, 0)).label == "2026-11"
    assert due_month(bj(1, 1, 3, 0).replace(year=2027), time(2, 0)).label == "2026-12"


async def test_reports_generated_once_kept_and_purged(engine: AsyncEngine, inventory: Inventory) -> None:
    code = inventory.terminals[0].resource_code
    async with engine.begin() as conn:  # one terminal online since October, offline 6 h on Nov 1
        await conn.execute(insert(link_events), [
            {"terminal_code": code, "state": "online", "at": bj(10, 1), "detail": ""},
            {"terminal_code": code, "state": "offline", "at": bj(11, 1, 6), "detail": ""},
            {"terminal_code": code, "state": "online", "at": bj(11, 1, 12), "detail": ""},
        ])
    clock = ManualClock(bj(11, 2, 0, 30))
    ops = OpsService(engine, inventory, clock, config=OpsConfig(keep_days=3))
    first = await ops.tick()
    assert {(g.kind, g.subject) for g in first} == {
        (ReportKind.HEALTH_DAY, "2026-10-31"), (ReportKind.HEALTH_MONTH, "2026-10")}
    assert await ops.tick() == []  # idempotent: stored copies are not generated again
    clock.advance(30 * 60)  # 01:00: Nov 1 is due
    [nov1] = await ops.tick()
    assert (nov1.kind, nov1.subject) == (ReportKind.HEALTH_DAY, "2026-11-01")
    found = await ops.get_report(nov1.report_id)
    assert found is not None
    row = next(r for r in found[1]["terminals"] if r["terminal_code"] == code)
    assert row["available_s"] == 18 * 3600 and row["observed_s"] == 86_400
    listed = await ops.list_reports()
    assert listed[0].report_id == nov1.report_id and len(listed) == 3
    # Three days later the October copies (created Nov 2 00:30) have expired and are purged.
    clock.advance(3 * 86_400)
    await ops.tick()
    subjects = {r.subject for r in await ops.list_reports()}
    assert "2026-10-31" not in subjects and "2026-10" in subjects  # month re-generated as it is still due
    assert await ops.get_report(first[0].report_id) is None
    assert {r.subject for r in await ops.list_reports(kind=ReportKind.HEALTH_DAY)} == {"2026-11-04"}


async def test_on_demand_generation_stores_a_new_copy(engine: AsyncEngine, inventory: Inventory) -> None:
    ops = OpsService(engine, inventory, ManualClock(bj(11, 20, 12)))
    a = await ops.generate_health(Period.parse_month("2026-11"))
    b = await ops.generate_health(Period.parse_month("2026-11"))
    assert a.report_id != b.report_id and a.kind is ReportKind.HEALTH_MONTH
    got = await ops.get_report(b.report_id)
    assert got is not None and got[1]["period"]["until"] == bj(11, 20, 12).isoformat()


def test_config_parsing() -> None:
    cfg = OpsConfig.from_raw({"keep_days": 30, "daily_at": "03:15", "chronic_days": 2})
    assert (cfg.keep, cfg.daily_at, cfg.chronic_days) == (timedelta(days=30), time(3, 15), 2.0)
    assert OpsConfig.from_raw({}) == OpsConfig()
    with pytest.raises(OpsConfigError, match="keep_days"):
        OpsConfig.from_raw({"keep_days": 0})
    with pytest.raises(OpsConfigError, match="HH:MM"):
        OpsConfig.from_raw({"daily_at": "1am"})
