"""Terminal availability (终端在线率) computed from link transitions: pure functions, no I/O.

Definitions (the figures of the health reports rest on these):

- A terminal is **available** (在线) while its link state is ``online`` or ``broadcasting``; it is
  **unavailable** while ``offline`` or ``fault``. ``fault`` time is unavailable time that is also
  counted separately as fault time.
- The state at an instant is the state of the latest transition at or before it (ties on the same
  instant: the later one in the given order wins). The state before the first transition of a window
  is the state of the last transition before the window (``initial``); a terminal that never reported
  anything is ``offline``.
- Days are local calendar days in the given time zone (Beijing: every day is exactly 86,400 s).
  A day is cut at ``until`` (e.g. "now" for today): only observed time counts.
- **Availability** of a terminal on a day = available seconds / observed seconds of that day.
- A **fault** is a transition into ``fault`` from another state; it is counted on the day it happens.
- A **down day** is a day with zero available seconds.
- An **outage** is a maximal interval of continuous unavailability. Its ``since`` is the transition
  that started it (or None when it started before the first known transition); ``until`` is None while
  it is still going on at the window end.

Must never read the clock, a database or the inventory: callers pass events, windows and codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from broadcast.model import LinkState

AVAILABLE_STATES = frozenset({LinkState.ONLINE, LinkState.BROADCASTING})


@dataclass(frozen=True)
class Transition:
    """One link_events row: the terminal entered ``state`` at ``at`` (aware datetime)."""

    terminal_code: str
    state: LinkState
    at: datetime


@dataclass(frozen=True)
class DayAvailability:
    """One terminal on one local day."""

    day: date
    observed_s: float
    available_s: float
    fault_s: float
    faults: int
    transitions: int

    @property
    def availability(self) -> float:
        return self.available_s / self.observed_s if self.observed_s > 0 else 0.0

    @property
    def down(self) -> bool:
        return self.observed_s > 0 and self.available_s == 0


@dataclass(frozen=True)
class Outage:
    """A maximal interval of continuous unavailability, clipped to nothing: since/until are real times."""

    terminal_code: str
    since: datetime | None  # None: already down before anything was known
    until: datetime | None  # None: still down at the end of the window
    window_end: datetime

    @property
    def duration_s(self) -> float | None:
        """Seconds down, up to ``until`` or the window end; None when ``since`` is unknown."""
        if self.since is None:
            return None
        return ((self.until or self.window_end) - self.since).total_seconds()


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tz)
    return start, datetime.combine(day + timedelta(days=1), time(0), tz)


def days_of(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def group_by_terminal(events: Iterable[Transition]) -> dict[str, list[Transition]]:
    """Events per terminal, in time order (stable: equal times keep their given order)."""
    out: dict[str, list[Transition]] = {}
    for e in events:
        out.setdefault(e.terminal_code, []).append(e)
    for seq in out.values():
        seq.sort(key=lambda e: e.at)
    return out


def _segments(
    initial: LinkState, events: Sequence[Transition], start: datetime, end: datetime
) -> list[tuple[datetime, datetime, LinkState]]:
    """Piecewise-constant state over [start, end) given the state at ``start``."""
    segs: list[tuple[datetime, datetime, LinkState]] = []
    cur, cur_at = initial, start
    for e in events:
        if e.at < start:
            cur = e.state
            continue
        if e.at >= end:
            break
        if e.at > cur_at:
            segs.append((cur_at, e.at, cur))
            cur_at = e.at
        cur = e.state
    if end > cur_at:
        segs.append((cur_at, end, cur))
    return segs


def terminal_days(
    events: Sequence[Transition],
    days: Sequence[date],
    tz: tzinfo,
    *,
    initial: LinkState = LinkState.OFFLINE,
    until: datetime | None = None,
) -> list[DayAvailability]:
    """Availability of one terminal on each day. ``events`` in time order; ``initial`` = state before them."""
    out: list[DayAvailability] = []
    state = initial
    idx = 0
    for day in days:
        start, end = day_bounds(day, tz)
        while idx < len(events) and events[idx].at < start:
            state = events[idx].state
            idx += 1
        if until is not None:
            end = min(end, max(until, start))
        day_events: list[Transition] = []
        j = idx
        while j < len(events) and events[j].at < end:
            day_events.append(events[j])
            j += 1
        available = fault = 0.0
        for a, b, s in _segments(state, day_events, start, end):
            length = (b - a).total_seconds()
            if s in AVAILABLE_STATES:
                available += length
            elif s is LinkState.FAULT:
                fault += length
        faults = 0
        prev = state
        for e in day_events:
            if e.state is LinkState.FAULT and prev is not LinkState.FAULT:
                faults += 1
            prev = e.state
        out.append(
            DayAvailability(
                day=day,
                observed_s=(end - start).total_seconds(),
                available_s=available,
                fault_s=fault,
                faults=faults,
                transitions=len(day_events),
            )
        )
    return out


def outages(
    terminal_code: str,
    events: Sequence[Transition],
    start: datetime,
    end: datetime,
    *,
    initial: LinkState = LinkState.OFFLINE,
    initial_since: datetime | None = None,
) -> list[Outage]:
    """Outages of one terminal that overlap [start, end).

    ``initial_since`` is when the state ``initial`` began (the time of the last transition before the
    window), so an outage running into the window keeps its real start.
    """
    result: list[Outage] = []
    down_since: datetime | None = None
    down = initial not in AVAILABLE_STATES
    if down:
        down_since = initial_since
    for e in events:
        if e.at < start:
            continue
        if e.at >= end:
            break
        now_down = e.state not in AVAILABLE_STATES
        if down and not now_down:
            result.append(Outage(terminal_code, down_since, e.at, end))
        elif not down and now_down:
            down_since = e.at
        down = now_down
    if down:
        result.append(Outage(terminal_code, down_since, None, end))
    return result


@dataclass(frozen=True)
class FleetAvailability:
    """Per-terminal day figures and outages for a set of terminals over a run of days."""

    days: tuple[date, ...]
    by_terminal: Mapping[str, tuple[DayAvailability, ...]]
    outages: Mapping[str, tuple[Outage, ...]]


def fleet_availability(
    terminal_codes: Iterable[str],
    events: Iterable[Transition],
    days: Sequence[date],
    tz: tzinfo,
    *,
    initial: Mapping[str, Transition] | None = None,
    until: datetime | None = None,
) -> FleetAvailability:
    """Availability of every terminal for every day; ``initial`` = each terminal's last transition before."""
    grouped = group_by_terminal(events)
    initial = initial or {}
    window_start = day_bounds(days[0], tz)[0]
    window_end = day_bounds(days[-1], tz)[1]
    if until is not None:
        window_end = min(window_end, max(until, window_start))
    per: dict[str, tuple[DayAvailability, ...]] = {}
    outs: dict[str, tuple[Outage, ...]] = {}
    for code in terminal_codes:
        seq = grouped.get(code, [])
        before = initial.get(code)
        state0 = before.state if before else LinkState.OFFLINE
        per[code] = tuple(terminal_days(seq, days, tz, initial=state0, until=until))
        outs[code] = tuple(
            outages(code, seq, window_start, window_end, initial=state0,
                    initial_since=before.at if before else None)
        )
    return FleetAvailability(tuple(days), per, outs)
