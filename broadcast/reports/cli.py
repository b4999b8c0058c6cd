"""`ebc report …`: write effect, health and drill reports as HTML, CSV and JSON files.

    ebc report broadcast ID                      effect evaluation of one broadcast
    ebc report health --month 2026-11            monthly terminal health (or --day 2026-11-20)
    ebc report drill DRILL_ID                    all runs of a drill compared
    common options: --out DIR (default var/reports), --config FILE, --database URL,
                    --keep-days N (how long the stored copy is kept; 0 = do not store)

Owns argument parsing and file output; the figures come from effect.py, health.py and drill.py.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from broadcast.clock import Clock, SystemClock
from broadcast.reports import render
from broadcast.reports.drill import drill_report
from broadcast.reports.effect import BroadcastNotFoundError, effect_report
from broadcast.reports.health import DEFAULT_CHRONIC_DAYS, Period, health_report
from broadcast.reports.store import ReportKind, purge_expired, reports, save_report
from broadcast.schedule.drill_service import drill_runs
from broadcast.settings import SettingsError, load_settings
from broadcast.store.db import make_engine, prepare_schema
from terminals.inventory import load_inventory
from terminals.inventory_model import InventoryError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ebc report", description="生成效果评估、终端运维与演练报告（HTML/CSV/JSON）"
    )
    p.add_argument("--config", help="TOML file merged over config/ebc.toml")
    p.add_argument("--database", help="database URL (default from config)")
    p.add_argument("--out", help="output directory (default var/reports)")
    p.add_argument(
        "--keep-days", type=int, default=400, help="keep a copy in the database this many days (0: no)"
    )
    sub = p.add_subparsers(dest="what", required=True)
    b = sub.add_parser("broadcast", help="effect evaluation of one broadcast")
    b.add_argument("broadcast_id", type=int)
    h = sub.add_parser("health", help="terminal health for a day or a month")
    g = h.add_mutually_exclusive_group(required=True)
    g.add_argument("--month", help="YYYY-MM (Beijing time)")
    g.add_argument("--day", help="YYYY-MM-DD (Beijing time)")
    h.add_argument(
        "--chronic-days",
        type=float,
        default=DEFAULT_CHRONIC_DAYS,
        help="list terminals offline at least this many consecutive days",
    )
    d = sub.add_parser("drill", help="all runs of one drill compared")
    d.add_argument("drill_id")
    return p


async def _generate(args: argparse.Namespace, clock: Clock) -> list[Path]:
    overrides: dict[str, dict[str, object]] = {}
    if args.database:
        overrides["database"] = {"url": args.database}
    settings = load_settings(Path(args.config) if args.config else None, overrides)
    inventory = load_inventory(settings.inventory_path)
    out = Path(args.out) if args.out else settings.base_dir / "var" / "reports"
    engine = make_engine(settings.database_url)
    try:
        await prepare_schema(engine, (reports, drill_runs))
        now = clock.now()
        report: dict[str, Any]
        if args.what == "broadcast":
            report = await effect_report(engine, args.broadcast_id, inventory)
            kind, subject = ReportKind.BROADCAST, str(args.broadcast_id)
            html, tables = render.effect_html(report), render.effect_tables(report)
            stem = f"broadcast-{args.broadcast_id}"
        elif args.what == "health":
            period = Period.parse_month(args.month) if args.month else Period.parse_day(args.day)
            report = await health_report(engine, inventory, period, now=now, chronic_days=args.chronic_days)
            kind = ReportKind.HEALTH_MONTH if args.month else ReportKind.HEALTH_DAY
            subject = period.label
            html, tables = render.health_html(report), render.health_tables(report)
            stem = f"health-{period.label}"
        else:
            report = await drill_report(engine, args.drill_id, inventory)
            kind, subject = ReportKind.DRILL, args.drill_id
            html, tables = render.drill_html(report), {"runs.csv": render.to_csv(report["runs"])}
            stem = f"drill-{args.drill_id}"
        if args.keep_days > 0:
            await save_report(engine, kind, subject, report, now=now, keep=timedelta(days=args.keep_days))
            await purge_expired(engine, now=now)
        return render.write_bundle(out, stem, report, html, tables)
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        written = asyncio.run(_generate(args, clock or SystemClock()))
    except (SettingsError, InventoryError, BroadcastNotFoundError, ValueError) as exc:
        print(f"ebc report: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ebc report: 无法写入报告文件：{exc}。请检查 --out 目录是否可写。", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
