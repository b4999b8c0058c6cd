"""The county core as the interconnect sees it: ``ControllerFacade`` implements ``CountyFacade`` over
the narrow ``CountyParts`` the composition root hands it (intake, desk, store engine, inventory, link
tracker, clock, the audio base URL).

- ``submit_upper`` takes an upper platform's draft through the intake — the same refusal path and desk
  as every other source (idempotent by ``draft.source.key``: a second submission of the same source item
  answers with the first broadcast) — and turns its refusals into ``UpperRefusal`` with a ResultCode
  and a Chinese description for the sender;
- ``cancel_by_ebm`` stops a broadcast through the desk, like an operator's stop (the policy record is
  cancelled and the decision recorded);
- ``broadcast_state`` / ``broadcasts_changed_since`` / ``broadcasts_between`` build ``BroadcastSnapshot``s from
  the broadcast row and its delivery rows: targets, played and not played (in total and per adapter, via
  the inventory) are counted by the store's delivery statistics (``broadcast.store.stats``, the read
  model the console's broadcast view uses too);
- ``terminal_states`` reports the link tracker's view with when each state last changed.

Read-only towards the store; changes go through the intake and the desk. Must never talk HTTP, build
EBD packets or decide protocol rules (upper.py and link.py do).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.dispatch.links import LinkTracker
from broadcast.intake.intake import Intake, RefusalKind, Refused
from broadcast.intake.upper import submit_upper
from broadcast.interconnect.ebd.model import ResultCode
from broadcast.interconnect.snapshot import AdapterCount, BroadcastSnapshot, TerminalStatus
from broadcast.interconnect.upper_boundary import UpperRefusal
from broadcast.lifecycle import TransitionError
from broadcast.model import BroadcastState, DeliveryStatus, MessageDraft
from broadcast.pipeline.orders import audio_file_url
from broadcast.store import broadcasts as store
from broadcast.store.stats import summarise
from terminals.inventory_model import Inventory

log = logging.getLogger(__name__)

_FINISHED = frozenset(
    {
        BroadcastState.COMPLETED,
        BroadcastState.CANCELLED,
        BroadcastState.EXPIRED,
        BroadcastState.FAILED,
        BroadcastState.REJECTED,
    }
)
_NOT_PLAYED = frozenset({DeliveryStatus.FAILED, DeliveryStatus.OFFLINE, DeliveryStatus.CANCELLED})


_RESULT_CODES: Mapping[RefusalKind, ResultCode] = {
    RefusalKind.UNKNOWN_AREA: ResultCode.CONTENT_MISSING,  # AreaCode present but unusable here
}


class CountyRefusal(UpperRefusal):
    """An ``UpperRefusal`` that also names the intake's refusal kind (for logs and tests)."""

    def __init__(self, kind: RefusalKind, desc: str, *, code: ResultCode | None = None) -> None:
        super().__init__(code or _RESULT_CODES.get(kind, ResultCode.OTHER_ERROR), desc)
        self.kind = kind


def _refusal(exc: Refused, identifier: str) -> CountyRefusal:
    if exc.kind is RefusalKind.UNKNOWN_AREA and not exc.extra.get("codes"):
        # Known areas, but no terminal of this county in them.
        return CountyRefusal(exc.kind, f"消息 {identifier} 未播发：{exc.message}", code=ResultCode.OTHER_ERROR)
    return CountyRefusal(exc.kind, f"消息 {identifier} 未播发：{exc.message}")


class Stopping(Protocol):
    async def stop(self, broadcast_id: int, operator: str, *, reason_zh: str | None = None) -> int: ...


@dataclass(frozen=True)
class CountyParts:
    """What the interconnect may use of the county core."""

    intake: Intake
    desk: Stopping
    engine: AsyncEngine
    inventory: Inventory
    links: LinkTracker
    clock: Clock
    audio_base_url: str


