"""Delivery statistics (播发统计), the one read model of a broadcast's deliveries: counts per state,
coverage (played / targeted) and time-to-air / time-to-acknowledge percentiles.

Pure functions over delivery rows (the read side of the receipts); used by the API, the reports and the
interconnect. Never reads the database itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from broadcast.model import DeliveryStatus


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (q in 0..100); NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def ms_stats(values: Sequence[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "first_ms": None, "p50_ms": None, "p95_ms": None, "max_ms": None}
    return {
        "count": len(ordered),
        "first_ms": round(ordered[0], 1),
        "p50_ms": round(percentile(ordered, 50), 1),
        "p95_ms": round(percentile(ordered, 95), 1),
        "max_ms": round(ordered[-1], 1),
    }


def summarise(received_at: datetime, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts per delivery state, coverage (played / targeted) and time-to-air from delivery rows."""
    counts = {str(s): 0 for s in DeliveryStatus}
    reasons: dict[str, int] = {}
    to_air: list[float] = []
    to_ack: list[float] = []
    for r in rows:
        counts[r["status"]] += 1
        if r["reason"]:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        if r["playing_at"] is not None:
            to_air.append((r["playing_at"] - received_at).total_seconds() * 1000)
        if r["acknowledged_at"] is not None:
            to_ack.append((r["acknowledged_at"] - received_at).total_seconds() * 1000)
    targeted = len(rows)
    played = counts[str(DeliveryStatus.PLAYED)]
    return {
        "targeted": targeted,
        "counts": counts,
        "failure_reasons": reasons,
        "coverage": {
            "played": played,
            "targeted": targeted,
            "rate": round(played / targeted, 4) if targeted else 0.0,
        },
        "time_to_air": ms_stats(to_air),
        "time_to_ack": ms_stats(to_ack),
    }
