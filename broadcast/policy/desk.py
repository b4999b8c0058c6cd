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
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.events import BroadcastAiring
from broadcast.model import BroadcastState, MessageDraft, SourceKind, TerminalRef
from broadcast.periodic import Periodic
from broadcast.policy.engine import PolicyEngine
from broadcast.policy.records import DecisionRecord
from broadcast.policy.types import Action, Decision, OnTimeout, Origin, Outcome, Reason, RecordState
from broadcast.store import broadcasts as store
from broadcast.store.broadcasts import PolicyColumns

log = logging.getLogger(__name__)


class DeskRefusal(StrEnum):
    NOT_FOUND = "not_found"  # no such broadcast
    NOT_PENDING = "not_pending"  # not waiting for an operator (any more)
    SAME_PERSON = "same_person"  # the two-person rule: the approver composed it


class DeskError(Exception):
    """An operator action that cannot be done; ``message`` says why, in Chinese."""

    def __init__(self, kind: DeskRefusal, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Airing(Protocol):
    """The pipeline as the desk uses it: record, put on air, hold, refuse, stop."""

    async def record(
        self,
        draft: MessageDraft,
        targets: Sequence[TerminalRef] | None = None,
        *,
        actor: str = "",
        received_at: datetime | None = None,
        policy: PolicyColumns | None = None,
    ) -> Any: ...

    def air(
        self, broadcast_id: int, ebm_id: str, draft: MessageDraft, targets: Sequence[TerminalRef] | None = None
    ) -> None: ...

    async def hold(self, broadcast_id: int, *, detail: str, actor: str = "") -> None: ...

    async def refuse(self, broadcast_id: int, state: BroadcastState, *, detail: str, actor: str = "") -> None: ...

    async def stop(self, broadcast_id: int, *, actor: str = "") -> int: ...


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
    BroadcastState.RECEIVED: RecordState.LIVE,
    BroadcastState.RENDERING: RecordState.LIVE,
    BroadcastState.BROADCASTING: RecordState.LIVE,
    BroadcastState.COMPLETED: RecordState.LIVE,
    BroadcastState.CANCELLED: RecordState.CANCELLED,
    BroadcastState.REJECTED: RecordState.REFUSED,
    BroadcastState.EXPIRED: RecordState.REFUSED,
    BroadcastState.FAILED: RecordState.REFUSED,
}


