"""Policy (播发策略): decides what happens to each incoming message before it goes on air.

Owns the decision rules and the small in-memory state they need (which messages are known, held,
awaiting approval or parked). Pure: never does I/O, never broadcasts, never sleeps; time comes from the
injected clock and is only read, never waited on. The caller acts on each `Decision` and reports back.

Rules, in the order `PolicyEngine.decide` applies them:
1. dedupe: a source key already known (or parked) → REJECT ``duplicate``;
2. drills never as actual: a message from an Exercise/Test source whose type is ACTUAL → REJECT;
3. Cancel: needs references; original unknown → PARK_UNTIL_ORIGINAL (until ``park_timeout``); known →
   CANCEL_ORIGINAL naming every live message of the original's chain (the original and whatever
   superseded it); a CAP Cancel from another sender, a drill Cancel of an actual message, or a Cancel of
   something already cancelled → REJECT;
4. expiry: end time passed → REJECT ``expired`` (never played);
5. Update (references present): original unknown → PARK_UNTIL_ORIGINAL; original cancelled → REJECT
   ``update_of_cancelled``; else SUPERSEDE (the originals stop) and ``then`` is the gate below;
6. gate: operator messages → NEEDS_APPROVAL (the approver must differ from the composer); trusted
   automated sources (CAP from a configured sender, the upper platform, the schedule) with a severity
   in ``auto_severities`` (red/orange) → AUTO; everything else → HOLD for ``hold_off[severity].window``,
   after which ``hold_off[severity].on_timeout`` applies (RELEASE: on air without an operator; EXPIRE:
   dropped). Untrusted CAP senders and unknown severities use ``untrusted_hold`` (EXPIRE by default:
   a machine we do not trust never goes on air alone).

Ordering: an Update/Cancel that arrives before its original is parked, never lost and never applied
early. When the original arrives it is itself refused if a parked Cancel already cancels it (or a
parked Update already supersedes it) — it must not play even briefly — and `on_original_arrived` then
returns the parked messages re-decided in ``sent`` order. A parked message whose original never comes
is released by `tick` after ``park_timeout``: an Update goes through the gate as a new message (a real
warning is never dropped), a Cancel is refused ``original_never_arrived``.

Acting on a SUPERSEDE: stop ``originals`` when the new message goes on air (at once when ``then`` is
AUTO; on release/approval otherwise), so a held upgrade leaves no silent gap.
Operator actions (`release`, `discard`, `approve`) and `tick` return new Decisions; `link_ebm` lets an
operator Cancel by ``related_ebm_id`` find its original.

The configuration and decision types (`PolicyConfig`, `Decision`, `Action`, `Reason`, …) live in
`broadcast.policy.types`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from broadcast.clock import Clock
from broadcast.model import MessageDraft, MsgType, SourceKind
from broadcast.policy.types import (
    Action,
    Decision,
    HoldRule,
    OnTimeout,
    Origin,
    Outcome,
    PolicyConfig,
    Reason,
    RecordState,
    ebm_reference_key,
)


@dataclass
class _Record:
    draft: MessageDraft
    origin: Origin
    state: RecordState
    hold: Decision | None = None
    superseded_by: list[str] = field(default_factory=list)


@dataclass
class _Parked:
    seq: int
    draft: MessageDraft
    references: tuple[str, ...]
    origin: Origin
    until: datetime



def _d(
    action: Action,
    reason: Reason,
    zh: str,
    *,
    until: datetime | None = None,
    on_timeout: OnTimeout | None = None,
    originals: tuple[str, ...] = (),
    then: Decision | None = None,
) -> Decision:
    return Decision(action, reason, zh, until, on_timeout, originals, then)


class PolicyEngine:
    def __init__(self, config: PolicyConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._records: dict[str, _Record] = {}
        self._aliases: dict[str, str] = {}
        self._parked: dict[str, _Parked] = {}
        self._seq = 0

    # --- queries ------------------------------------------------------------------------------

    def state_of(self, key: str) -> RecordState | None:
        rec = self._records.get(self._aliases.get(key, key))
        return rec.state if rec else None

    @property
    def parked_keys(self) -> tuple[str, ...]:
        return tuple(self._parked)

    # --- the rules ----------------------------------------------------------------------------

    def decide(
        self, draft: MessageDraft, references: Sequence[str] = (), source: Origin | None = None
    ) -> Decision:
        """Decide one new message. ``references`` are source keys (`cap_reference_keys`); an operator
        message's ``related_ebm_id`` is added as `ebm_reference_key` automatically."""
        origin = source or Origin.of(draft)
        if draft.msg_type.is_drill and not origin.exercise:
            origin = replace(origin, exercise=True)
        refs = tuple(references)
        if draft.related_ebm_id:
            refs += (ebm_reference_key(draft.related_ebm_id),)
        key = draft.source.key
        if key in self._records or key in self._parked:
            return _d(Action.REJECT, Reason.DUPLICATE, "重复消息：同一来源的该条预警已处理过，不再重复播发")
        if origin.exercise and draft.msg_type is MsgType.ACTUAL:
            return _d(
                Action.REJECT, Reason.DRILL_AS_ACTUAL, "演练/测试消息不能按实际播发；请发布单位核对消息状态"
            )
        if draft.msg_type is MsgType.CANCEL:
            return self._cancel(key, draft, refs, origin)
        if draft.end_at <= self._clock.now():
            return _d(Action.REJECT, Reason.EXPIRED, f"消息已于 {draft.end_at.isoformat()} 过期，不再播发")
        if refs:
            return self._update(key, draft, refs, origin)
        early = self._settled_before_arrival(key, origin)
        if early is not None:
            self._records[key] = _Record(draft, origin, early[0])
            return early[1]
        return self._admit(key, draft, origin)

    def _known(self, refs: Sequence[str]) -> list[str]:
        return [self._aliases.get(r, r) for r in refs if self._aliases.get(r, r) in self._records]

    def _park(self, key: str, draft: MessageDraft, refs: tuple[str, ...], origin: Origin) -> Decision:
        until = self._clock.now() + self.config.park_timeout
        self._seq += 1
        self._parked[key] = _Parked(self._seq, draft, refs, origin, until)
        what = "取消" if draft.msg_type is MsgType.CANCEL else "更新"
        return _d(
            Action.PARK_UNTIL_ORIGINAL,
            Reason.ORIGINAL_NOT_YET_ARRIVED,
            f"{what}消息先于原预警到达，暂存等待原预警（最迟至 {until.isoformat()}）",
            until=until,
        )

    def _chain(self, key: str) -> list[str]:
        """The original and, transitively, every message that superseded it."""
        out: list[str] = []
        todo = [key]
        while todo:
            k = todo.pop(0)
            if k in out or k not in self._records:
                continue
            out.append(k)
            todo.extend(self._records[k].superseded_by)
        return out

    def _cancel_refusal(self, originals: list[str], origin: Origin) -> Decision | None:
        for okey in originals:
            rec = self._records[okey]
            if (
                origin.kind is SourceKind.CAP
                and rec.origin.kind is SourceKind.CAP
                and rec.origin.sender != origin.sender
            ):
                return _d(
                    Action.REJECT,
                    Reason.FOREIGN_SENDER,
                    f"取消消息的发布单位（{origin.sender}）与原预警（{rec.origin.sender}）不同，不能取消他人的预警",
                )
            if origin.exercise and not rec.draft.msg_type.is_drill:
                return _d(Action.REJECT, Reason.DRILL_CANCELS_ACTUAL, "演练/测试的取消消息不能取消实际预警")
        return None

    def _cancel(self, key: str, draft: MessageDraft, refs: tuple[str, ...], origin: Origin) -> Decision:
        if not refs:
            return _d(
                Action.REJECT,
                Reason.CANCEL_WITHOUT_REFERENCE,
                "取消消息没有指明要取消的原预警（references/related_ebm_id），请人工处理",
            )
        originals = self._known(refs)
        if not originals:
            return self._park(key, draft, refs, origin)
        refusal = self._cancel_refusal(originals, origin)
        if refusal is not None:
            return refusal
        live = [
            k
            for o in originals
            for k in self._chain(o)
            if self._records[k].state
            not in (RecordState.CANCELLED, RecordState.REFUSED, RecordState.SUPERSEDED)
        ]
        if not live and all(self._records[o].state is RecordState.CANCELLED for o in originals):
            return _d(Action.REJECT, Reason.ALREADY_CANCELLED, "原预警已被取消，无需再次取消")
        for o in originals:
            for k in self._chain(o):
                self._records[k].state = RecordState.CANCELLED
        self._records[key] = _Record(draft, origin, RecordState.LIVE)
        return _d(Action.CANCEL_ORIGINAL, Reason.CANCELS, "取消原预警，停止其播发", originals=tuple(live))

    def _update(self, key: str, draft: MessageDraft, refs: tuple[str, ...], origin: Origin) -> Decision:
        originals = self._known(refs)
        if not originals:
            return self._park(key, draft, refs, origin)
        for o in originals:
            if self._records[o].state is RecordState.CANCELLED:
                return _d(
                    Action.REJECT,
                    Reason.UPDATE_OF_CANCELLED,
                    "更新消息引用的原预警已被取消，不能更新已取消的预警；如仍需播发请发布新的预警",
                )
        live = [
            o
            for o in originals
            if self._records[o].state in (RecordState.LIVE, RecordState.HELD, RecordState.PENDING_APPROVAL)
        ]
        for o in originals:
            self._records[o].superseded_by.append(key)
            if self._records[o].state is not RecordState.REFUSED:
                self._records[o].state = RecordState.SUPERSEDED
        early = self._settled_before_arrival(key, origin, (key, *originals))
        if early is not None:
            self._records[key] = _Record(draft, origin, early[0])
            then = early[1]
        else:
            then = self._admit(key, draft, origin)
        return _d(Action.SUPERSEDE, Reason.SUPERSEDES, "更新消息取代原预警", originals=tuple(live), then=then)

    def _settled_before_arrival(
        self, key: str, origin: Origin, cancel_scope: Sequence[str] = ()
    ) -> tuple[RecordState, Decision] | None:
        """A message whose Cancel (of it or of what it updates) or Update is already parked never plays."""
        scope = set(cancel_scope) | {key}
        cancels = [p for p in self._parked.values() if p.draft.msg_type is MsgType.CANCEL]
        if any(scope.intersection(p.references) and self._would_cancel(p, origin) for p in cancels):
            return RecordState.REFUSED, _d(
                Action.REJECT, Reason.CANCELLED_BEFORE_ARRIVAL, "该预警到达前已收到其取消消息，不再播发"
            )
        updates = [p for p in self._parked.values() if p.draft.msg_type is not MsgType.CANCEL]
        if any(key in p.references for p in updates):
            return RecordState.SUPERSEDED, _d(
                Action.REJECT,
                Reason.SUPERSEDED_BEFORE_ARRIVAL,
                "该预警到达前已收到其更新消息，改播更新后的内容",
            )
        return None

    @staticmethod
    def _would_cancel(parked: _Parked, original: Origin) -> bool:
        o = parked.origin
        if o.kind is SourceKind.CAP and original.kind is SourceKind.CAP and o.sender != original.sender:
            return False
        return not (o.exercise and not original.exercise)

    def _gate(self, draft: MessageDraft, origin: Origin) -> Decision:
        now = self._clock.now()
        if origin.kind is SourceKind.OPERATOR:
            if self.config.two_person_approval:
                return _d(
                    Action.NEEDS_APPROVAL,
                    Reason.OPERATOR_MESSAGE,
                    f"操作员 {origin.sender} 编写的消息需由另一名操作员审核后播发",
                )
            return _d(Action.AUTO, Reason.OPERATOR_MESSAGE, "操作员消息（未启用双人审核），直接播发")
        trusted = (
            (origin.kind is SourceKind.CAP and origin.sender in self.config.trusted_cap_senders)
            or (origin.kind is SourceKind.UPPER and self.config.trust_upper)
            or origin.kind is SourceKind.SCHEDULE
        )
        by_event = self.config.event_rule(draft.event_type) if trusted else None
        if by_event == "auto":
            return _d(
                Action.AUTO, Reason.TRUSTED_SEVERE, f"可信来源的 {draft.event_type} 类事件按配置自动播发"
            )
        if trusted and by_event is None and draft.severity in self.config.auto_severities:
            return _d(
                Action.AUTO, Reason.TRUSTED_SEVERE, f"可信来源的{draft.severity.colour_zh}预警，自动播发"
            )
        rule = (
            (by_event if isinstance(by_event, HoldRule) else self.config.hold_off.get(draft.severity))
            if trusted
            else None
        )
        reason = Reason.HOLD_OFF
        if rule is None:
            rule, reason = self.config.untrusted_hold, Reason.UNTRUSTED_SOURCE
        until = min(now + rule.window, draft.end_at)
        then = "自动播发" if rule.on_timeout is OnTimeout.RELEASE else "作废不播"
        who = "" if trusted else f"来源 {origin.sender} 不在可信列表或级别未知，"
        return _d(
            Action.HOLD,
            reason,
            f"{who}{draft.severity.colour_zh}预警等待值班员确认，{until.isoformat()} 前无人处理则{then}",
            until=until,
            on_timeout=rule.on_timeout,
        )

    def _admit(self, key: str, draft: MessageDraft, origin: Origin) -> Decision:
        decision = self._gate(draft, origin)
        state = {
            Action.AUTO: RecordState.LIVE,
            Action.HOLD: RecordState.HELD,
            Action.NEEDS_APPROVAL: RecordState.PENDING_APPROVAL,
        }[decision.action]
        self._records[key] = _Record(draft, origin, state, hold=decision)
        return decision

    # --- restart ------------------------------------------------------------------------------

    def restore(
        self,
        key: str,
        draft: MessageDraft,
        origin: Origin,
        state: RecordState,
        *,
        hold: Decision | None = None,
        superseded_by: Sequence[str] = (),
    ) -> None:
        """Rebuild knowledge of a message decided before a restart (from the store)."""
        self._records[key] = _Record(draft, origin, state, hold=hold, superseded_by=list(superseded_by))

    def restore_parked(
        self, key: str, draft: MessageDraft, references: Sequence[str], origin: Origin, until: datetime
    ) -> None:
        self._seq += 1
        self._parked[key] = _Parked(self._seq, draft, tuple(references), origin, until)

    def mark(self, key: str, state: RecordState) -> None:
        """The outside world changed a message (e.g. an operator stopped it): keep the rules in step."""
        rec = self._records.get(self._aliases.get(key, key))
        if rec is not None:
            rec.state = state

    # --- later events -------------------------------------------------------------------------

    def on_original_arrived(self, key: str) -> list[Outcome]:
        """Re-decide, in ``sent`` order, the messages parked waiting for ``key`` (call after `decide`)."""
        if key not in self._records:
            return []
        ready = sorted(
            ((k, p) for k, p in self._parked.items() if key in p.references),
            key=lambda kp: (kp[1].draft.sent_at, kp[1].seq),
        )
        out: list[Outcome] = []
        for k, p in ready:
            del self._parked[k]
            out.append(Outcome(k, p.draft, self.decide(p.draft, p.references, p.origin)))
        return out

    def link_ebm(self, key: str, ebm_id: str) -> None:
        """Tell the policy the EBM id a message got, so a Cancel by ``related_ebm_id`` finds it."""
        self._aliases[ebm_reference_key(ebm_id)] = key

    def tick(self) -> list[Outcome]:
        """Apply what time decides: hold windows over, held messages expired, parked ones timed out."""
        now = self._clock.now()
        out: list[Outcome] = []
        for key, rec in self._records.items():
            if rec.state not in (RecordState.HELD, RecordState.PENDING_APPROVAL):
                continue
            if rec.draft.end_at <= now:
                rec.state = RecordState.REFUSED
                out.append(
                    Outcome(key, rec.draft, _d(Action.REJECT, Reason.EXPIRED, "等待期间消息已过期，不再播发"))
                )
            elif rec.state is RecordState.HELD and rec.hold and rec.hold.until and rec.hold.until <= now:
                if rec.hold.on_timeout is OnTimeout.RELEASE:
                    rec.state = RecordState.LIVE
                    d = _d(Action.AUTO, Reason.HOLD_RELEASED, "等待期内值班员未处理，按配置自动播发")
                else:
                    rec.state = RecordState.REFUSED
                    d = _d(Action.REJECT, Reason.HOLD_EXPIRED, "等待期内值班员未确认，按配置作废不播")
                out.append(Outcome(key, rec.draft, d))
        for key, p in sorted(self._parked.items(), key=lambda kp: kp[1].seq):
            if p.until > now:
                continue
            del self._parked[key]
            if p.draft.msg_type is MsgType.CANCEL:
                d = _d(
                    Action.REJECT,
                    Reason.ORIGINAL_NEVER_ARRIVED,
                    "等待超时仍未收到要取消的原预警，取消消息作废；请人工核对",
                )
            elif p.draft.end_at <= now:
                d = _d(Action.REJECT, Reason.EXPIRED, "等待原预警期间更新消息已过期，不再播发")
            else:
                gate = self._admit(key, p.draft, p.origin)
                d = Decision(
                    gate.action,
                    gate.reason,
                    "原预警未到达，更新消息按新预警处理：" + gate.reason_zh,
                    until=gate.until,
                    on_timeout=gate.on_timeout,
                )
            out.append(Outcome(key, p.draft, d))
        return out

    def release(self, key: str, operator: str) -> Decision:
        """An operator puts a held message on air now."""
        rec = self._records.get(key)
        if rec is None or rec.state is not RecordState.HELD:
            return _d(Action.REJECT, Reason.NOT_PENDING, "该消息不在等待确认状态，无法放行")
        if rec.draft.end_at <= self._clock.now():
            rec.state = RecordState.REFUSED
            return _d(Action.REJECT, Reason.EXPIRED, "消息已过期，不再播发")
        rec.state = RecordState.LIVE
        return _d(Action.AUTO, Reason.OPERATOR_RELEASED, f"值班员 {operator} 确认播发")

    def discard(self, key: str, operator: str) -> Decision:
        """An operator drops a held or pending message."""
        rec = self._records.get(key)
        if rec is None or rec.state not in (RecordState.HELD, RecordState.PENDING_APPROVAL):
            return _d(Action.REJECT, Reason.NOT_PENDING, "该消息不在等待状态，无法作废")
        rec.state = RecordState.REFUSED
        return _d(Action.REJECT, Reason.OPERATOR_DISCARDED, f"值班员 {operator} 决定不播发")

    def approve(self, key: str, approver: str) -> Decision:
        """Second-person approval of an operator message; the composer cannot approve their own."""
        rec = self._records.get(key)
        if rec is None or rec.state is not RecordState.PENDING_APPROVAL:
            return _d(Action.REJECT, Reason.NOT_PENDING, "该消息不在待审核状态，无法审核")
        if approver.strip().lower() == rec.origin.sender.strip().lower():
            return _d(
                Action.NEEDS_APPROVAL,
                Reason.SAME_PERSON,
                f"审核人不能是编写人本人（{approver}），请由另一名操作员审核",
            )
        if rec.draft.end_at <= self._clock.now():
            rec.state = RecordState.REFUSED
            return _d(Action.REJECT, Reason.EXPIRED, "消息已过期，不再播发")
        rec.state = RecordState.LIVE
        return _d(Action.AUTO, Reason.APPROVED, f"已由 {approver} 审核通过，播发")
