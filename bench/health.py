"""Benchmark: a month of terminal heartbeats through the real heartbeat path, then the monthly report.

    .venv/bin/python bench/health.py                       # socket slice + full month in-process
    .venv/bin/python bench/health.py --mode socket --socket-hours 2
    .venv/bin/python bench/health.py --mode inprocess --days 30 --db var/bench-health.sqlite3
    .venv/bin/python bench/health.py --mode process --process-seconds 10 --blasters 1,2

Three measurements (bench/month.py and bench/month_wires.py describe the first two wires):

1. ``socket``: all terminals as real TCP clients on 127.0.0.1 → IpSpeakerAdapter → LinkTracker → SQLite,
   for ``--socket-hours`` of compressed time (a representative slice; a full month of ~50 M heartbeats
   through sockets takes far longer than 10 minutes on 2 cores). Prints heartbeats/s.
2. ``inprocess``: the whole month, frames fed to the adapter's own decoder and frame handler, same
   adapter/LinkTracker/SQLite behind it. Prints heartbeats/s, link_events rows vs heartbeats, the
   monthly health report's computation time, the database size, and whether the report's county
   figures equal the simulator's ground truth.
3. ``process``: the honest socket figure. Controller side in this process (IpSpeakerAdapter +
   LinkTracker flushing to SQLite every second, real clock); the terminals in 1 or 2 separate
   processes (``python -m sim.heartbeat_blaster``), every terminal waiting for the reply to its
   heartbeat before sending the next. Prints heartbeats/s as counted by the adapter's sink over wall
   time, this process's CPU use, and link_events rows vs heartbeats.

Goals: ≥ 20,000 heartbeats/s, monthly report ≤ 10 s, storage growing with state changes only.
Owns nothing the product uses; imports ``sim`` (allowed for benchmarks).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from adapters.ip_speaker.adapter import IpSpeakerAdapter
from bench.month import MonthRun, MonthSink, build_scenario, ground_truth, make_adapter, truth_days
from bench.month_wires import InProcessWire, SocketWire
from broadcast.app.schema import feature_tables
from broadcast.clock import BEIJING, ManualClock, SystemClock
from broadcast.dispatch.links import LinkTracker
from broadcast.events import Events
from broadcast.messages import HeartbeatReport, LinkReport, Report
from broadcast.reports.health import Period, health_report
from broadcast.store.db import make_engine, prepare_schema
from broadcast.store.inventory import sync_inventory
from broadcast.store.tables import link_events
from terminals.inventory import default_inventory

START = datetime(2026, 11, 1, tzinfo=BEIJING)
ROOT = Path(__file__).resolve().parent.parent


async def run(mode: str, days: float, interval_s: int, db: Path, report: bool) -> None:
    inv = default_inventory()
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    await prepare_schema(engine, feature_tables())
    await sync_inventory(engine, inv)
    sc = build_scenario(inv, start=START, days=days, interval_s=interval_s, seed=2026)
    clock = ManualClock(sc.start)
    sink = MonthSink(LinkTracker(engine, Events()))
    adapter = make_adapter(sc, inv, clock)
    await adapter.start(sink, inv.terminals)
    wire = SocketWire(adapter) if mode == "socket" else InProcessWire(adapter)
    per_day = 86_400 // interval_s
    t0 = time.perf_counter()

    def progress(tick: int) -> None:
        if tick % per_day == 0:
            rate = sink.heartbeats / (time.perf_counter() - t0)
            print(f"  [{mode}] day {tick // per_day}: {sink.heartbeats:,} heartbeats, {rate:,.0f}/s", flush=True)

    try:
        stats = await MonthRun(sc, inv, adapter, wire, clock, sink, flush_every_ticks=120, on_flush=progress).run()
    finally:
        await adapter.close()
        await wire.close()
    async with engine.connect() as conn:
        rows = int((await conn.execute(select(func.count()).select_from(link_events))).scalar_one())
    rate = sink.heartbeats / stats.ingest_s
    print(f"{mode}: {len(sc.codes)} terminals × {days:g} days × heartbeat every {interval_s} s")
    print(f"  heartbeats ingested by the adapter: {sink.heartbeats:,} in {stats.ingest_s:.1f} s = {rate:,.0f}/s"
          f" (goal ≥ 20,000/s)")
    print(f"  link_events rows: {rows:,} (state changes) vs {sink.heartbeats:,} heartbeats"
          f" = 1 row per {sink.heartbeats / max(rows, 1):,.0f} heartbeats")
    if report:
        period = Period.month(2026, 11)
        t1 = time.perf_counter()
        rep = await health_report(engine, inv, period, now=sc.end)
        took = time.perf_counter() - t1
        print(f"  monthly health report: {took:.2f} s (goal ≤ 10 s); county online rate "
              f"{rep['county']['online_rate']:.4%}")
        truth = ground_truth(sc, (t.resource_code for t in inv.terminals))
        want = sum(d.available_s for t in inv.terminals for d in truth_days(truth, t.resource_code, period.days, None))
        ok = rep["county"]["available_s"] == want
        print(f"  county available seconds equal the simulator's ground truth: {ok}")
    await engine.dispose()


class _WallSink:
    """AdapterSink for the process mode: link news to the LinkTracker, heartbeats counted with the wall
    time of the last one (the end of the measured window)."""

    def __init__(self, tracker: LinkTracker) -> None:
        self.tracker = tracker
        self.heartbeats = 0
        self.last_at = 0.0

    def report(self, report: Report) -> None:
        if isinstance(report, LinkReport):
            self.tracker.link(report.terminal_code, report.state, report.at, report.detail)
        elif isinstance(report, HeartbeatReport):
            self.heartbeats += 1
            self.last_at = time.perf_counter()
            self.tracker.heartbeat(report.terminal_code, report.at)
        else:
            raise AssertionError(f"no broadcasts in the heartbeat benchmark, got {report}")


async def _line(proc: asyncio.subprocess.Process, what: str) -> dict[str, object]:
    assert proc.stdout is not None
    raw = await proc.stdout.readline()
    if not raw:
        raise RuntimeError(f"heartbeat blaster (pid {proc.pid}) exited before {what}: see its stderr")
    out: dict[str, object] = json.loads(raw)
    return out


async def run_process(db: Path, blasters: int, seconds: float, encode_once: bool) -> None:
    """Controller side here, ``blasters`` generator processes; see the module docstring (3)."""
    inv = default_inventory()
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    await prepare_schema(engine, feature_tables())
    await sync_inventory(engine, inv)
    tracker = LinkTracker(engine, Events())
    await tracker.start()
    sink = _WallSink(tracker)
    adapter = IpSpeakerAdapter({"platform_code": inv.platform_code, "host": "127.0.0.1", "port": 0}, SystemClock())
    await adapter.start(sink, inv.terminals)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sim.heartbeat_blaster", "--controller", f"127.0.0.1:{adapter.port}",
            "--shard", f"{i}/{blasters}", "--duration", str(seconds), "--go-on-stdin",
            *(["--encode-once"] if encode_once else []),
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        for i in range(blasters)
    ]
    try:
        regs = [await _line(p, "registering") for p in procs]
        registered = sum(int(str(r["registered"])) for r in regs)
        hb0, t0, cpu0 = sink.heartbeats, time.perf_counter(), time.process_time()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            await p.stdin.drain()
        dones = [await _line(p, "finishing") for p in procs]
        cpu = time.process_time() - cpu0
        window = sink.last_at - t0
        seen = sink.heartbeats - hb0
        for p in procs:
            await p.wait()
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
        await adapter.close()
        await tracker.close()
    await tracker.flush()
    async with engine.connect() as conn:
        rows = int((await conn.execute(select(func.count()).select_from(link_events))).scalar_one())
    await engine.dispose()
    sent = sum(int(str(d["heartbeats_sent"])) for d in dones)
    ok = sum(int(str(d["replies_ok"])) for d in dones)
    bad = sum(int(str(d["replies_not_ok"])) for d in dones)
    rate = seen / window if window > 0 else 0.0
    enc = "one pre-encoded frame per terminal" if encode_once else "every heartbeat encoded anew"
    print(f"process: {registered}/{len(inv.terminals)} terminals in {blasters} blaster process(es), "
          f"{seconds:g} s, each waits for the reply before its next heartbeat ({enc})")
    print(f"  heartbeats handled by the adapter: {seen:,} in {window:.2f} s = {rate:,.0f}/s (goal ≥ 20,000/s)")
    each = ", ".join(
        f"{float(str(d['rate_per_s'])):,.0f}/s (CPU {float(str(d['cpu_s'])) / max(float(str(d['elapsed_s'])), 1e-9):.0%})"
        for d in dones
    )
    print(f"  blasters: sent {sent:,}, replies OK {ok:,}, not OK {bad:,}; per process {each}")
    print(f"  controller process CPU: {cpu:.2f} s of {window:.2f} s wall = {cpu / window:.0%} of one core"
          if window > 0 else "  controller process CPU: n/a")
    total = seen + registered
    print(f"  link_events rows: {rows:,} (registration + closing at the end) vs {total:,} heartbeats"
          f" = 1 row per {total / max(rows, 1):,.0f} heartbeats")


def _fresh(db: Path) -> Path:
    db.unlink(missing_ok=True)
    return db


def _size(db: Path) -> None:
    print(f"  database size afterwards: {db.stat().st_size / 1e6:.2f} MB ({db})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("both", "socket", "inprocess", "process", "all"), default="both",
                   help="both = socket + inprocess; all = those and process")
    p.add_argument("--days", type=float, default=30.0, help="simulated days of the in-process run")
    p.add_argument("--socket-hours", type=float, default=2.0, help="simulated hours of the socket slice")
    p.add_argument("--interval", type=int, default=30, help="heartbeat interval, simulated seconds")
    p.add_argument("--process-seconds", type=float, default=10.0, help="wall seconds of each process run")
    p.add_argument("--blasters", default="1,2", help="blaster process counts to measure, e.g. 1,2")
    p.add_argument("--encode-once", action="store_true", help="blasters reuse one encoded frame per terminal")
    p.add_argument("--db", type=Path, default=None, help="SQLite file of the in-process run (default: temp)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("broadcast.dispatch.links").setLevel(logging.ERROR)
    logging.getLogger("adapters.ip_speaker").setLevel(logging.ERROR)  # the adapter, its reports and server
    with tempfile.TemporaryDirectory() as tmp:
        if args.mode in ("process", "all"):
            for n in (int(x) for x in args.blasters.split(",")):
                db = _fresh(Path(tmp) / f"process-{n}.sqlite3")
                asyncio.run(run_process(db, n, args.process_seconds, args.encode_once))
                _size(db)
        if args.mode in ("both", "socket", "all"):
            db = _fresh(Path(tmp) / "socket.sqlite3")
            asyncio.run(run("socket", args.socket_hours / 24, args.interval, db, False))
            _size(db)
        if args.mode in ("both", "inprocess", "all"):
            db = _fresh(args.db or Path(tmp) / "month.sqlite3")
            asyncio.run(run("inprocess", args.days, args.interval, db, args.days >= 28))
            _size(db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
