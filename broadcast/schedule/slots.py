"""A slot (定时时段) and its broadcast, the same for drills and daily programmes: the Beijing time zone the
schedules are written in, the fire times of a trigger between two moments, the slot's source reference
(what makes a slot idempotent) and the one submitter that hands a slot's draft to the pipeline.

A slot's SourceRef identifier is ``<id>@<slot in UTC>``: a slot fired twice (restart, misfire) meets the
broadcast store's duplicate-source check instead of airing twice.

Pure apart from ``pipeline_submitter``, which only forwards: never schedules, never reads the clock,
never touches the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from broadcast.model import MessageDraft, SourceKind, SourceRef

SHANGHAI = ZoneInfo("Asia/Shanghai")

Submit = Callable[[MessageDraft], Awaitable[int]]
"""Submit a slot's draft; returns the broadcast id. Raises DuplicateSourceError for a slot aired before.
A silent drill's draft carries ``volume=0`` (the pipeline puts it into the delivery order)."""


def slots_between(trigger: BaseTrigger, after: datetime, upto: datetime) -> list[datetime]:
    """Fire times t of the trigger with after < t <= upto, in UTC."""
    out: list[datetime] = []
    prev = after
    while True:
        nxt = trigger.get_next_fire_time(prev, prev)
        if nxt is None or nxt > upto:
            return out
        out.append(nxt.astimezone(UTC))
        prev = nxt


def slot_identifier(owner_id: str, slot: datetime) -> str:
    """``<drill or programme id>@<slot in UTC>``: the same slot always gives the same identifier."""
    return f"{owner_id}@{slot.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def slot_source(kind: str, owner_id: str, slot: datetime) -> SourceRef:
    """The SourceRef of one slot of a drill (``kind="drill"``) or a programme (``kind="programme"``)."""
    return SourceRef(
        SourceKind.SCHEDULE,
        f"{kind}:{owner_id}",
        slot_identifier(owner_id, slot),
        slot.astimezone(UTC).isoformat(),
    )


class _Submits(Protocol):
    async def submit(
        self, draft: MessageDraft, *, actor: str = "", received_at: datetime | None = None
    ) -> Any: ...


def pipeline_submitter(pipeline: _Submits) -> Submit:
    """Adapt ``Pipeline.submit`` (returns Submitted) to a Submit. Scheduled slots are routine or drills:
    they go straight to the pipeline, never through the intake desk's emergency policy holds."""

    async def submit(draft: MessageDraft) -> int:
        result = await pipeline.submit(draft, actor=draft.source.sender)
        return int(result.broadcast_id)

    return submit
