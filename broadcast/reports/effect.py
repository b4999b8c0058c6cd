"""Effect evaluation (效果评估) of one broadcast, computed from its deliveries rows.

Definitions (every figure is a count over the broadcast's ``deliveries`` rows, one row per targeted
terminal):

- **targeted**: number of delivery rows.
- **played**: rows whose status is ``played`` (the terminal reported the message played to the end).
- **on air** (已开播): rows with a ``playing_at`` time (the terminal started playing), whatever came after.
- **coverage** (覆盖率) = played / targeted, per county, per street and per village unit (村/社区),
  rolled up through ``Inventory.path(area_code)``; a row whose area is not in the inventory is counted
  under the code ``unknown``. A terminal placed at street level counts for its county and street only.
- **time to air** (到播时延) = ``playing_at − received_at`` of the broadcast, in seconds, over the on-air
  rows; percentiles are nearest-rank (the smallest value with at least q % of values at or below it), the
  one definition in ``broadcast.store.stats``.
- **failures by cause**: rows with status ``failed``, ``offline`` or ``cancelled``, keyed by their
  ``reason`` (or by the status when no reason was recorded), in total and per street.
- **never answered** (未应答): rows whose status is still ``queued``, ``sent`` or ``offline`` — the
  terminal never acknowledged anything.

Owns the arithmetic and the one query that reads a broadcast and its deliveries. Must never write to
the database or change a delivery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import BEIJING
from broadcast.model import DeliveryStatus
from broadcast.store.stats import percentile
from broadcast.store.tables import broadcasts, deliveries
from terminals.inventory_model import Area, Inventory, UnknownAreaError

FAILED_STATUSES = frozenset({DeliveryStatus.FAILED, DeliveryStatus.OFFLINE, DeliveryStatus.CANCELLED})
SILENT_STATUSES = frozenset({DeliveryStatus.QUEUED, DeliveryStatus.SENT, DeliveryStatus.OFFLINE})
PERCENTILES = (50, 90, 95, 99)
UNKNOWN_AREA = "unknown"


class BroadcastNotFoundError(LookupError):
    def __init__(self, broadcast_id: int) -> None:
        super().__init__(
            f"广播 {broadcast_id} 不存在：请用 `ebc` 控制台或 /api/broadcasts 查看有效的广播编号。"
        )
        self.broadcast_id = broadcast_id


def time_stats(values_s: Sequence[float]) -> dict[str, Any]:
    """Count, min, the PERCENTILES, mean and max of time-to-air values in seconds (None when empty)."""
    values = sorted(values_s)
    out: dict[str, Any] = {"count": len(values)}
    if not values:
        out.update({"min_s": None, "mean_s": None, "max_s": None})
        out.update({f"p{q}_s": None for q in PERCENTILES})
        return out
    out["min_s"] = round(values[0], 3)
    for q in PERCENTILES:
        out[f"p{q}_s"] = round(percentile(values, q), 3)
    out["mean_s"] = round(sum(values) / len(values), 3)
    out["max_s"] = round(values[-1], 3)
    return out


def _chain(inventory: Inventory, area_code: str) -> list[Area] | None:
    try:
        return inventory.path(area_code)
    except UnknownAreaError:
        return None


def _blank(area: Area | None, code: str) -> dict[str, Any]:
    return {
        "code": code,
        "name": area.name if area else "未知区域",
        "level": str(area.level) if area else UNKNOWN_AREA,
        "parent": area.parent if area else None,
        "targeted": 0,
        "played": 0,
        "on_air": 0,
        "failed": 0,
        "never_answered": 0,
        "coverage": 0.0,
    }


def evaluate(
    broadcast: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], inventory: Inventory
) -> dict[str, Any]:
    """The effect report of one broadcast as a JSON-ready dict (see the module docstring)."""
    received_at: datetime = broadcast["received_at"]
    counts = {str(s): 0 for s in DeliveryStatus}
    failures: dict[str, int] = {}
    to_air: list[float] = []
    levels: dict[str, dict[str, dict[str, Any]]] = {"county": {}, "street": {}, "village": {}}
    failures_by_street: dict[str, dict[str, int]] = {}
    silent: list[dict[str, Any]] = []
    for r in rows:
        status = DeliveryStatus(r["status"])
        counts[str(status)] += 1
        chain = _chain(inventory, r["area_code"])
        county = chain[0] if chain else None
        street = chain[1] if chain and len(chain) > 1 else None
        unit = chain[2] if chain and len(chain) > 2 else None
        county_code = county.code if county else UNKNOWN_AREA
        buckets = [levels["county"].setdefault(county_code, _blank(county, county_code))]
        street_code = street.code if street else UNKNOWN_AREA
        buckets.append(levels["street"].setdefault(street_code, _blank(street, street_code)))
        if unit is not None or chain is None:
            unit_code = unit.code if unit else UNKNOWN_AREA
            buckets.append(levels["village"].setdefault(unit_code, _blank(unit, unit_code)))
        played = status is DeliveryStatus.PLAYED
        on_air = r["playing_at"] is not None
        failed = status in FAILED_STATUSES
        never = status in SILENT_STATUSES
        for b in buckets:
            b["targeted"] += 1
            b["played"] += played
            b["on_air"] += on_air
            b["failed"] += failed
            b["never_answered"] += never
        if on_air:
            to_air.append((r["playing_at"] - received_at).total_seconds())
        if failed:
            cause = r["reason"] or str(status)
            failures[cause] = failures.get(cause, 0) + 1
            per = failures_by_street.setdefault(street_code, {})
            per[cause] = per.get(cause, 0) + 1
        if never:
            term = inventory.terminal(r["terminal_code"])
            silent.append(
                {
                    "terminal_code": r["terminal_code"],
                    "name": term.name if term else "",
                    "area_code": r["area_code"],
                    "area": " / ".join(a.name for a in chain[1:]) if chain else UNKNOWN_AREA,
                    "status": str(status),
                    "reason": r["reason"],
                    "attempts": int(r.get("attempts") or 0),
                }
            )
    for level in levels.values():
        for b in level.values():
            b["coverage"] = round(b["played"] / b["targeted"], 4) if b["targeted"] else 0.0
    targeted = len(rows)
    played_total = counts[str(DeliveryStatus.PLAYED)]
    return {
        "kind": "broadcast_effect",
        "broadcast": {
            "id": int(broadcast["id"]),
            "ebm_id": broadcast["ebm_id"],
            "title": broadcast["title"],
            "msg_type": int(broadcast["msg_type"]),
            "state": broadcast["state"],
            "received_at": received_at.isoformat(),
            "received_at_local": received_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
        },
        "targeted": targeted,
        "counts": counts,
        "coverage": {
            "played": played_total,
            "on_air": sum(b["on_air"] for b in levels["street"].values()),
            "targeted": targeted,
            "rate": round(played_total / targeted, 4) if targeted else 0.0,
        },
        "time_to_air": time_stats(to_air),
        "time_to_air_values_s": sorted(round(v, 3) for v in to_air),
        "by_area": {level: sorted(v.values(), key=lambda b: b["code"]) for level, v in levels.items()},
        "failures": dict(sorted(failures.items())),
        "failures_by_street": {k: dict(sorted(v.items())) for k, v in sorted(failures_by_street.items())},
        "never_answered": sorted(silent, key=lambda s: s["terminal_code"]),
    }


async def load_broadcast(
    engine: AsyncEngine, broadcast_id: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The broadcast row and its delivery rows; raises BroadcastNotFoundError."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(broadcasts).where(broadcasts.c.id == broadcast_id))).first()
        if row is None:
            raise BroadcastNotFoundError(broadcast_id)
        result = await conn.execute(
            select(deliveries).where(deliveries.c.broadcast_id == broadcast_id).order_by(deliveries.c.id)
        )
        return dict(row._mapping), [dict(r._mapping) for r in result]


async def effect_report(engine: AsyncEngine, broadcast_id: int, inventory: Inventory) -> dict[str, Any]:
    b, rows = await load_broadcast(engine, broadcast_id)
    report = evaluate(b, rows, inventory)
    report["broadcast"]["area_codes"] = [c for c in str(b["area_codes"]).split(",") if c]
    return report
