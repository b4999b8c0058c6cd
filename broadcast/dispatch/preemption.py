"""Preemption (上级优先、应急优先): the one ordering rule that decides who gets a terminal.

A rank is compared as a tuple, most significant first:

1. **tier** — emergency > drill > daily programme (应急优先). A drill or a daily programme never takes a
   terminal from an emergency, whoever sent it: an upper-platform drill does not cut off a county's
   red warning.
2. **source level** — upper platform > county > street > village front-end (上级优先).
3. **severity** (emergencies only) — red > orange > yellow > blue > unknown.

A terminal playing an item is preempted only by an item of *strictly* higher rank. An equal or lower
new item waits (the terminal answers busy; the dispatcher queues it behind). Equal rank deliberately
does not preempt, not even for the newest message of the same source: cutting a warning off mid-
sentence for one of the same weight helps nobody, and a real replacement (CAP Update, EBM with a
related id) already stops what it supersedes through the intake desk, which frees the terminal.

Terminals see only a StartBroadcast's broadcast type and level, so they apply (tier, severity) without
the source level (sim/ip_terminal.py): strictly lower → busy (31), equal → the newest instruction
replaces the current one (the dispatcher sends an equal-ranked start only to a terminal it believes
free), strictly higher → interrupt. A terminal may answer busy to an upper-platform blue warning while
a county red one plays; the dispatcher then retries until the terminal is free — the safe direction.

Pure functions and frozen values only: never does I/O, reads the clock, or imports beyond the model.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from broadcast.model import DeliveryOrder, Priority, Severity


class Tier(IntEnum):
    DAILY = 1  # 日常广播
    DRILL = 2  # 演练
    EMERGENCY = 3  # 应急广播


class SourceLevel(IntEnum):
    """Who put the item on air; higher wins (上级优先)."""

    VILLAGE = 1  # 村级前端
    STREET = 2  # 乡镇/街道
    COUNTY = 3  # 县级平台（本平台）
    UPPER = 4  # 上级平台


_SEVERITY_RANK = {
    Severity.RED: 4,
    Severity.ORANGE: 3,
    Severity.YELLOW: 2,
    Severity.BLUE: 1,
}


class Rank(NamedTuple):
    tier: Tier
    level: SourceLevel
    severity: int  # 0 unknown/test … 4 red; always 0 outside the emergency tier


def rank(priority: Priority, severity: Severity, level: SourceLevel | None = None) -> Rank:
    """Rank of an item. ``level`` defaults to what the priority says: UPPER_EMERGENCY comes from the
    upper platform, everything else from this county platform (front-ends pass their own level)."""
    if priority is Priority.DAILY:
        tier = Tier.DAILY
    elif priority is Priority.DRILL:
        tier = Tier.DRILL
    else:
        tier = Tier.EMERGENCY
    if level is None:
        level = SourceLevel.UPPER if priority is Priority.UPPER_EMERGENCY else SourceLevel.COUNTY
    sev = _SEVERITY_RANK.get(severity, 0) if tier is Tier.EMERGENCY else 0
    return Rank(tier, level, sev)


def order_rank(order: DeliveryOrder) -> Rank:
    return rank(order.priority, order.severity)


def preempts(new: Rank, current: Rank) -> bool:
    """Whether ``new`` takes a terminal that is playing ``current`` (strictly higher only)."""
    return new > current

