"""Benchmark: a month of terminal heartbeats through the real heartbeat path, then the monthly report.

    .venv/bin/python bench/health.py                       # socket slice + full month in-process
    .venv/bin/python bench/health.py --mode socket --socket-hours 2
    .venv/bin/python bench/health.py --mode inprocess --days 30 --db var/bench-health.sqlite3

Two measurements (sim/month.py describes both wires):

1. ``socket``: all terminals as real TCP clients on 127.0.0.1 → IpSpeakerAdapter → LinkTracker → SQLite,
   for ``--socket-hours`` of compressed time (a representative slice; a full month of ~50 M heartbeats
   through sockets takes far longer than 10 minutes on 2 cores). Prints heartbeats/s.
2. ``inprocess``: the whole month, frames fed to the adapter's own decoder and frame handler, same
   adapter/LinkTracker/SQLite behind it. Prints heartbeats/s, link_events rows vs heartbeats, the
   monthly health report's computation time, the database size, and whether the report's county
   figures equal the simulator's ground truth.

Goals: ≥ 20,000 heartbeats/s, monthly report ≤ 10 s, storage growing with state changes only.
Owns nothing the product uses; imports ``sim`` (allowed for benchmarks).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from broadcast.clock import BEIJING, ManualClock
from broadcast.health import LinkTracker
from broadcast.reports.health import Period, health_report
from broadcast.store.db import make_engine, prepare_schema
from broadcast.store.inventory import sync_inventory
from broadcast.store.tables import link_events
from sim.month import (
    InProcessWire,
    MonthRun,
    MonthSink,
    SocketWire,
    build_scenario,
    ground_truth,
    make_adapter,
    truth_days,
)
from terminals.inventory import default_inventory

START = datetime(2026, 11, 1, tzinfo=BEIJING)


async def run(mode: str, days: float, interval_s: int, db: Path, report: bool) -> None:
    inv = default_inventory()
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    await prepare_schema(engine)
    await sync_inventory(engine, inv)
    sc = build_scenario(inv, start=START, days=days, interval_s=interval_s, seed=2026)
    clock = ManualClock(sc.start)
    sink = MonthSink(LinkTracker(engine))
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


def _fresh(db: Path) -> Path:
    db.unlink(missing_ok=True)
    return db


def _size(db: Path) -> None:
    print(f"  database size afterwards: {db.stat().st_size / 1e6:.2f} MB ({db})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("both", "socket", "inprocess"), default="both")
    p.add_argument("--days", type=float, default=30.0, help="simulated days of the in-process run")
    p.add_argument("--socket-hours", type=float, default=2.0, help="simulated hours of the socket slice")
    p.add_argument("--interval", type=int, default=30, help="heartbeat interval, simulated seconds")
    p.add_argument("--db", type=Path, default=None, help="SQLite file of the in-process run (default: temp)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("broadcast.health").setLevel(logging.ERROR)
    logging.getLogger("adapters.ip_speaker.adapter").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        if args.mode in ("both", "socket"):
            db = _fresh(Path(tmp) / "socket.sqlite3")
            asyncio.run(run("socket", args.socket_hours / 24, args.interval, db, False))
            _size(db)
        if args.mode in ("both", "inprocess"):
            db = _fresh(args.db or Path(tmp) / "month.sqlite3")
            asyncio.run(run("inprocess", args.days, args.interval, db, args.days >= 28))
            _size(db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
