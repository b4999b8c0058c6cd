"""Health report against ground truth: a compressed month of link_events is generated from an injected
timeline (flapping terminals, dead ones, a street power cut, faults, broadcasts), and every figure of the
report is compared with what the timeline says, computed here by interval arithmetic on the timeline
itself — not by replaying the events."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import BEIJING
from broadcast.reports import render
from broadcast.reports.health import Period, health_report
from broadcast.store.tables import link_events
from terminals.inventory_model import Inventory

DAY = 86_400.0
NOV = [date(2026, 11, d) for d in range(1, 31)]
CUT_STREET = "530181003000"  # 八街街道: power cut
CUT = (datetime(2026, 11, 12, 9, 0, tzinfo=BEIJING), datetime(2026, 11, 12, 15, 0, tzinfo=BEIJING))


def bj(day: int, hour: int = 0, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BEIJING)


@dataclass(frozen=True)
class Down:
    """The terminal is unavailable in [start, end) (end None = till the end of time), in ``state``."""

    start: datetime
    end: datetime | None
    state: str = "offline"


@dataclass
class Timeline:
    first_seen: dict[str, datetime]  # baseline "online" event (absent: never reported)
    downs: dict[str, list[Down]]
    broadcasts: dict[str, list[tuple[datetime, datetime]]]

    def events(self) -> Iterator[tuple[str, str, datetime]]:
        for code, at in self.first_seen.items():
            yield code, "online", at
        for code, downs in self.downs.items():
            for d in downs:
                yield code, d.state, d.start
                if d.end is not None:
                    yield code, "online", d.end
        for code, spans in self.broadcasts.items():
            for a, b in spans:
                yield code, "broadcasting", a
                yield code, "online", b


def build_timeline(inventory: Inventory) -> tuple[Timeline, dict[str, str]]:
    codes = [t.resource_code for t in inventory.terminals]
    others = [t.resource_code for t in inventory.terminals if not t.area_code.startswith(CUT_STREET[:9])]
    roles: dict[str, str] = {}
    tl = Timeline({c: bj(25, 8, month=10) for c in codes}, {}, {})
    flappers, dead, faulty, recovering, broadcasters = others[10:15], others[40:43], others[60:64], others[80], \
        others[100:110]
    never = others[120]
    before = others[130]
    for i, c in enumerate(flappers):  # offline 37 min of every 74, for 3 days from Nov 2 + i
        roles[c] = "flapping"
        t = bj(2 + i, 0, 30)
        downs = []
        while t < bj(5 + i, 0, 30):
            downs.append(Down(t, t + timedelta(minutes=37)))
            t += timedelta(minutes=74)
        tl.downs[c] = downs
    for i, c in enumerate(dead):
        roles[c] = "dead"
        tl.downs[c] = [Down(bj(5 + 7 * i, 8, 15), None)]
    for i, c in enumerate(faulty):  # two faults of 2 h on Nov 8+i, one more on Nov 20
        roles[c] = "faulty"
        tl.downs[c] = [Down(bj(8 + i, 3), bj(8 + i, 5), "fault"), Down(bj(8 + i, 22), bj(9 + i, 1), "fault"),
                       Down(bj(20, 10), bj(20, 11, 30), "fault")]
    roles[recovering] = "recovering"
    tl.downs[recovering] = [Down(bj(14, 18), bj(18, 20, 45))]  # 4 days 2 h 45 min
    for c in broadcasters:
        tl.broadcasts[c] = [(bj(4, 10), bj(4, 10, 10)), (bj(30, 23, 55), bj(30, 23, 59))]
    roles[never] = "never"
    del tl.first_seen[never]
    roles[before] = "dead_before"
    tl.first_seen[before] = bj(1, 8, month=10)
    tl.downs[before] = [Down(bj(20, 7, month=10), None)]
    for t in inventory.terminals:
        if t.area_code.startswith(CUT_STREET[:9]):
            tl.downs[t.resource_code] = [Down(*CUT)]
    return tl, roles


def overlap(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> float:
    return max(0.0, (min(a1, b1) - max(a0, b0)).total_seconds())


def expected_day(tl: Timeline, code: str, day: date, until: datetime | None) -> tuple[float, float, float, int]:
    """(observed, available, fault seconds, faults) of one terminal-day, straight from the timeline."""
    start = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
    end = start + timedelta(days=1)
    if until is not None:
        end = min(end, max(until, start))
    observed = (end - start).total_seconds()
    if code not in tl.first_seen:
        return observed, 0.0, 0.0, 0
    far = datetime(2100, 1, 1, tzinfo=BEIJING)
    down = fault = 0.0
    faults = 0
    for d in tl.downs.get(code, []):
        o = overlap(start, end, d.start, d.end or far)
        down += o
        if d.state == "fault":
            fault += o
            faults += start <= d.start < end
    return observed, observed - down, fault, faults


async def _load(engine: AsyncEngine, tl: Timeline) -> None:
    rows = [{"terminal_code": c, "state": s, "at": at, "detail": ""} for c, s, at in tl.events()]
    rows.sort(key=lambda r: r["at"])
    async with engine.begin() as conn:
        await conn.execute(insert(link_events), rows)


@pytest.mark.parametrize("now", [bj(3, 0, month=12), bj(20, 12, 0)], ids=["whole-month", "month-in-progress"])
async def test_month_matches_timeline(engine: AsyncEngine, inventory: Inventory, now: datetime) -> None:
    tl, roles = build_timeline(inventory)
    await _load(engine, tl)
    report = await health_report(engine, inventory, Period.parse_month("2026-11"), now=now)
    until = now if now < bj(1, month=12) else None

    exp = {t.resource_code: [expected_day(tl, t.resource_code, d, until) for d in NOV] for t in inventory.terminals}
    for row in report["terminals"]:
        days = exp[row["terminal_code"]]
        assert row["observed_s"] == sum(d[0] for d in days), row
        assert row["available_s"] == sum(d[1] for d in days), (roles.get(row["terminal_code"]), row)
        assert row["fault_s"] == sum(d[2] for d in days)
        assert row["faults"] == sum(d[3] for d in days)
        assert row["down_days"] == sum(1 for d in days if d[0] > 0 and d[1] == 0)

    for i, d in enumerate(report["per_day"]):
        obs = sum(v[i][0] for v in exp.values())
        avail = sum(v[i][1] for v in exp.values())
        assert d["observed_s"] == obs and d["available_s"] == avail
        assert d["online_rate"] == (round(avail / obs, 6) if obs else 0.0)
        assert d["faults"] == sum(v[i][3] for v in exp.values())

    # Street and village rates: time-weighted over their terminals, grouped by code prefix.
    for level, width, key in (("streets", 9, "code"), ("villages", 12, "code")):
        for area in report[level]:
            members = [t.resource_code for t in inventory.terminals if t.area_code[:width] == area[key][:width]
                       and (width == 9 or not t.area_code.endswith("000"))]
            obs = sum(sum(d[0] for d in exp[c]) for c in members)
            avail = sum(sum(d[1] for d in exp[c]) for c in members)
            assert area["terminals"] == len(members)
            assert area["online_rate"] == round(avail / obs, 6), area["name"]
    cut = next(s for s in report["streets"] if s["code"] == CUT_STREET)
    cut_day = report["per_day"][11]
    assert cut["online_rate"] < 1.0 and cut_day["online_rate"] < report["per_day"][10]["online_rate"]

    # Chronic offline list: outages of at least 3 days, with their real start.
    window_end = until or bj(1, month=12)
    expected_chronic = {}
    for code, downs in tl.downs.items():
        for d in downs:
            length = ((d.end or window_end) - d.start).total_seconds()
            if d.start < window_end and length >= 3 * DAY:
                expected_chronic[code] = (d.start, d.end, round(length / DAY, 2))
    never = next(c for c, r in roles.items() if r == "never")
    expected_chronic[never] = (bj(1), None, round((window_end - bj(1)).total_seconds() / DAY, 2))
    got = {x["terminal_code"]: x for x in report["chronic_offline"]}
    assert set(got) == set(expected_chronic)
    for code, (since, end, days) in expected_chronic.items():
        assert got[code]["since"] == since.isoformat()
        assert got[code]["until"] == (end.isoformat() if end and end < window_end else None)
        assert got[code]["days_offline"] == days
        assert got[code]["since_known"] is (code != never)
    assert not any(roles.get(c) == "flapping" for c in got)

    html = render.health_html(report)
    assert "每日在线率趋势" in html and "<polyline" in html and "长期离线" in html
    csvs = render.health_tables(report)
    assert len(csvs["terminals.csv"].strip().splitlines()) == 1 + len(inventory.terminals)


async def test_day_report_initial_state_from_previous_day(engine: AsyncEngine, inventory: Inventory) -> None:
    tl, roles = build_timeline(inventory)
    await _load(engine, tl)
    report = await health_report(engine, inventory, Period.parse_day("2026-11-12"), now=bj(30))
    assert [d["day"] for d in report["per_day"]] == ["2026-11-12"]
    by_code = {r["terminal_code"]: r for r in report["terminals"]}
    dead_before = next(c for c, r in roles.items() if r == "dead_before")
    assert by_code[dead_before]["available_s"] == 0 and by_code[dead_before]["down_days"] == 1
    cut_terminal = next(t.resource_code for t in inventory.terminals if t.area_code.startswith(CUT_STREET[:9]))
    assert by_code[cut_terminal]["available_s"] == DAY - 6 * 3600


def test_period_parsing() -> None:
    assert Period.parse_month("2026-12").last == date(2026, 12, 31)
    assert Period.parse_month("2026-02").last == date(2026, 2, 28)
    with pytest.raises(ValueError, match="YYYY-MM"):
        Period.parse_month("November")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        Period.parse_day("2026-11-31")
