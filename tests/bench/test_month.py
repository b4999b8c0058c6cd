"""A compressed month through the real heartbeat path (bench/month.py) against the simulator's own ground
truth: every figure of the health report must equal what the truth intervals say, computed by interval
arithmetic on the truth (detection-time semantics), not by replaying link_events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bench.month import (
    MonthRun,
    MonthSink,
    Role,
    Scenario,
    Truth,
    build_scenario,
    ground_truth,
    make_adapter,
    truth_days,
    truth_outages,
)
from bench.month_wires import InProcessWire, SocketWire, Wire
from broadcast.app.schema import feature_tables
from broadcast.clock import BEIJING, ManualClock
from broadcast.dispatch.links import LinkTracker
from broadcast.events import Events
from broadcast.reports.health import Period, health_report
from broadcast.store.db import make_engine, prepare_schema
from broadcast.store.inventory import sync_inventory
from broadcast.store.tables import link_events
from terminals.inventory import default_inventory
from terminals.inventory_model import Inventory

START = datetime(2026, 11, 1, tzinfo=BEIJING)
CHRONIC_DAYS = 0.5


async def simulate(
    tmp_path: Path, inv: Inventory, sc: Scenario, wire_of: Callable[[Any], Wire]
) -> tuple[dict[str, Any], int, MonthSink]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'month.sqlite3'}")
    await prepare_schema(engine, feature_tables())
    await sync_inventory(engine, inv)
    clock = ManualClock(sc.start)
    sink = MonthSink(LinkTracker(engine, Events()))
    adapter = make_adapter(sc, inv, clock)
    await adapter.start(sink, [t for t in inv.terminals if t.resource_code in set(sc.codes)])
    wire = wire_of(adapter)
    try:
        await MonthRun(sc, inv, adapter, wire, clock, sink).run()
    finally:
        await adapter.close()
        await wire.close()
    clock.advance(sc.interval_s)
    assert clock.now() == sc.end
    report = await health_report(engine, inv, Period.month(2026, 11), now=sc.end, chronic_days=CHRONIC_DAYS)
    async with engine.connect() as conn:
        rows = int((await conn.execute(select(func.count()).select_from(link_events))).scalar_one())
    await engine.dispose()
    return report, rows, sink


def check_against_truth(report: dict[str, Any], inv: Inventory, sc: Scenario, truth: Truth) -> None:
    days = Period.month(2026, 11).days
    exp = {t.resource_code: truth_days(truth, t.resource_code, days, sc.end) for t in inv.terminals}
    for row in report["terminals"]:
        d = exp[row["terminal_code"]]
        who = (sc.roles.get(row["terminal_code"]), row)
        assert row["observed_s"] == sum(x.observed_s for x in d), who
        assert row["available_s"] == sum(x.available_s for x in d), who
        assert row["fault_s"] == sum(x.fault_s for x in d), who
        assert row["faults"] == sum(x.faults for x in d), who
        assert row["down_days"] == sum(1 for x in d if x.observed_s > 0 and x.available_s == 0), who
    for i, day in enumerate(report["per_day"]):
        obs = sum(v[i].observed_s for v in exp.values())
        avail = sum(v[i].available_s for v in exp.values())
        assert (day["observed_s"], day["available_s"]) == (obs, avail), day["day"]
        assert day["faults"] == sum(v[i].faults for v in exp.values())
    total_obs = sum(x.observed_s for v in exp.values() for x in v)
    total_avail = sum(x.available_s for v in exp.values() for x in v)
    assert report["county"]["online_rate"] == round(total_avail / total_obs, 6)
    for street in report["streets"]:
        members = [t.resource_code for t in inv.terminals if inv.path(t.area_code)[1].code == street["code"]]
        obs = sum(x.observed_s for c in members for x in exp[c])
        avail = sum(x.available_s for c in members for x in exp[c])
        assert street["terminals"] == len(members)
        assert street["online_rate"] == round(avail / obs, 6), street["name"]
    # Chronic offline: outages of at least CHRONIC_DAYS overlapping the run, with the truth's start.
    want = {}
    for t in inv.terminals:
        for since, until, secs in truth_outages(truth, t.resource_code, sc.start, sc.end):
            if secs >= CHRONIC_DAYS * 86_400:
                want[(t.resource_code, (since or sc.start).isoformat())] = (until, round(secs / 86_400, 2))
    got = {(c["terminal_code"], c["since"]): (c["until"], c["days_offline"]) for c in report["chronic_offline"]}
    assert got == {k: (u.isoformat() if u else None, d) for k, (u, d) in want.items()}


def scenario(inv: Inventory, codes: list[str], days: float, interval_s: int) -> Scenario:
    return build_scenario(inv, start=START, days=days, interval_s=interval_s, seed=7, codes=codes,
                          power_cut_hours=5)


@pytest.mark.parametrize("kind", ["socket", "in_process"])
async def test_compressed_days_equal_ground_truth(tmp_path: Path, kind: str) -> None:
    inv = default_inventory()
    step = 12 if kind == "socket" else 5
    codes = [t.resource_code for t in inv.terminals][::step]
    sc = scenario(inv, codes, days=2, interval_s=300)
    truth = ground_truth(sc, (t.resource_code for t in inv.terminals))
    roles = set(sc.roles.values())
    assert {Role.FLAPPING, Role.CLOSING, Role.DEAD, Role.POWER_CUT, Role.FAULTY, Role.NEVER} <= roles
    wire_of: Callable[[Any], Wire] = SocketWire if kind == "socket" else InProcessWire
    report, rows, sink = await simulate(tmp_path, inv, sc, wire_of)
    check_against_truth(report, inv, sc, truth)
    # The scenario is not trivial: flaps both invisible and seen, faults, outages, a street power cut.
    unavailable = [u for spans in truth.unavailable.values() for u in spans]
    assert sum(1 for u in unavailable if u.state.value == "fault") >= 3
    assert report["county"]["online_rate"] < 1.0 and report["chronic_offline"]
    invisible = [s for s in sc.spans if s.kind.value == "silent" and s.end is not None
                 and s.end - s.start <= sc.missed - 1]
    assert invisible, "some flaps must be shorter than detection"
    # Storage grows with state changes, not with heartbeats.
    assert rows == sink.link_changes and sink.heartbeats > 20 * rows


async def test_detection_boundary_is_the_third_missed_heartbeat(tmp_path: Path) -> None:
    """One terminal silent for exactly 2 ticks is never offline; silent for 3 is offline from its 3rd
    missed heartbeat; a closed connection is offline at once."""
    from bench.month import Span, SpanKind

    inv = default_inventory()
    a, b, c = (t.resource_code for t in inv.terminals[:3])
    sc = Scenario(START, 60, 40, (a, b, c), (
        Span(a, SpanKind.SILENT, 5, 7), Span(b, SpanKind.SILENT, 5, 8), Span(c, SpanKind.CLOSED, 5, 6)))
    sc.validate()
    report, _rows, _ = await simulate(tmp_path, inv, sc, InProcessWire)
    by = {r["terminal_code"]: r for r in report["terminals"]}
    assert by[a]["available_s"] == 40 * 60
    assert by[b]["available_s"] == 40 * 60 - 60  # offline from tick 7 (3rd missing) to tick 8
    assert by[c]["available_s"] == 40 * 60 - 60
    check_against_truth(report, inv, sc, ground_truth(sc, (t.resource_code for t in inv.terminals)))
