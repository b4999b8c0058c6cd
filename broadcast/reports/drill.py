"""Drill report (演练报告): every scheduled slot of one drill with its outcome, and for those that aired
the coverage and time to air of its broadcast (as effect.py defines them), compared with the previous
drill that aired (``coverage_change`` = this coverage − previous coverage, as a fraction).

Owns the comparison only; reads drill_runs and the broadcasts' deliveries, never writes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import BEIJING
from broadcast.reports.effect import BroadcastNotFoundError, evaluate, load_broadcast
from broadcast.schedule.drill_service import drill_runs
from broadcast.schedule.drills import DrillOutcome
from terminals.inventory_model import Inventory

OUTCOME_ZH = {
    DrillOutcome.STARTED: "进行中/未确认",
    DrillOutcome.SUBMITTED: "已执行",
    DrillOutcome.MISSED: "错过（系统未运行）",
    DrillOutcome.FAILED: "提交失败",
}


async def drill_report(engine: AsyncEngine, drill_id: str, inventory: Inventory) -> dict[str, Any]:
    async with engine.connect() as conn:
        rows = [
            dict(r._mapping)
            for r in await conn.execute(
                select(drill_runs).where(drill_runs.c.drill_id == drill_id).order_by(drill_runs.c.slot)
            )
        ]
    runs: list[dict[str, Any]] = []
    previous: float | None = None
    for r in rows:
        outcome = DrillOutcome(r["outcome"])
        entry: dict[str, Any] = {
            "slot": r["slot"].isoformat(),
            "slot_local": r["slot"].astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"),
            "outcome": str(outcome),
            "outcome_zh": OUTCOME_ZH[outcome],
            "detail": r["detail"],
            "broadcast_id": r["broadcast_id"],
            "targeted": None,
            "played": None,
            "coverage": None,
            "p50_s": None,
            "p95_s": None,
            "coverage_change": None,
        }
        if r["broadcast_id"] is not None:
            try:
                b, deliveries = await load_broadcast(engine, int(r["broadcast_id"]))
            except BroadcastNotFoundError:
                entry["detail"] = (entry["detail"] + "；广播记录已不存在").lstrip("；")
            else:
                effect = evaluate(b, deliveries, inventory)
                entry.update(
                    targeted=effect["targeted"],
                    played=effect["coverage"]["played"],
                    coverage=effect["coverage"]["rate"],
                    p50_s=effect["time_to_air"]["p50_s"],
                    p95_s=effect["time_to_air"]["p95_s"],
                )
                if previous is not None:
                    entry["coverage_change"] = round(entry["coverage"] - previous, 4)
                previous = entry["coverage"]
        runs.append(entry)
    return {
        "kind": "drill",
        "drill_id": drill_id,
        "runs": runs,
        "missed": sum(1 for r in runs if r["outcome"] == DrillOutcome.MISSED),
    }
