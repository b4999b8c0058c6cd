"""A compressed month of terminal heartbeats through the REAL heartbeat path, with its own ground truth.

What runs for real: ``IpSpeakerAdapter`` (binding by first heartbeat, heartbeat handling, fault reports
0x13, ``check_liveness()``), the core's ``LinkTracker`` (link_events written in batches) and the
SQLite store; the report is ``broadcast.reports.health.health_report`` on that database.
What is simulated: the terminals and the clock. A ``ManualClock`` moves one heartbeat interval per
tick; every tick each live terminal sends one heartbeat, the sim waits until every frame of the tick
has been answered (a barrier, so the adapter stamps events with the tick time), then runs the adapter's
liveness check. Nothing sleeps.

Two wires (say which one was measured): ``SocketWire`` and ``InProcessWire`` in bench.month_wires.

Scenario: terminals register at tick 0; flapping terminals lose their network for 1–8 ticks (short
flaps are invisible by design), some close their connection (seen at once), a few die for good, one
street loses power for N hours (all its terminals go silent), some terminals report faults and
recover, one never connects.

Ground truth, detection-time semantics (the report can only know what the controller detected):

- online from the tick a terminal registers (tick 0);
- a **silent** outage (no heartbeats, connection not closed: power cut, network loss) from tick a to
  tick b is offline from tick ``a + missed - 1`` — the tick whose heartbeat is the ``missed``-th one
  missing (default 3) — to tick b, and is not seen at all when b is not later than that; the adapter
  runs with ``heartbeat_timeout_s = (missed - 0.5) × interval`` so its check fires exactly there;
- a **closed** outage (the terminal closes its TCP connection) is offline from tick a to tick b;
- a fault from tick a to tick b (fault report, then recovery report) is ``fault`` in [a, b);
- a terminal that never connects is offline throughout.

A harness, not a device: it drives the real adapter and the core's ``LinkTracker``, so it lives in
``bench/`` (used by bench/health.py and tests/bench), and ``sim/`` keeps only simulated devices.
Owns the scenario, the drive loop and the truth/expected figures.
Must never import the controller or web code, and never decide a figure by replaying link_events.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum

from adapters.ip_speaker.adapter import IpSpeakerAdapter
from adapters.ip_speaker.codec import Frame, PacketType, encode_frame
from adapters.ip_speaker.payload_fields import FaultFlag, WorkState
from adapters.ip_speaker.payloads import FaultReport, Heartbeat
from bench.month_wires import Wire
from broadcast.clock import BEIJING, ManualClock
from broadcast.dispatch.links import LinkTracker
from broadcast.messages import HeartbeatReport, LinkReport, Report
from broadcast.model import LinkState
from terminals.inventory_model import Inventory

DAY_S = 86_400


class SpanKind(StrEnum):
    SILENT = "silent"  # heartbeats stop, the connection stays open (no FIN): detected by liveness
    CLOSED = "closed"  # the terminal closes its connection: detected at once
    FAULT = "fault"  # the terminal reports a fault (0x13) and later its recovery


class Role(StrEnum):
    STEADY = "steady"
    FLAPPING = "flapping"
    CLOSING = "closing"
    DEAD = "dead"
    POWER_CUT = "power_cut"
    FAULTY = "faulty"
    NEVER = "never"


@dataclass(frozen=True)
class Span:
    """Something the terminal physically does from tick ``start`` up to tick ``end`` (None: for good)."""

    code: str
    kind: SpanKind
    start: int
    end: int | None


@dataclass(frozen=True)
class Scenario:
    start: datetime  # aware; tick 0
    interval_s: int
    ticks: int
    codes: tuple[str, ...]  # terminals that exist on the wire (connect at tick 0 unless in ``never``)
    spans: tuple[Span, ...]
    never: frozenset[str] = frozenset()
    roles: dict[str, Role] = field(default_factory=dict)
    missed: int = 3  # offline at the missed-th missing heartbeat

    def at(self, tick: int) -> datetime:
        return self.start + timedelta(seconds=tick * self.interval_s)

    @property
    def end(self) -> datetime:
        return self.at(self.ticks)

    @property
    def heartbeat_timeout_s(self) -> float:
        return (self.missed - 0.5) * self.interval_s

    def validate(self) -> None:
        """Spans of one terminal must not overlap and must lie inside the run; raises ValueError."""
        by: dict[str, list[Span]] = {}
        for s in self.spans:
            if s.code not in self.codes or s.code in self.never:
                raise ValueError(f"span for terminal {s.code} which is not on the wire")
            if not 0 < s.start < self.ticks or (s.end is not None and not s.start < s.end <= self.ticks):
                raise ValueError(f"span {s} outside ticks 1..{self.ticks}")
            by.setdefault(s.code, []).append(s)
        for code, spans in by.items():
            spans.sort(key=lambda s: s.start)
            for a, b in itertools.pairwise(spans):
                if a.end is None or a.end > b.start:
                    raise ValueError(f"terminal {code}: spans {a} and {b} overlap")


def build_scenario(
    inventory: Inventory,
    *,
    start: datetime,
    days: float,
    interval_s: int = 30,
    seed: int = 1,
    codes: Sequence[str] | None = None,
    flapping: int = 6,
    closing: int = 3,
    dead: int = 3,
    faulty: int = 5,
    power_cut_street: str | None = None,
    power_cut_hours: float = 6.0,
    power_cut_at: timedelta | None = None,
) -> Scenario:
    """A deterministic month (or part) of trouble; see the module docstring for the roles."""
    rng = random.Random(seed)
    ticks = int(days * DAY_S) // interval_s
    wire = (
        tuple(codes)
        if codes is not None
        else tuple(t.resource_code for t in inventory.terminals if t.adapter == "ip_speaker")
    )
    area_of = {t.resource_code: t.area_code for t in inventory.terminals}
    streets = sorted({area_of[c][:9] for c in wire})
    cut_street = (power_cut_street or streets[min(2, len(streets) - 1)])[:9]
    in_cut = [c for c in wire if area_of[c].startswith(cut_street)]
    others = [c for c in wire if c not in set(in_cut)]
    picked = rng.sample(others, min(len(others), flapping + closing + dead + faulty + 1))
    roles: dict[str, Role] = dict.fromkeys(wire, Role.STEADY)
    spans: list[Span] = []
    per_tick_hour = 3600 // interval_s or 1

    def run(code: str, kind: SpanKind, length: tuple[int, int], gap: tuple[int, int]) -> None:
        t = rng.randint(1, max(1, gap[1]))
        while True:
            n = rng.randint(*length)
            if t + n > ticks:
                return
            spans.append(Span(code, kind, t, t + n))
            t += n + rng.randint(*gap)

    it = iter(picked)
    for code in itertools.islice(it, flapping):
        roles[code] = Role.FLAPPING
        run(code, SpanKind.SILENT, (1, 8), (4, 4 * per_tick_hour))
    for code in itertools.islice(it, closing):
        roles[code] = Role.CLOSING
        run(code, SpanKind.CLOSED, (1, per_tick_hour), (per_tick_hour, 24 * per_tick_hour))
    for code in itertools.islice(it, dead if ticks > 2 else 0):
        roles[code] = Role.DEAD
        spans.append(Span(code, SpanKind.SILENT, rng.randint(1, ticks - 1), None))
    for code in itertools.islice(it, faulty):
        roles[code] = Role.FAULTY
        run(code, SpanKind.FAULT, (2, 3 * per_tick_hour), (per_tick_hour, 30 * per_tick_hour))
    never_code = next(it, None)
    never = frozenset({never_code}) if never_code is not None else frozenset()
    if never_code is not None:
        roles[never_code] = Role.NEVER
    cut_offset = power_cut_at if power_cut_at is not None else timedelta(days=1 if days > 1.5 else 0, hours=9)
    cut_a = max(1, int(cut_offset.total_seconds()) // interval_s)
    cut_b = min(ticks, cut_a + int(power_cut_hours * 3600) // interval_s)
    if cut_a < cut_b:
        for code in in_cut:
            roles[code] = Role.POWER_CUT
            spans.append(Span(code, SpanKind.SILENT, cut_a, cut_b))
    sc = Scenario(start, interval_s, ticks, wire, tuple(spans), never, roles)
    sc.validate()
    return sc


# -- ground truth ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unavailable:
    """Truth: the terminal counts as ``state`` (offline/fault) in [start, end) (end None: still)."""

    start: datetime
    end: datetime | None
    state: LinkState


@dataclass(frozen=True)
class Truth:
    online_from: dict[str, datetime]  # terminals that ever registered
    unavailable: dict[str, list[Unavailable]]


def ground_truth(sc: Scenario, all_codes: Iterable[str]) -> Truth:
    """Detection-time truth from the scenario alone (see the module docstring)."""
    online = {c: sc.start for c in sc.codes if c not in sc.never}
    out: dict[str, list[Unavailable]] = {c: [] for c in all_codes}
    for s in sc.spans:
        if s.kind is SpanKind.SILENT:
            seen = s.start + sc.missed - 1
            if seen < sc.ticks and (s.end is None or s.end > seen):
                out[s.code].append(
                    Unavailable(sc.at(seen), None if s.end is None else sc.at(s.end), LinkState.OFFLINE)
                )
        else:
            state = LinkState.OFFLINE if s.kind is SpanKind.CLOSED else LinkState.FAULT
            end = None if s.end is None or s.end >= sc.ticks else sc.at(s.end)
            out[s.code].append(Unavailable(sc.at(s.start), end, state))
    for spans in out.values():
        spans.sort(key=lambda u: u.start)
    return Truth(online, out)


@dataclass(frozen=True)
class DayTruth:
    observed_s: float
    available_s: float
    fault_s: float
    faults: int


def _overlap(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> float:
    return max(0.0, (min(a1, b1) - max(a0, b0)).total_seconds())


def truth_days(
    truth: Truth, code: str, days: Sequence[date], until: datetime | None, tz: tzinfo = BEIJING
) -> list[DayTruth]:
    """Per-day figures of one terminal by interval arithmetic on the truth (not on link_events)."""
    out = []
    far = datetime(9999, 1, 1, tzinfo=tz)
    for d in days:
        start = datetime(d.year, d.month, d.day, tzinfo=tz)
        end = start + timedelta(days=1)
        if until is not None:
            end = min(end, max(until, start))
        observed = (end - start).total_seconds()
        first = truth.online_from.get(code)
        if first is None:
            out.append(DayTruth(observed, 0.0, 0.0, 0))
            continue
        down = _overlap(start, end, start - timedelta(days=36500), first)  # before registering
        fault = 0.0
        faults = 0
        for u in truth.unavailable.get(code, []):
            o = _overlap(start, end, u.start, u.end or far)
            down += o
            if u.state is LinkState.FAULT:
                fault += o
                faults += start <= u.start < end
        out.append(DayTruth(observed, observed - down, fault, faults))
    return out


def truth_outages(
    truth: Truth, code: str, window_start: datetime, window_end: datetime
) -> list[tuple[datetime | None, datetime | None, float]]:
    """(since, until, seconds) of outages overlapping the window; since None = never connected.

    Adjacent unavailable spans (fault right after offline) merge into one outage, as in the report.
    """
    first = truth.online_from.get(code)
    if first is None:
        return [(None, None, (window_end - window_start).total_seconds())]
    merged: list[list[datetime | None]] = []
    for u in truth.unavailable.get(code, []):
        if merged and merged[-1][1] is not None and merged[-1][1] == u.start:
            merged[-1][1] = u.end
        else:
            merged.append([u.start, u.end])
    out: list[tuple[datetime | None, datetime | None, float]] = []
    for since, until in merged:
        assert since is not None
        if since >= window_end or (until is not None and until <= window_start):
            continue
        end = until if until is not None and until < window_end else None
        out.append((since, end, ((end or window_end) - since).total_seconds()))
    return out


# -- the drive loop ----------------------------------------------------------------------------------


class MonthSink:
    """AdapterSink: link news to the core's LinkTracker, heartbeats counted."""

    def __init__(self, tracker: LinkTracker) -> None:
        self.tracker = tracker
        self.heartbeats = 0
        self.link_changes = 0

    def report(self, report: Report) -> None:
        if isinstance(report, LinkReport):
            self.link_changes += 1
            self.tracker.link(report.terminal_code, report.state, report.at, report.detail)
        elif isinstance(report, HeartbeatReport):
            self.heartbeats += 1
            self.tracker.heartbeat(report.terminal_code, report.at)
        else:
            raise AssertionError(f"no broadcasts in the month simulation, got {report}")


