"""The intake desk (值班台): applies the policy's decisions to stored broadcasts, records every decision,
and carries the operator actions (approve, reject, release, stop).

Between the intake formats (CAP, JSON, upper-platform EBM) and the pipeline. Owns the decision record
(``intake_decisions``) and the policy state's persistence: after a restart the policy is rebuilt from
the store, so a held message keeps its deadline, a parked Cancel still waits for its Alert, and a
duplicate is still a duplicate. Never parses input formats and never talks to adapters.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.model import BroadcastState, MessageDraft, SourceKind
from broadcast.pipeline.pipeline import Pipeline
from broadcast.policy.engine import PolicyEngine
from broadcast.policy.types import Action, Decision, OnTimeout, Origin, Outcome, Reason, RecordState
from broadcast.store import broadcasts as store
from broadcast.store.tables import intake_decisions

log = logging.getLogger(__name__)


class DeskError(Exception):
    """An operator action that cannot be done; ``message`` says why, in Chinese."""

    def __init__(self, message: str, *, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Taken:
    """What became of one incoming message."""

    decision: Decision
    broadcast_id: int | None = None
    ebm_id: str | None = None
    targets: int = 0
    stopped: tuple[int, ...] = ()
    duplicate: bool = False
    later: tuple[Outcome, ...] = field(default=())


_STATE_OF_ACTION = {
    Action.AUTO: RecordState.LIVE,
    Action.HOLD: RecordState.HELD,
    Action.NEEDS_APPROVAL: RecordState.PENDING_APPROVAL,
}

_RESTORED_STATE = {
    str(BroadcastState.RECEIVED): RecordState.LIVE,
    str(BroadcastState.RENDERING): RecordState.LIVE,
    str(BroadcastState.BROADCASTING): RecordState.LIVE,
    str(BroadcastState.COMPLETED): RecordState.LIVE,
    str(BroadcastState.CANCELLED): RecordState.CANCELLED,
    str(BroadcastState.REJECTED): RecordState.REFUSED,
    str(BroadcastState.EXPIRED): RecordState.REFUSED,
    str(BroadcastState.FAILED): RecordState.REFUSED,
}


class Desk:
    def __init__(
        self,
        engine: AsyncEngine,
        pipeline: Pipeline,
        policy: PolicyEngine,
        clock: Clock,
        *,
        tick_interval_s: float = 1.0,
    ) -> None:
        self._engine = engine
        self._pipeline = pipeline
        self._policy = policy
        self._clock = clock
        self._interval = tick_interval_s
        self._lock = asyncio.Lock()  # decisions are applied one at a time, in arrival order
        self._task: asyncio.Task[None] | None = None
        pipeline.on_air = self._on_air

    # -- start / stop ----------------------------------------------------------------------------

    async def restore(self) -> None:
        """Rebuild the policy's knowledge from the store (after a restart)."""
        for row in await store.all_broadcasts(self._engine):
            draft = store.record_to_draft(json.loads(row["message_json"]))
            origin = Origin(draft.source.kind, row["composer"] or draft.source.sender, bool(row["exercise"]))
            key = row["source_key"]
            if row["state"] == str(BroadcastState.PENDING_APPROVAL):
                held = row["policy_state"] == str(RecordState.HELD)
                hold = Decision(
                    Action.HOLD if held else Action.NEEDS_APPROVAL,
                    Reason.HOLD_OFF if held else Reason.OPERATOR_MESSAGE,
                    "",
                    until=row["hold_until"],
                    on_timeout=OnTimeout(row["hold_on_timeout"]) if row["hold_on_timeout"] else None,
                )
                state = RecordState.HELD if held else RecordState.PENDING_APPROVAL
                self._policy.restore(key, draft, origin, state, hold=hold)
            else:
                state = _RESTORED_STATE[row["state"]]
                if row["policy_state"] == str(RecordState.SUPERSEDED):
                    state = RecordState.SUPERSEDED
                self._policy.restore(key, draft, origin, state)
            self._policy.link_ebm(key, row["ebm_id"])
        async with self._engine.connect() as conn:
            parked = await conn.execute(select(intake_decisions).where(intake_decisions.c.open == 1))
            for p in parked:
                draft = store.record_to_draft(json.loads(p.message_json))
                self._policy.restore_parked(
                    p.source_key, draft, json.loads(p.references), Origin.of(draft), p.until
                )

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="intake-desk")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.tick()
            except Exception:
                log.exception("intake desk tick failed; will retry")

    # -- intake ---------------------------------------------------------------------------------

    async def take(
        self,
        draft: MessageDraft,
        *,
        references: Sequence[str] = (),
        origin: Origin | None = None,
        actor: str = "",
        received_at: datetime | None = None,
    ) -> Taken:
        """Decide one incoming message and act on the decision."""
        origin = origin or Origin.of(draft)
        async with self._lock:
            decision = self._policy.decide(draft, references, origin)
            if decision.reason is Reason.DUPLICATE:
                rows = await store.find_by_source_keys(self._engine, [draft.source.key])
                if rows:
                    await self._note(draft.source.key, decision, actor, int(rows[0]["id"]))
                    return Taken(decision, int(rows[0]["id"]), str(rows[0]["ebm_id"]), duplicate=True)
            taken = await self._act(draft, decision, origin, actor, received_at, references)
            if decision.action is Action.PARK_UNTIL_ORIGINAL or decision.reason is Reason.DUPLICATE:
                return taken
            # The original has arrived: what waited for it is decided now, in sent order.
            later = self._policy.on_original_arrived(draft.source.key)
            for outcome in later:
                await self._apply_outcome(outcome, actor)
            return replace(taken, later=tuple(later))

    async def _act(
        self,
        draft: MessageDraft,
        decision: Decision,
        origin: Origin,
        actor: str,
        received_at: datetime | None,
        references: Sequence[str],
        broadcast_id: int | None = None,
    ) -> Taken:
        key = draft.source.key
        if decision.action is Action.REJECT:
            if broadcast_id is not None:
                state = (
                    BroadcastState.EXPIRED if decision.reason is Reason.EXPIRED else BroadcastState.REJECTED
                )
                await self._pipeline.refuse(broadcast_id, state, detail=decision.reason_zh, actor=actor)
            await self._note(key, decision, actor, broadcast_id)
            return Taken(decision, broadcast_id)
        if decision.action is Action.PARK_UNTIL_ORIGINAL:
            await self._note(key, decision, actor, None, draft=draft, references=references)
            return Taken(decision)
        if decision.action is Action.CANCEL_ORIGINAL:
            stopped = await self._stop_keys(decision.originals, actor, decision.reason_zh)
            await self._note(key, decision, actor, None)
            return Taken(decision, stopped=stopped)
        gate = decision.then if decision.action is Action.SUPERSEDE and decision.then else decision
        supersedes = decision.originals if decision.action is Action.SUPERSEDE else ()
        ebm: str | None = None
        targets = 0
        if broadcast_id is None:
            sub = await self._pipeline.record(
                draft,
                actor=actor,
                received_at=received_at,
                policy={
                    "policy_state": str(_STATE_OF_ACTION[gate.action]),
                    "hold_until": gate.until,
                    "hold_on_timeout": str(gate.on_timeout) if gate.on_timeout else None,
                    "composer": origin.sender if origin.kind is SourceKind.OPERATOR else "",
                    "supersedes": json.dumps(list(supersedes), ensure_ascii=False),
                    "exercise": int(origin.exercise),
                },
            )
            broadcast_id, ebm, targets = sub.broadcast_id, sub.ebm_id, sub.targets
            self._policy.link_ebm(key, ebm)
        else:
            row = await store.get_broadcast(self._engine, broadcast_id)
            assert row is not None
            ebm = str(row["ebm_id"])
            await store.update_policy(
                self._engine, broadcast_id, policy_state=str(_STATE_OF_ACTION[gate.action])
            )
        await self._note(key, decision, actor, broadcast_id)
        if gate.action is Action.AUTO:
            self._pipeline.air(broadcast_id, ebm, draft)
        else:
            row = await store.get_broadcast(self._engine, broadcast_id)
            if row is not None and row["state"] != str(BroadcastState.PENDING_APPROVAL):
                await self._pipeline.hold(broadcast_id, detail=gate.reason_zh, actor=actor)
        return Taken(decision, broadcast_id, ebm, targets)

    async def _on_air(self, broadcast_id: int) -> None:
        """A broadcast starts going out: stop what it supersedes (no silent gap, no overlap)."""
        row = await store.get_broadcast(self._engine, broadcast_id)
        if row is None or not row["supersedes"]:
            return
        keys = json.loads(row["supersedes"])
        if keys:
            await self._stop_keys(keys, "policy", f"已被播发 {broadcast_id} 更新替换", superseded=True)

    async def _stop_keys(
        self, keys: Sequence[str], actor: str, detail: str, *, superseded: bool = False
    ) -> tuple[int, ...]:
        stopped: list[int] = []
        for row in await store.find_by_source_keys(self._engine, list(keys)):
            bid = int(row["id"])
            if row["state"] in (str(BroadcastState.CANCELLED), str(BroadcastState.REJECTED)):
                continue
            if row["state"] == str(BroadcastState.PENDING_APPROVAL):
                await self._pipeline.refuse(bid, BroadcastState.CANCELLED, detail=detail, actor=actor)
            else:
                await self._pipeline.stop(bid, actor=actor)
            if superseded:
                await store.update_policy(self._engine, bid, policy_state=str(RecordState.SUPERSEDED))
            stopped.append(bid)
        return tuple(stopped)

    async def _apply_outcome(self, outcome: Outcome, actor: str) -> None:
        rows = await store.find_by_source_keys(self._engine, [outcome.key])
        bid = int(rows[0]["id"]) if rows else None
        origin = Origin.of(outcome.draft)
        await self._close_parked(outcome.key)
        await self._act(outcome.draft, outcome.decision, origin, actor or "policy", None, (), bid)

    async def tick(self) -> list[Outcome]:
        """Apply what time decides (hold windows, expiry while waiting, parked timeouts)."""
        async with self._lock:
            outcomes = self._policy.tick()
            for outcome in outcomes:
                await self._apply_outcome(outcome, "policy")
            return outcomes

    # -- operator actions ------------------------------------------------------------------------

    async def _pending_row(self, broadcast_id: int) -> dict[str, Any]:
        row = await store.get_broadcast(self._engine, broadcast_id)
        if row is None:
            raise DeskError(f"播发 {broadcast_id} 不存在", status=404)
        if row["state"] != str(BroadcastState.PENDING_APPROVAL):
            raise DeskError(f"播发 {broadcast_id} 当前状态为 {row['state']}，不在待审核/待确认状态")
        return row

    async def _operator(self, broadcast_id: int, actor: str, verb: str) -> Taken:
        async with self._lock:
            row = await self._pending_row(broadcast_id)
            key = row["source_key"]
            if verb == "approve":
                decision = self._policy.approve(key, actor)
            elif verb == "release":
                decision = self._policy.release(key, actor)
            else:
                decision = self._policy.discard(key, actor)
            if decision.reason is Reason.SAME_PERSON:
                await self._note(key, decision, actor, broadcast_id)
                raise DeskError(decision.reason_zh, status=403)
            if decision.reason is Reason.NOT_PENDING:
                raise DeskError(decision.reason_zh)
            draft = store.record_to_draft(json.loads(row["message_json"]))
            return await self._act(draft, decision, Origin.of(draft), actor, None, (), broadcast_id)

    async def approve(self, broadcast_id: int, approver: str) -> Taken:
        return await self._operator(broadcast_id, approver, "approve")

    async def release(self, broadcast_id: int, operator: str) -> Taken:
        return await self._operator(broadcast_id, operator, "release")

    async def reject(self, broadcast_id: int, operator: str) -> Taken:
        return await self._operator(broadcast_id, operator, "discard")

    async def stop(self, broadcast_id: int, operator: str) -> int:
        async with self._lock:
            row = await store.get_broadcast(self._engine, broadcast_id)
            if row is None:
                raise DeskError(f"播发 {broadcast_id} 不存在", status=404)
            sent = await self._pipeline.stop(broadcast_id, actor=operator)
            self._policy.mark(row["source_key"], RecordState.CANCELLED)
            await self._note(
                row["source_key"],
                Decision(Action.CANCEL_ORIGINAL, Reason.CANCELS, f"值班员 {operator} 停止播发"),
                operator,
                broadcast_id,
            )
            return sent

    # -- the decision record ---------------------------------------------------------------------

    async def _note(
        self,
        key: str,
        decision: Decision,
        actor: str,
        broadcast_id: int | None,
        *,
        draft: MessageDraft | None = None,
        references: Sequence[str] = (),
    ) -> None:
        parked = decision.action is Action.PARK_UNTIL_ORIGINAL
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(intake_decisions).values(
                    source_key=key,
                    broadcast_id=broadcast_id,
                    action=str(decision.action),
                    reason=str(decision.reason),
                    reason_zh=decision.reason_zh,
                    actor=actor,
                    at=self._clock.now(),
                    message_json=json.dumps(store.draft_to_record(draft), ensure_ascii=False)
                    if draft
                    else None,
                    references=json.dumps(list(references), ensure_ascii=False),
                    until=decision.until,
                    open=int(parked),
                )
            )
        log.info("intake %s: %s (%s) %s", key, decision.action, decision.reason, decision.reason_zh)

    async def _close_parked(self, key: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(intake_decisions)
                .where(intake_decisions.c.source_key == key, intake_decisions.c.open == 1)
                .values(open=0)
            )

    async def decisions(
        self, *, broadcast_id: int | None = None, source_key: str | None = None
    ) -> list[dict[str, Any]]:
        stmt = select(intake_decisions).order_by(intake_decisions.c.id)
        if broadcast_id is not None:
            row = await store.get_broadcast(self._engine, broadcast_id)
            keys = [row["source_key"]] if row else []
            stmt = stmt.where(
                (intake_decisions.c.broadcast_id == broadcast_id) | intake_decisions.c.source_key.in_(keys)
            )
        elif source_key is not None:
            stmt = stmt.where(intake_decisions.c.source_key == source_key)
        async with self._engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(stmt)]

    async def pending(self) -> list[dict[str, Any]]:
        return await store.broadcasts_in_state(self._engine, BroadcastState.PENDING_APPROVAL)
