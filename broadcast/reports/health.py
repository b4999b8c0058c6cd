"""Terminal health reports (运维日报/月报): daily or monthly availability from the link_events history.

Definitions (on top of terminals.availability, which defines available, outage, fault, down day):

- The fleet is the inventory's terminals; days are Beijing calendar days; a period still running is
  cut at ``until`` (normally now), so only observed time counts.
- **Online rate** (在线率) of a set of terminals over a span = Σ available seconds / Σ observed seconds
  of those terminals (time-weighted; every terminal weighs the same). Per day, per street, per village
  unit (村/社区) and for the county.
- **Faults** (故障次数) = number of transitions into ``fault``.
- **Down terminal-days** = number of (terminal, day) pairs with no available second.
- **Chronic offline** (长期离线): an outage lasting at least ``chronic_days`` × 24 h that overlaps the
  period (including one still going on); listed with since-when and how many days. An outage that
  started before anything was known (no transition ever) is measured from the period start and marked
  ``since_known: false``.
- Rates are rounded to 6 decimals; seconds are exact.

Owns the query of link_events for a window and the shaping of the health report. Must never write to
the database or change a terminal's state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import BEIJING
from broadcast.model import LinkState
from broadcast.store.tables import link_events
from terminals.availability import (
    FleetAvailability,
    Transition,
    day_bounds,
    days_of,
    fleet_availability,
)
from terminals.inventory_model import Inventory, UnknownAreaError

DEFAULT_CHRONIC_DAYS = 3.0
DAY_S = 86_400.0


@dataclass(frozen=True)
class Period:
    """A run of Beijing days: a single day or a calendar month."""

    kind: str  # "day" | "month"
    label: str  # "2026-11-20" | "2026-11"
    first: date
    last: date

    @classmethod
    def day(cls, d: date) -> Period:
        return cls("day", d.isoformat(), d, d)

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        first = date(year, month, 1)
        nxt = date(year + (month == 12), month % 12 + 1, 1)
        return cls("month", f"{year:04d}-{month:02d}", first, date.fromordinal(nxt.toordinal() - 1))

    @classmethod
    def parse_month(cls, text: str) -> Period:
        try:
            y, m = text.split("-")
            return cls.month(int(y), int(m))
        except ValueError:
            raise ValueError(f"月份格式应为 YYYY-MM（例如 2026-11），实际为 {text!r}") from None

    @classmethod
    def parse_day(cls, text: str) -> Period:
        try:
            return cls.day(date.fromisoformat(text))
        except ValueError:
            raise ValueError(f"日期格式应为 YYYY-MM-DD（例如 2026-11-20），实际为 {text!r}") from None

    @property
    def days(self) -> list[date]:
        return days_of(self.first, self.last)

    @property
    def start(self) -> datetime:
        return day_bounds(self.first, BEIJING)[0]

    @property
    def end(self) -> datetime:
        return day_bounds(self.last, BEIJING)[1]


async def load_transitions(
    engine: AsyncEngine, start: datetime, end: datetime
) -> tuple[list[Transition], dict[str, Transition]]:
    """Link transitions in [start, end) in (time, id) order, and each terminal's last one before start."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(link_events.c.terminal_code, link_events.c.state, link_events.c.at)
            .where(link_events.c.at >= start, link_events.c.at < end)
            .order_by(link_events.c.at, link_events.c.id)
        )
        events = [Transition(r[0], LinkState(r[1]), r[2]) for r in rows]
        ranked = (
            select(
                link_events.c.terminal_code,
                link_events.c.state,
                link_events.c.at,
                func.row_number()
                .over(
                    partition_by=link_events.c.terminal_code,
                    order_by=(link_events.c.at.desc(), link_events.c.id.desc()),
                )
                .label("rn"),
            )
            .where(link_events.c.at < start)
            .subquery()
        )
        before = await conn.execute(
            select(ranked.c.terminal_code, ranked.c.state, ranked.c.at).where(ranked.c.rn == 1)
        )
        initial = {r[0]: Transition(r[0], LinkState(r[1]), r[2]) for r in before}
    return events, initial


def _rate(available: float, observed: float) -> float:
    return round(available / observed, 6) if observed > 0 else 0.0


def _local(ts: datetime | None) -> str | None:
    return ts.astimezone(BEIJING).isoformat() if ts is not None else None