class ControllerFacade:
    """`CountyFacade` over the county parts the composition root hands it."""

    def __init__(self, parts: CountyParts, *, inventory_changed_at: datetime | None = None) -> None:
        self._c = parts
        self._inventory_changed_at = inventory_changed_at or parts.clock.now()

    # ---- identity ----

    @property
    def platform_code(self) -> str:
        return self._c.inventory.platform_code

    @property
    def platform_name(self) -> str:
        inv = self._c.inventory
        return inv.platform_name or f"{inv.name}应急广播平台"

    def inventory(self) -> Inventory:
        return self._c.inventory

    def inventory_changed_at(self) -> datetime:
        return self._inventory_changed_at

    # ---- acting ----

    async def submit_upper(self, draft: MessageDraft) -> tuple[int, str]:
        source = draft.source
        try:
            accepted = await submit_upper(self._c.intake, draft)
        except Refused as exc:
            raise _refusal(exc, source.identifier) from exc
        if accepted.broadcast_id is None or accepted.ebm_id is None:
            raise CountyRefusal(RefusalKind.POLICY, f"消息 {source.identifier} 未播发：{accepted.reason_zh}")
        if accepted.duplicate:
            log.info("upper message %s already accepted as broadcast %d", source.identifier, accepted.broadcast_id)
        return accepted.broadcast_id, accepted.ebm_id

    async def cancel_by_ebm(self, ebm_id: str) -> bool:
        row = await self._row_by_ebm(ebm_id)
        if row is None:
            return False
        try:
            await self._c.desk.stop(int(row["id"]), "upper", reason_zh=f"上级平台取消播发 {ebm_id}")
        except TransitionError as exc:  # already finished in a way that cannot be cancelled
            log.info("cancel of broadcast %s from an upper platform: %s", ebm_id, exc)
        return True

    # ---- state ----

    async def broadcast_state(self, ebm_id: str) -> BroadcastSnapshot | None:
        row = await self._row_by_ebm(ebm_id)
        return None if row is None else await self._snapshot(row)

    async def broadcasts_changed_since(self, since: datetime) -> Sequence[BroadcastSnapshot]:
        return await self._snapshots(await store.broadcasts_changed_since(self._c.engine, since))

    async def broadcasts_between(
        self, start: datetime | None, end: datetime | None
    ) -> Sequence[BroadcastSnapshot]:
        return await self._snapshots(await store.broadcasts_starting_between(self._c.engine, start, end))

    async def terminal_states(self) -> Mapping[str, TerminalStatus]:
        links = self._c.links
        return {
            t.resource_code: TerminalStatus(links.state(t.resource_code), links.changed_at(t.resource_code))
            for t in self._c.inventory.terminals
        }

    # ---- helpers ----

    async def _row_by_ebm(self, ebm_id: str) -> dict[str, Any] | None:
        return await store.broadcast_by_ebm(self._c.engine, ebm_id)

    async def _snapshots(self, rows: Sequence[Mapping[str, Any]]) -> list[BroadcastSnapshot]:
        return [await self._snapshot(r) for r in rows]

    async def _snapshot(self, row: Mapping[str, Any]) -> BroadcastSnapshot:
        return snapshot_from_rows(
            row,
            await store.delivery_rows(self._c.engine, int(row["id"])),
            self._c.inventory,
            audio_base_url=self._c.audio_base_url,
        )


def _tally(received_at: datetime, rows: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
    """(targets, played, not played) of some delivery rows, by the delivery read model."""
    summary = summarise(received_at, rows)
    coverage, counts = summary["coverage"], summary["counts"]
    return coverage["targeted"], coverage["played"], sum(counts[str(s)] for s in _NOT_PLAYED)


def snapshot_from_rows(
    row: Mapping[str, Any],
    delivery_rows: Sequence[Mapping[str, Any]],
    inventory: Inventory,
    *,
    audio_base_url: str = "",
) -> BroadcastSnapshot:
    """A broadcast row and its delivery rows as the interconnect's snapshot (pure)."""
    state = BroadcastState(row["state"])
    draft = store.record_to_draft(json.loads(row["message_json"]))
    received_at: datetime = row["received_at"]
    targets, played, failed = _tally(received_at, delivery_rows)
    per_adapter: dict[str, list[Mapping[str, Any]]] = {}
    played_areas: list[str] = []
    changed_at: datetime = row["state_changed_at"]
    started: list[datetime] = []
    for d in delivery_rows:
        ref = inventory.terminal(str(d["terminal_code"]))
        per_adapter.setdefault(ref.adapter if ref is not None else "unknown", []).append(d)
        if DeliveryStatus(d["status"]) is DeliveryStatus.PLAYED:
            played_areas.append(str(d["area_code"]))
        if d["updated_at"] is not None and d["updated_at"] > changed_at:
            changed_at = d["updated_at"]
        began = d["playing_at"] or d["played_at"]
        if began is not None:
            started.append(began)
    if targets and played == targets:
        covered = tuple(draft.area_codes)
    else:
        covered = tuple(sorted(set(played_areas)))
    audio_url = None
    if row.get("audio_digest"):
        audio_url = audio_file_url(audio_base_url, str(row["audio_digest"]), str(row["audio_format"]))
    return BroadcastSnapshot(
        ebm_id=str(row["ebm_id"]),
        state=state,
        draft=draft,
        changed_at=changed_at,
        targets=targets,
        played=played,
        failed=failed,
        covered_area_codes=covered,
        by_adapter=tuple(
            AdapterCount(name, *_tally(received_at, rows)) for name, rows in sorted(per_adapter.items())
        ),
        started_at=min(started) if started else None,
        finished_at=row["state_changed_at"] if state in _FINISHED else None,
        audio_url=audio_url,
    )
