"""The county controller as the interconnect sees it: `ControllerFacade` implements `CountyFacade` on top of
the controller's engine, pipeline, inventory, link tracker and clock.

- `submit_upper` puts an upper platform's draft on air through `Pipeline.submit` (idempotent by
  `draft.source.key`: a second submission of the same source item answers with the first broadcast) and turns
  the core's refusals into `UpperRefusal` with a ResultCode and a Chinese description for the sender;
- `cancel_by_ebm` stops a broadcast through `Pipeline.stop`;
- `broadcast_state` / `broadcasts_changed_since` / `broadcasts_between` build `BroadcastSnapshot`s from the
  broadcast row and its delivery rows (counts per adapter via the inventory);
- `terminal_states` reports the link tracker's view with when each state last changed.

Read-only towards the store except through the pipeline. Must never talk HTTP, build EBD packets or decide
protocol rules (upper.py and link.py do), and never bypass the pipeline to change a broadcast.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, or_, select

from broadcast.interconnect.ebd.model import ResultCode
from broadcast.interconnect.snapshot import AdapterCount, BroadcastSnapshot, TerminalStatus
from broadcast.interconnect.upper_boundary import UpperRefusal
from broadcast.lifecycle import TransitionError
from broadcast.model import BroadcastState, DeliveryStatus, LinkState, MessageDraft, MsgType
from broadcast.store import broadcasts as store
from broadcast.store.inventory import list_terminals
from broadcast.store.tables import broadcasts, deliveries
from terminals.inventory_model import Inventory, UnknownAreaError

if TYPE_CHECKING:
    from broadcast.app.controller import Controller

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
_LIVE = (str(BroadcastState.RECEIVED), str(BroadcastState.RENDERING), str(BroadcastState.BROADCASTING))
_NOT_PLAYED = frozenset({DeliveryStatus.FAILED, DeliveryStatus.OFFLINE, DeliveryStatus.CANCELLED})


class RefusalKind(StrEnum):
    """Why the county will not take an upper message (each maps to one ResultCode)."""

    UNKNOWN_AREA = "unknown_area"
    NO_TERMINALS = "no_terminals"
    EXPIRED = "expired"
    NOT_A_BROADCAST = "not_a_broadcast"
    POLICY = "policy"


_RESULT_CODES: Mapping[RefusalKind, ResultCode] = {
    RefusalKind.UNKNOWN_AREA: ResultCode.CONTENT_MISSING,  # AreaCode present but unusable here
    RefusalKind.NO_TERMINALS: ResultCode.OTHER_ERROR,
    RefusalKind.EXPIRED: ResultCode.OTHER_ERROR,
    RefusalKind.POLICY: ResultCode.OTHER_ERROR,
    RefusalKind.NOT_A_BROADCAST: ResultCode.OTHER_ERROR,
}


class CountyRefusal(UpperRefusal):
    """An `UpperRefusal` that also names its kind (for logs and tests)."""

    def __init__(self, kind: RefusalKind, desc: str) -> None:
        super().__init__(_RESULT_CODES[kind], desc)
        self.kind = kind


def refusal(kind: RefusalKind, desc: str) -> CountyRefusal:
    return CountyRefusal(kind, desc)


class ControllerFacade:
    """`CountyFacade` over a started (or starting) `Controller`."""

    def __init__(self, controller: Controller, *, inventory_changed_at: datetime | None = None) -> None:
        self._c = controller
        self._inventory_changed_at = inventory_changed_at or controller.clock.now()
        self._link_changed: dict[str, datetime] = {}
        self._stored_link_changed: dict[str, datetime] | None = None
        controller.links.add_listener(self._on_link)

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
        if draft.msg_type is MsgType.CANCEL:
            raise refusal(
                RefusalKind.NOT_A_BROADCAST,
                f"取消消息（来源 {source.identifier}）不能作为新播发提交，请在 RelatedInfo 中引用要取消的 EBMID",
            )
        now = self._c.clock.now()
        if draft.end_at <= now:
            raise refusal(
                RefusalKind.EXPIRED,
                f"消息 {source.identifier} 已于 {draft.end_at.isoformat()} 结束，未播发；如仍需播发请更新 EndTime 后重发",
            )
        try:
            targets = self._c.pipeline.resolve(draft)
        except UnknownAreaError as exc:
            raise refusal(
                RefusalKind.UNKNOWN_AREA, f"消息 {source.identifier} 的区域无法定位：{exc}"
            ) from exc
        if not targets:
            areas = "、".join(draft.area_codes)
            raise refusal(
                RefusalKind.NO_TERMINALS,
                f"消息 {source.identifier} 的区域 {areas} 在本县没有应急广播终端，未播发；请核对 AreaCode",
            )
        # Through the intake desk like every other source: dedupe, Update ordering, and the policy
        # (upper red/orange on air at once; lower grades as configured for trusted sources).
        taken = await self._c.desk.take(draft, actor=f"upper:{source.sender}", received_at=now)
        if taken.broadcast_id is None or taken.ebm_id is None:
            raise refusal(RefusalKind.POLICY, f"消息 {source.identifier} 未播发：{taken.decision.reason_zh}")
        if taken.duplicate:
            log.info(
                "upper message %s already accepted as broadcast %d", source.identifier, taken.broadcast_id
            )
        return taken.broadcast_id, taken.ebm_id

    async def cancel_by_ebm(self, ebm_id: str) -> bool:
        row = await self._row_by_ebm(ebm_id)
        if row is None:
            return False
        try:
            await self._c.pipeline.stop(int(row["id"]), actor="upper")
        except TransitionError as exc:  # already finished in a way that cannot be cancelled
            log.info("cancel of broadcast %s from an upper platform: %s", ebm_id, exc)
        return True

    # ---- state ----

    async def broadcast_state(self, ebm_id: str) -> BroadcastSnapshot | None:
        row = await self._row_by_ebm(ebm_id)
        return None if row is None else await self._snapshot(row)

    async def broadcasts_changed_since(self, since: datetime) -> Sequence[BroadcastSnapshot]:
        delivery_moved = exists().where(
            and_(deliveries.c.broadcast_id == broadcasts.c.id, deliveries.c.updated_at >= since)
        )
        query = (
            select(broadcasts)
            .where(
                or_(
                    broadcasts.c.state_changed_at >= since,
                    and_(broadcasts.c.state.in_(_LIVE), delivery_moved),
                )
            )
            .order_by(broadcasts.c.id)
        )
        return await self._snapshots(query)

    async def broadcasts_between(
        self, start: datetime | None, end: datetime | None
    ) -> Sequence[BroadcastSnapshot]:
        query = select(broadcasts).order_by(broadcasts.c.id)
        if start is not None:
            query = query.where(broadcasts.c.start_at >= start)
        if end is not None:
            query = query.where(broadcasts.c.start_at <= end)
        return await self._snapshots(query)

    async def terminal_states(self) -> Mapping[str, TerminalStatus]:
        if self._stored_link_changed is None:
            self._stored_link_changed = {
                str(r["resource_code"]): r["link_changed_at"]
                for r in await list_terminals(self._c.engine)
                if r["link_changed_at"] is not None
            }
        links = self._c.links
        out: dict[str, TerminalStatus] = {}
        for t in self._c.inventory.terminals:
            code = t.resource_code
            changed = self._link_changed.get(code) or self._stored_link_changed.get(code)
            out[code] = TerminalStatus(links.state(code), changed)
        return out

    # ---- helpers ----

    def _on_link(self, terminal_code: str, _state: LinkState) -> None:
        self._link_changed[terminal_code] = self._c.clock.now()

    async def _row_by_ebm(self, ebm_id: str) -> dict[str, Any] | None:
        async with self._c.engine.connect() as conn:
            row = (await conn.execute(select(broadcasts).where(broadcasts.c.ebm_id == ebm_id))).first()
        return None if row is None else dict(row._mapping)

    async def _snapshots(self, query: Any) -> list[BroadcastSnapshot]:
        async with self._c.engine.connect() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(query)]
        return [await self._snapshot(r) for r in rows]

    async def _snapshot(self, row: Mapping[str, Any]) -> BroadcastSnapshot:
        return snapshot_from_rows(
            row,
            await store.delivery_rows(self._c.engine, int(row["id"])),
            self._c.inventory,
            audio_base_url=self._c.pipeline.audio_base_url,
        )


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
    per_adapter: dict[str, list[int]] = {}
    played_areas: list[str] = []
    played = failed = 0
    changed_at: datetime = row["state_changed_at"]
    started: list[datetime] = []
    for d in delivery_rows:
        status = DeliveryStatus(d["status"])
        ref = inventory.terminal(str(d["terminal_code"]))
        counts = per_adapter.setdefault(ref.adapter if ref is not None else "unknown", [0, 0, 0])
        counts[0] += 1
        if status is DeliveryStatus.PLAYED:
            played += 1
            counts[1] += 1
            played_areas.append(str(d["area_code"]))
        elif status in _NOT_PLAYED:
            failed += 1
            counts[2] += 1
        if d["updated_at"] is not None and d["updated_at"] > changed_at:
            changed_at = d["updated_at"]
        began = d["playing_at"] or d["played_at"]
        if began is not None:
            started.append(began)
    targets = len(delivery_rows)
    if targets and played == targets:
        covered = tuple(draft.area_codes)
    else:
        covered = tuple(sorted(set(played_areas)))
    audio_url = None
    if row.get("audio_digest"):
        audio_url = f"{audio_base_url}/audio/{row['audio_digest']}.{row['audio_format']}"
    return BroadcastSnapshot(
        ebm_id=str(row["ebm_id"]),
        state=state,
        draft=draft,
        changed_at=changed_at,
        targets=targets,
        played=played,
        failed=failed,
        covered_area_codes=covered,
        by_adapter=tuple(AdapterCount(name, c[0], c[1], c[2]) for name, c in sorted(per_adapter.items())),
        started_at=min(started) if started else None,
        finished_at=row["state_changed_at"] if state in _FINISHED else None,
        audio_url=audio_url,
    )