@dataclass
class _Acc:
    available_s: float = 0.0
    observed_s: float = 0.0
    fault_s: float = 0.0
    faults: int = 0
    down_days: int = 0
    terminals: int = 0

    def add_days(self, days: Iterable[Any]) -> None:
        for d in days:
            self.available_s += d.available_s
            self.observed_s += d.observed_s
            self.fault_s += d.fault_s
            self.faults += d.faults
            self.down_days += d.down

    def as_dict(self) -> dict[str, Any]:
        return {
            "terminals": self.terminals,
            "online_rate": _rate(self.available_s, self.observed_s),
            "available_s": self.available_s,
            "observed_s": self.observed_s,
            "fault_s": self.fault_s,
            "faults": self.faults,
            "down_terminal_days": self.down_days,
        }


def build_health(
    inventory: Inventory,
    period: Period,
    fleet: FleetAvailability,
    *,
    until: datetime | None,
    chronic_days: float = DEFAULT_CHRONIC_DAYS,
) -> dict[str, Any]:
    """Shape per-terminal day figures into the health report dict (see the module docstring)."""
    county = _Acc()
    per_day = {d: _Acc() for d in period.days}
    streets: dict[str, _Acc] = {}
    villages: dict[str, _Acc] = {}
    terminal_rows: list[dict[str, Any]] = []
    chronic: list[dict[str, Any]] = []
    window_start = period.start
    window_end = min(period.end, until) if until is not None else period.end
    for t in inventory.terminals:
        days = fleet.by_terminal[t.resource_code]
        try:
            chain = inventory.path(t.area_code)
        except UnknownAreaError:
            chain = []
        street = chain[1] if len(chain) > 1 else None
        unit = chain[2] if len(chain) > 2 else None
        acc = _Acc(terminals=1)
        acc.add_days(days)
        targets = [county]
        if street is not None:
            targets.append(streets.setdefault(street.code, _Acc()))
        if unit is not None:
            targets.append(villages.setdefault(unit.code, _Acc()))
        for a in targets:
            a.terminals += 1
            a.add_days(days)
        for d in days:
            per_day[d.day].add_days([d])
            per_day[d.day].terminals += 1
        figures = acc.as_dict()
        figures["down_days"] = figures.pop("down_terminal_days")
        del figures["terminals"]
        terminal_rows.append(
            {
                "terminal_code": t.resource_code,
                "name": t.name,
                "street": street.name if street else "",
                "village": unit.name if unit else "",
                "area_code": t.area_code,
                **figures,
            }
        )
        for o in fleet.outages[t.resource_code]:
            since = o.since or window_start
            end = o.until or window_end
            length = (end - since).total_seconds()
            if length >= chronic_days * DAY_S:
                chronic.append(
                    {
                        "terminal_code": t.resource_code,
                        "name": t.name,
                        "street": street.name if street else "",
                        "village": unit.name if unit else "",
                        "since": _local(o.since or window_start),
                        "since_known": o.since is not None,
                        "until": _local(o.until),
                        "ongoing": o.until is None,
                        "days_offline": round(length / DAY_S, 2),
                        "seconds_offline": length,
                    }
                )
    area_name = {a.code: a.name for a in inventory.areas}
    return {
        "kind": "terminal_health",
        "period": {
            "kind": period.kind,
            "label": period.label,
            "first": period.first.isoformat(),
            "last": period.last.isoformat(),
            "timezone": "Asia/Shanghai",
            "until": _local(window_end),
        },
        "chronic_days": chronic_days,
        "county": {"code": inventory.county.code, "name": inventory.name, **county.as_dict()},
        "per_day": [{"day": d.isoformat(), **a.as_dict()} for d, a in per_day.items()],
        "streets": [
            {"code": c, "name": area_name.get(c, c), **a.as_dict()} for c, a in sorted(streets.items())
        ],
        "villages": [
            {
                "code": c,
                "name": area_name.get(c, c),
                "street": area_name.get(c[:9] + "000", ""),
                **a.as_dict(),
            }
            for c, a in sorted(villages.items())
        ],
        "chronic_offline": sorted(chronic, key=lambda c: (-c["seconds_offline"], c["terminal_code"])),
        "terminals": terminal_rows,
    }


async def health_report(
    engine: AsyncEngine,
    inventory: Inventory,
    period: Period,
    *,
    now: datetime,
    chronic_days: float = DEFAULT_CHRONIC_DAYS,
) -> dict[str, Any]:
    """Read link_events for the period and build the report; time after ``now`` is not counted."""
    until = now if now < period.end else None
    events, initial = await load_transitions(engine, period.start, min(period.end, now))
    fleet = fleet_availability(
        (t.resource_code for t in inventory.terminals),
        events,
        period.days,
        BEIJING,
        initial=initial,
        until=until,
    )
    return build_health(inventory, period, fleet, until=until, chronic_days=chronic_days)