@dataclass
class RunStats:
    ticks: int = 0
    frames_sent: int = 0
    heartbeats_sent: int = 0
    ingest_s: float = 0.0  # wall time of the drive loop


def _frame(code: str, platform: str, business_type: int, data: bytes) -> bytes:
    return encode_frame(Frame(1, PacketType.REQUEST, code, (platform,), business_type, data))


class MonthRun:
    """Drive a scenario through an adapter and a wire; see the module docstring."""

    def __init__(
        self,
        sc: Scenario,
        inventory: Inventory,
        adapter: IpSpeakerAdapter,
        wire: Wire,
        clock: ManualClock,
        sink: MonthSink,
        *,
        flush_every_ticks: int = 120,
        on_flush: Callable[[int], None] | None = None,
    ) -> None:
        self.sc = sc
        self.adapter = adapter
        self.wire = wire
        self.clock = clock
        self.sink = sink
        self.stats = RunStats()
        self._flush_every = max(1, flush_every_ticks)
        self._on_flush = on_flush
        refs = {t.resource_code: t for t in inventory.terminals}
        p = inventory.platform_code
        self._hb = {}
        self._hb_fault = {}
        self._hb_first = {}
        for c in sc.codes:
            addr = refs[c].physical_address.encode("ascii")
            self._hb[c] = _frame(
                c, p, Heartbeat.BUSINESS_TYPE, Heartbeat(WorkState.IDLE, False, addr).encode()
            )
            self._hb_fault[c] = _frame(
                c, p, Heartbeat.BUSINESS_TYPE, Heartbeat(WorkState.FAULT, False, addr).encode()
            )
            self._hb_first[c] = _frame(
                c, p, Heartbeat.BUSINESS_TYPE, Heartbeat(WorkState.IDLE, True, addr).encode()
            )
        self._platform = p
        self._events: dict[int, list[tuple[int, Span]]] = {}  # tick → (0 = end, 1 = start, span)
        for s in sc.spans:
            self._events.setdefault(s.start, []).append((1, s))
            if s.end is not None and s.end < sc.ticks:
                self._events.setdefault(s.end, []).append((0, s))
        for evs in self._events.values():
            evs.sort(key=lambda e: e[0])  # a span that ends before one that starts on the same tick

    def _fault_frame(self, code: str, flag: FaultFlag, tick: int) -> bytes:
        report = FaultReport(
            flag,
            3 if flag == FaultFlag.FAULT else 0,
            "功放故障" if flag == FaultFlag.FAULT else "",
            int(self.sc.at(tick).timestamp()),
        )
        return _frame(code, self._platform, FaultReport.BUSINESS_TYPE, report.encode())

    async def run(self) -> RunStats:
        sc = self.sc
        alive: dict[str, bytes] = {}  # code → heartbeat frame it sends every tick
        sent = 0
        t0 = time.perf_counter()
        for code in sc.codes:
            if code not in sc.never:
                await self.wire.connect(code, self._hb_first[code])
                sent += 1
                alive[code] = self._hb[code]
        self.stats.heartbeats_sent += sent
        await self.wire.settle(sent)
        self.adapter.check_liveness()
        for tick in range(1, sc.ticks):
            self.clock.advance(sc.interval_s)
            fresh: set[str] = set()
            hb_extra = 0
            for what, s in self._events.get(tick, ()):
                if s.kind is SpanKind.FAULT:
                    flag = FaultFlag.FAULT if what == 1 else FaultFlag.RECOVERED
                    self.wire.send(s.code, self._fault_frame(s.code, flag, tick))
                    sent += 1
                    alive[s.code] = self._hb_fault[s.code] if what == 1 else self._hb[s.code]
                elif what == 1:  # silent or closed outage starts
                    del alive[s.code]
                    if s.kind is SpanKind.CLOSED:
                        await self.wire.close_link(s.code)
                else:  # outage ends: the terminal registers again on a new connection
                    await self.wire.connect(s.code, self._hb_first[s.code])
                    sent += 1
                    hb_extra += 1
                    fresh.add(s.code)
                    alive[s.code] = self._hb[s.code]
            send = self.wire.send
            for code, frame in alive.items():
                if code not in fresh:
                    send(code, frame)
            sent += len(alive) - len(fresh)
            self.stats.heartbeats_sent += len(alive) - len(fresh) + hb_extra
            await self.wire.settle(sent)
            for code in fresh:
                await self.wire.retire_old(code)
            self.adapter.check_liveness()
            if tick % self._flush_every == 0:
                await self.sink.tracker.flush()
                if self._on_flush is not None:
                    self._on_flush(tick)
        await self.sink.tracker.flush()
        self.stats.ticks = sc.ticks
        self.stats.frames_sent = sent
        self.stats.ingest_s = time.perf_counter() - t0
        return self.stats


def make_adapter(sc: Scenario, inventory: Inventory, clock: ManualClock) -> IpSpeakerAdapter:
    """The real adapter, liveness checked by the drive loop (no timer), timeout per the truth rules."""
    return IpSpeakerAdapter(
        {
            "platform_code": inventory.platform_code,
            "host": "127.0.0.1",
            "port": 0,
            "heartbeat_timeout_s": sc.heartbeat_timeout_s,
            "liveness_check_s": 0,
        },
        clock,
    )
