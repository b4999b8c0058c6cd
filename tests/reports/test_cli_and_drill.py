"""`ebc report` end to end on a SQLite file, the stored copies with their keeping time, and the drill
comparison report."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.app.schema import feature_tables
from broadcast.clock import BEIJING, ManualClock
from broadcast.reports import cli
from broadcast.reports.drill import drill_report
from broadcast.reports.render import drill_html
from broadcast.reports.store import ReportKind, latest_report, purge_expired, save_report
from broadcast.schedule.drill_service import drill_runs
from broadcast.store.db import make_engine, prepare_schema
from broadcast.store.tables import broadcasts, deliveries, link_events
from terminals.inventory import default_inventory
from terminals.inventory_model import Inventory

T0 = datetime(2026, 11, 4, 2, 0, tzinfo=UTC)


async def _broadcast(engine: AsyncEngine, n: int, played: int, delay_s: float) -> int:
    inv = default_inventory()
    async with engine.begin() as conn:
        res = await conn.execute(insert(broadcasts).values(
            ebm_id=f"45301810000000101010120261104{n:05d}", source_key=f"schedule|drill|{n}|", source_kind="schedule",
            msg_type=5, event_type="00000", severity=4, priority=20, sender_name="安宁市", sender_code="x",
            title="演练", message_json="{}", area_codes="530181000000", sent_at=T0, start_at=T0,
            end_at=T0 + timedelta(minutes=10), received_at=T0, state="completed", state_changed_at=T0,
        ))
        bid = int(res.inserted_primary_key[0])  # type: ignore[index]
        rows: list[dict[str, Any]] = []
        for i, t in enumerate(inv.terminals[:10]):
            ok = i < played
            rows.append({
                "broadcast_id": bid, "terminal_code": t.resource_code, "area_code": t.area_code,
                "status": "played" if ok else "offline", "reason": None if ok else "not_connected",
                "detail": "", "attempts": 1, "updated_at": T0,
                "playing_at": T0 + timedelta(seconds=delay_s) if ok else None,
            })
        await conn.execute(insert(deliveries), rows)
    return bid


async def test_drill_report_compares_runs(engine: AsyncEngine, inventory: Inventory) -> None:
    b1 = await _broadcast(engine, 1, played=8, delay_s=2.0)
    b2 = await _broadcast(engine, 2, played=9, delay_s=1.5)
    slots = [datetime(2026, 9, 2, 2, tzinfo=UTC), datetime(2026, 10, 7, 2, tzinfo=UTC),
             datetime(2026, 11, 4, 2, tzinfo=UTC)]
    async with engine.begin() as conn:
        await conn.execute(insert(drill_runs), [
            {"drill_id": "monthly", "slot": slots[0], "outcome": "submitted", "decided_at": slots[0],
             "broadcast_id": b1, "detail": ""},
            {"drill_id": "monthly", "slot": slots[1], "outcome": "missed", "decided_at": slots[1],
             "broadcast_id": None, "detail": "错过"},
            {"drill_id": "monthly", "slot": slots[2], "outcome": "submitted", "decided_at": slots[2],
             "broadcast_id": b2, "detail": ""},
        ])
    report = await drill_report(engine, "monthly", inventory)
    runs = report["runs"]
    assert [r["outcome"] for r in runs] == ["submitted", "missed", "submitted"] and report["missed"] == 1
    assert (runs[0]["coverage"], runs[2]["coverage"]) == (0.8, 0.9)
    assert runs[0]["coverage_change"] is None and runs[2]["coverage_change"] == pytest.approx(0.1)
    assert (runs[0]["p50_s"], runs[2]["p95_s"]) == (2.0, 1.5)
    assert runs[1]["slot_local"] == "2026-10-07 10:00"
    html = drill_html(report)
    assert "错过（系统未运行）" in html and "+10.00 个百分点" in html


async def test_stored_reports_expire(engine: AsyncEngine) -> None:
    now = T0
    await save_report(engine, ReportKind.HEALTH_DAY, "2026-11-03", {"v": 1}, now=now, keep=timedelta(days=2))
    await save_report(engine, ReportKind.HEALTH_DAY, "2026-11-03", {"v": 2}, now=now + timedelta(hours=1),
                      keep=timedelta(days=2))
    assert await latest_report(engine, ReportKind.HEALTH_DAY, "2026-11-03", now=now + timedelta(days=1)) == {"v": 2}
    assert await purge_expired(engine, now=now + timedelta(days=2)) == 1
    assert await purge_expired(engine, now=now + timedelta(days=3)) == 1
    assert await latest_report(engine, ReportKind.HEALTH_DAY, "2026-11-03", now=now) is None


def test_cli_writes_health_and_broadcast_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}"
    inv = default_inventory()
    dead = inv.terminals[5].resource_code

    async def setup() -> int:
        engine = make_engine(url)
        await prepare_schema(engine, feature_tables())
        async with engine.begin() as conn:
            await conn.execute(insert(link_events), [
                {"terminal_code": t.resource_code, "state": "online", "at": T0 - timedelta(days=30), "detail": ""}
                for t in inv.terminals
            ] + [{"terminal_code": dead, "state": "offline", "at": T0 - timedelta(days=10), "detail": ""}])
        bid = await _broadcast(engine, 7, played=6, delay_s=3.0)
        await engine.dispose()
        return bid

    bid = asyncio.run(setup())
    clock = ManualClock(datetime(2026, 11, 20, 12, tzinfo=BEIJING))
    out = tmp_path / "out"
    assert cli.main(["--database", url, "--out", str(out), "health", "--month", "2026-11"], clock=clock) == 0
    data = json.loads((out / "health-2026-11.json").read_text(encoding="utf-8"))
    assert [c["terminal_code"] for c in data["chronic_offline"]] == [dead]
    assert data["chronic_offline"][0]["since"] == (T0 - timedelta(days=10)).astimezone(BEIJING).isoformat()
    assert data["period"]["until"] == clock.now().isoformat()
    assert (out / "health-2026-11-terminals.csv").exists() and "终端运维月报" in (
        out / "health-2026-11.html").read_text(encoding="utf-8")
    assert cli.main(["--database", url, "--out", str(out), "broadcast", str(bid)], clock=clock) == 0
    effect = json.loads((out / f"broadcast-{bid}.json").read_text(encoding="utf-8"))
    assert effect["coverage"]["rate"] == 0.6 and effect["failures"] == {"not_connected": 4}
    printed = capsys.readouterr().out.split()
    assert str(out / f"broadcast-{bid}.html") in printed

    async def stored() -> Any:
        engine = make_engine(url)
        try:
            return await latest_report(engine, ReportKind.HEALTH_MONTH, "2026-11", now=clock.now())
        finally:
            await engine.dispose()

    assert asyncio.run(stored())["county"]["terminals"] == len(inv.terminals)

    assert cli.main(["--database", url, "--out", str(out), "broadcast", "424242"], clock=clock) == 2
    assert "424242" in capsys.readouterr().err
    assert cli.main(["--database", url, "--out", str(out), "health", "--month", "11/2026"], clock=clock) == 2
    assert "YYYY-MM" in capsys.readouterr().err
