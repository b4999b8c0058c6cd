"""Effect evaluation equals what the deliveries rows say: rows are generated at random (seeded) and the
expected figures are recomputed here from the rows with plain code-prefix arithmetic."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.model import DeliveryStatus, FailureReason
from broadcast.reports import render
from broadcast.reports.effect import BroadcastNotFoundError, effect_report
from broadcast.store.tables import broadcasts, deliveries
from terminals.inventory_model import Inventory

RECEIVED = datetime(2026, 11, 4, 2, 0, 0, tzinfo=UTC)


async def _insert_broadcast(engine: AsyncEngine, rows: list[dict[str, Any]]) -> int:
    async with engine.begin() as conn:
        res = await conn.execute(insert(broadcasts).values(
            ebm_id="4530181000000010101012026110400001", source_key="test|x|1|", source_kind="operator",
            msg_type=1, event_type="11B03", severity=2, priority=30, sender_name="安宁市气象局",
            sender_code="x", title="暴雨橙色预警", message_json="{}", area_codes="530181000000",
            sent_at=RECEIVED, start_at=RECEIVED, end_at=RECEIVED + timedelta(hours=1), received_at=RECEIVED,
            state="completed", state_changed_at=RECEIVED,
        ))
        bid = int(res.inserted_primary_key[0])  # type: ignore[index]
        await conn.execute(insert(deliveries), [dict(r, broadcast_id=bid) for r in rows])
    return bid


def _rows(inventory: Inventory, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for t in inventory.terminals:
        status = rng.choices(list(DeliveryStatus), weights=[2, 3, 2, 2, 60, 8, 8, 2])[0]
        reason = None
        if status in (DeliveryStatus.FAILED, DeliveryStatus.CANCELLED):
            reason = rng.choice([*FailureReason, None])
        elif status is DeliveryStatus.OFFLINE:
            reason = rng.choice([FailureReason.NOT_CONNECTED, None])
        started = status in (DeliveryStatus.PLAYING, DeliveryStatus.PLAYED) or (
            status in (DeliveryStatus.FAILED, DeliveryStatus.CANCELLED) and rng.random() < 0.3)
        playing = RECEIVED + timedelta(milliseconds=rng.randint(300, 20_000)) if started else None
        out.append({
            "terminal_code": t.resource_code, "area_code": t.area_code, "status": str(status),
            "reason": str(reason) if reason else None, "detail": "", "attempts": rng.randint(0, 3),
            "updated_at": RECEIVED, "acknowledged_at": playing, "playing_at": playing,
            "played_at": playing + timedelta(seconds=30) if playing and status is DeliveryStatus.PLAYED else None,
        })
    return out


def _expected_area(rows: list[dict[str, Any]], key_len: int) -> dict[str, tuple[int, int, int]]:
    """(targeted, played, on_air) per area code prefix of ``key_len`` digits, padded to 12."""
    out: dict[str, list[int]] = {}
    for r in rows:
        code = r["area_code"][:key_len].ljust(12, "0")
        if key_len == 12 and r["area_code"].endswith("000"):
            continue  # street-level terminals have no village unit
        acc = out.setdefault(code, [0, 0, 0])
        acc[0] += 1
        acc[1] += r["status"] == "played"
        acc[2] += r["playing_at"] is not None
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def _nearest_rank(values: list[float], q: int) -> float:
    values = sorted(values)
    return values[max(1, math.ceil(q * len(values) / 100)) - 1]


async def test_figures_equal_rows(engine: AsyncEngine, inventory: Inventory, tmp_path: Path) -> None:
    rows = _rows(inventory, seed=7)
    bid = await _insert_broadcast(engine, rows)
    report = await effect_report(engine, bid, inventory)

    assert report["targeted"] == len(inventory.terminals)
    played = sum(r["status"] == "played" for r in rows)
    assert report["coverage"]["played"] == played
    assert report["coverage"]["rate"] == round(played / len(rows), 4)
    for status in DeliveryStatus:
        assert report["counts"][str(status)] == sum(r["status"] == str(status) for r in rows)

    for level, key_len in (("county", 6), ("street", 9), ("village", 12)):
        expected = _expected_area(rows, key_len)
        got = {a["code"]: (a["targeted"], a["played"], a["on_air"]) for a in report["by_area"][level]}
        assert got == expected, level
        for a in report["by_area"][level]:
            assert a["coverage"] == round(a["played"] / a["targeted"], 4)

    delays = [(r["playing_at"] - RECEIVED).total_seconds() for r in rows if r["playing_at"] is not None]
    tta = report["time_to_air"]
    assert tta["count"] == len(delays)
    for q in (50, 90, 95, 99):
        assert tta[f"p{q}_s"] == round(_nearest_rank(delays, q), 3)
    assert tta["max_s"] == round(max(delays), 3)
    assert tta["min_s"] == round(min(delays), 3)

    failures: dict[str, int] = {}
    for r in rows:
        if r["status"] in ("failed", "offline", "cancelled"):
            key = r["reason"] or r["status"]
            failures[key] = failures.get(key, 0) + 1
    assert report["failures"] == failures
    per_street_total = sum(sum(v.values()) for v in report["failures_by_street"].values())
    assert per_street_total == sum(failures.values())

    silent = sorted(r["terminal_code"] for r in rows if r["status"] in ("queued", "sent", "offline"))
    assert [s["terminal_code"] for s in report["never_answered"]] == silent

    html = render.effect_html(report)
    assert "<svg" in html and "各街道覆盖率" in html and "连然街道" in html
    tables = render.effect_tables(report)
    coverage_lines = tables["coverage.csv"].strip().splitlines()
    assert len(coverage_lines) == 1 + sum(len(v) for v in report["by_area"].values())
    written = render.write_bundle(tmp_path / "out", "b", report, html, tables)
    assert all(p.exists() and p.stat().st_size > 0 for p in written)


async def test_unknown_area(engine: AsyncEngine, inventory: Inventory) -> None:
    t = inventory.terminals[20]
    rows = [
        {"terminal_code": t.resource_code, "area_code": t.area_code, "status": "played", "reason": None,
         "detail": "", "attempts": 1, "updated_at": RECEIVED, "playing_at": RECEIVED + timedelta(seconds=2)},
        {"terminal_code": "59999990000000314010401", "area_code": "599999000000", "status": "sent",
         "reason": None, "detail": "", "attempts": 1, "updated_at": RECEIVED, "playing_at": None},
    ]
    bid = await _insert_broadcast(engine, rows)
    report = await effect_report(engine, bid, inventory)
    assert {a["code"] for a in report["by_area"]["street"]} == {t.area_code[:9] + "000", "unknown"}
    assert report["never_answered"][0]["area"] == "unknown"
    assert report["time_to_air"]["p50_s"] == 2.0


async def test_missing_broadcast(engine: AsyncEngine, inventory: Inventory) -> None:
    try:
        await effect_report(engine, 999, inventory)
    except BroadcastNotFoundError as exc:
        assert exc.broadcast_id == 999 and "999" in str(exc)
    else:
        raise AssertionError("expected BroadcastNotFoundError")
