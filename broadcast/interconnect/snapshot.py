"""The plain data the core hands to the interconnect (核心交给平台间接口的数据).

Owns `BroadcastSnapshot`, `AdapterCount` and `TerminalStatus`: frozen values describing what the core knows
about a broadcast and a terminal right now (built by `broadcast.interconnect.facade`).

Plain data only: must never hold conversion logic, do I/O or read the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from broadcast.model import (
    BroadcastState,
    LinkState,
    MessageDraft,
)


@dataclass(frozen=True)
class AdapterCount:
    """Deliveries of one broadcast through one adapter (transmission system)."""

    adapter: str
    targets: int
    played: int
    failed: int


@dataclass(frozen=True)
class BroadcastSnapshot:
    """What the core knows about one broadcast right now. `ebm_id` is the county's id of the broadcast."""

    ebm_id: str
    state: BroadcastState
    draft: MessageDraft
    changed_at: datetime
    targets: int = 0
    played: int = 0
    failed: int = 0
    covered_area_codes: tuple[str, ...] = ()
    by_adapter: tuple[AdapterCount, ...] = ()
    started_at: datetime | None = None
    finished_at: datetime | None = None
    audio_url: str | None = None


@dataclass(frozen=True)
class TerminalStatus:
    state: LinkState
    changed_at: datetime | None = None