class Desk:
    def __init__(
        self,
        engine: AsyncEngine,
        pipeline: Airing,
        policy: PolicyEngine,
        clock: Clock,
        *,
        tick_interval_s: float = 1.0,
    ) -> None:
        self._engine = engine
        self._pipeline = pipeline
        self._policy = policy
        self._clock = clock
        self._lock = asyncio.Lock()  # decisions are applied one at a time, in arrival order
        self._clock_rounds = Periodic("intake-desk", self.tick, every_s=tick_interval_s, retry_s=tick_interval_s)
        self._record = DecisionRecord(engine)

    # -- start / stop ----------------------------------------------------------------------------

    async def restore(self) -> None:
        """Rebuild the policy's knowledge from the store (after a restart). A message decided to wait
        for an operator just before the restart (still ``received``) goes back on hold."""
        for row in await store.all_broadcasts(self._engine):
            draft = store.record_to_draft(json.loads(row["message_json"]))
            origin = Origin(draft.source.kind, row["composer"] or draft.source.sender, bool(row["exercise"]))
            key = row["source_key"]
            state = BroadcastState(row["state"])
            waiting = row["policy_state"] in (str(RecordState.HELD), str(RecordState.PENDING_APPROVAL))
            if state is BroadcastState.PENDING_APPROVAL or (state is BroadcastState.RECEIVED and waiting):
                held = row["policy_state"] == str(RecordState.HELD)
                hold = Decision(
                    Action.HOLD if held else Action.NEEDS_APPROVAL,
                    Reason.HOLD_OFF if held else Reason.OPERATOR_MESSAGE,
                    "",
                    until=row["hold_until"],
                    on_timeout=OnTimeout(row["hold_on_timeout"]) if row["hold_on_timeout"] else None,
                )
                record = RecordState.HELD if held else RecordState.PENDING_APPROVAL
                self._policy.restore(key, draft, origin, record, hold=hold)
                if state is BroadcastState.RECEIVED:
                    await self._pipeline.hold(int(row["id"]), detail="重启后恢复等待状态")
            else:
                record = _RESTORED_STATE[state]
                if row["policy_state"] == str(RecordState.SUPERSEDED):
                    record = RecordState.SUPERSEDED
                self._policy.restore(key, draft, origin, record)
            self._policy.link_ebm(key, row["ebm_id"])
        for p in await self._record.parked():
            self._policy.restore_parked(p.source_key, p.draft, p.references, Origin.of(p.draft), p.until)

    async def start(self) -> None:
        """Apply what time decides (hold windows, expiry while waiting, parked timeouts) every tick."""
        await self._clock_rounds.start()

    async def close(self) -> None:
        await self._clock_rounds.stop()

    # -- intake ---------------------------------------------------------------------------------

    async def take(
        self,
        draft: MessageDraft,
        *,
        targets: Sequence[TerminalRef] | None = None,
        references: Sequence[str] = (),
        origin: Origin | None = None,
        actor: str = "",
        received_at: datetime | None = None,
    ) -> Taken:
        """Decide one incoming message and act on the decision. ``targets``: as the intake resolved
        them (None: the pipeline resolves them when the message is recorded)."""
        origin = origin or Origin.of(draft)
        async with self._lock:
            decision = self._policy.decide(draft, references, origin)
            if decision.reason is Reason.DUPLICATE:
                rows = await store.find_by_source_keys(self._engine, [draft.source.key])
                if rows:
                    await self._note(draft.source.key, decision, actor, int(rows[0]["id"]))
                    return Taken(decision, int(rows[0]["id"]), str(rows[0]["ebm_id"]), duplicate=True)
            taken = await self._act(draft, decision, origin, actor, received_at, references, targets=targets)
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
        *,
        targets: Sequence[TerminalRef] | None = None,
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
            await self._note(key, decision, actor, None, parked=draft, references=references)
            return Taken(decision)
        if decision.action is Action.CANCEL_ORIGINAL:
            stopped = await self._stop_keys(decision.originals, actor, decision.reason_zh)
            await self._note(key, decision, actor, None)
            return Taken(decision, stopped=stopped)
        gate = decision.then if decision.action is Action.SUPERSEDE and decision.then else decision
        supersedes = decision.originals if decision.action is Action.SUPERSEDE else ()
        ebm: str | None = None
        count = 0
        recorded_targets: Sequence[TerminalRef] | None = None
        if broadcast_id is None:
            rec = await self._pipeline.record(
                draft,
                targets,
                actor=actor,
                received_at=received_at,
                policy=PolicyColumns(
                    policy_state=str(_STATE_OF_ACTION[gate.action]),
                    hold_until=gate.until,
                    hold_on_timeout=str(gate.on_timeout) if gate.on_timeout else None,
                    composer=origin.sender if origin.kind is SourceKind.OPERATOR else "",
                    supersedes=tuple(supersedes),
                    exercise=origin.exercise,
                ),
            )
            broadcast_id, ebm, recorded_targets = rec.broadcast_id, rec.ebm_id, rec.targets
            count = len(rec.targets)
            self._policy.link_ebm(key, ebm)
        else:
            row = await store.get_broadcast(self._engine, broadcast_id)
            assert row is not None
            ebm = str(row["ebm_id"])
            await store.set_policy_state(self._engine, broadcast_id, str(_STATE_OF_ACTION[gate.action]))
        await self._note(key, decision, actor, broadcast_id)
        if gate.action is Action.AUTO:
            self._pipeline.air(broadcast_id, ebm, draft, recorded_targets)
        else:
            row = await store.get_broadcast(self._engine, broadcast_id)
            if row is not None and row["state"] != str(BroadcastState.PENDING_APPROVAL):
                await self._pipeline.hold(broadcast_id, detail=gate.reason_zh, actor=actor)
        return Taken(decision, broadcast_id, ebm, count)

    async def on_airing(self, event: BroadcastAiring) -> None:
        """A broadcast starts going out: stop what it supersedes (no silent gap, no overlap)."""
        row = await store.get_broadcast(self._engine, event.broadcast_id)
        if row is None or not row["supersedes"]:
            return
        keys = json.loads(row["supersedes"])
        if keys:
            await self._stop_keys(keys, "policy", f"已被播发 {event.broadcast_id} 更新替换", superseded=True)

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
                await store.set_policy_state(self._engine, bid, str(RecordState.SUPERSEDED))
            stopped.append(bid)
        return tuple(stopped)

    async def _apply_outcome(self, outcome: Outcome, actor: str) -> None:
        rows = await store.find_by_source_keys(self._engine, [outcome.key])
        bid = int(rows[0]["id"]) if rows else None
        origin = Origin.of(outcome.draft)
        await self._record.close_parked(outcome.key)
        await self._act(outcome.draft, outcome.decision, origin, actor or "policy", None, (), bid)

    async def tick(self) -> list[Outcome]:
        """Apply what time decides (hold windows, expiry while waiting, parked timeouts)."""
        async with self._lock:
            outcomes = self._policy.tick()
            for outcome in outcomes:
                await self._apply_outcome(outcome, "policy")
            return outcomes

    # -- operator actions ------------------------------------------------------------------------

    async def _row(self, broadcast_id: int) -> dict[str, Any]:
        row = await store.get_broadcast(self._engine, broadcast_id)
        if row is None:
            raise DeskError(DeskRefusal.NOT_FOUND, f"播发 {broadcast_id} 不存在")
        return row

    async def _operator(self, broadcast_id: int, actor: str, verb: str) -> Taken:
        async with self._lock:
            row = await self._row(broadcast_id)
            if row["state"] != str(BroadcastState.PENDING_APPROVAL):
                raise DeskError(
                    DeskRefusal.NOT_PENDING,
                    f"播发 {broadcast_id} 当前状态为 {row['state']}，不在待审核/待确认状态",
                )
            key = row["source_key"]
            if verb == "approve":
                decision = self._policy.approve(key, actor)
            elif verb == "release":
                decision = self._policy.release(key, actor)
            else:
                decision = self._policy.discard(key, actor)
            if decision.reason is Reason.SAME_PERSON:
                await self._note(key, decision, actor, broadcast_id)
                raise DeskError(DeskRefusal.SAME_PERSON, decision.reason_zh)
            if decision.reason is Reason.NOT_PENDING:
                raise DeskError(DeskRefusal.NOT_PENDING, decision.reason_zh)
            draft = store.record_to_draft(json.loads(row["message_json"]))
            return await self._act(draft, decision, Origin.of(draft), actor, None, (), broadcast_id)

    async def approve(self, broadcast_id: int, approver: str) -> Taken:
        return await self._operator(broadcast_id, approver, "approve")

    async def release(self, broadcast_id: int, operator: str) -> Taken:
        return await self._operator(broadcast_id, operator, "release")

    async def reject(self, broadcast_id: int, operator: str) -> Taken:
        return await self._operator(broadcast_id, operator, "discard")

    async def stop(self, broadcast_id: int, operator: str, *, reason_zh: str | None = None) -> int:
        """Stop a broadcast (an operator, or an upper platform's cancel): the policy record becomes
        cancelled, so nothing in its chain goes on air again, and the decision is recorded."""
        async with self._lock:
            row = await self._row(broadcast_id)
            sent = await self._pipeline.stop(broadcast_id, actor=operator)
            self._policy.mark(row["source_key"], RecordState.CANCELLED)
            await self._note(
                row["source_key"],
                Decision(Action.CANCEL_ORIGINAL, Reason.CANCELS, reason_zh or f"值班员 {operator} 停止播发"),
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
        parked: MessageDraft | None = None,
        references: Sequence[str] = (),
    ) -> None:
        await self._record.note(
            key, decision, actor, broadcast_id, self._clock.now(), parked=parked, references=references
        )
        log.info("intake %s: %s (%s) %s", key, decision.action, decision.reason, decision.reason_zh)

    async def decisions(
        self, *, broadcast_id: int | None = None, source_key: str | None = None
    ) -> list[dict[str, Any]]:
        if broadcast_id is not None:
            row = await store.get_broadcast(self._engine, broadcast_id)
            keys = [row["source_key"]] if row else []
            return await self._record.decisions(broadcast_id=broadcast_id, source_keys=keys)
        return await self._record.decisions(source_keys=[source_key] if source_key is not None else [])

    async def pending(self) -> list[dict[str, Any]]:
        return await store.broadcasts_in_state(self._engine, BroadcastState.PENDING_APPROVAL)
