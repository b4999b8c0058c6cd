"""Policy rules, table-driven: gating by source/severity, hold-off, approval, drills, dedupe, expiry,
and the Update/Cancel ordering cases (Cancel before Alert, Update before Alert, duplicates)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from broadcast.clock import ManualClock
from broadcast.model import Content, MessageDraft, MsgType, Severity, SourceKind, SourceRef
from broadcast.policy.engine import PolicyEngine
from broadcast.policy.types import (
    Action,
    HoldRule,
    OnTimeout,
    Origin,
    PolicyConfig,
    Reason,
    RecordState,
    cap_reference_keys,
)

BJ = timezone(timedelta(hours=8))
T0 = datetime(2025, 7, 12, 8, 0, tzinfo=BJ)
CMA = "12379@cma.gov.cn"
CONFIG = PolicyConfig(trusted_cap_senders=frozenset({CMA}))


def draft(
    ident: str,
    *,
    severity: Severity = Severity.RED,
    msg_type: MsgType = MsgType.ACTUAL,
    kind: SourceKind = SourceKind.CAP,
    sender: str = CMA,
    sent: datetime = T0,
    hours: float = 6,
    related: str | None = None,
) -> MessageDraft:
    return MessageDraft(
        msg_type=msg_type,
        event_type="11B03",
        severity=severity,
        sender_name="安宁市气象台",
        sender_code="",
        sent_at=sent,
        start_at=sent,
        end_at=sent + timedelta(hours=hours),
        area_codes=("530181000000",),
        contents=(Content("zho", "暴雨预警", "请注意防范"),),
        source=SourceRef(kind, sender, ident, sent.isoformat() if kind is SourceKind.CAP else ""),
        related_ebm_id=related,
    )


def ref(d: MessageDraft) -> tuple[str, ...]:
    return cap_reference_keys([(d.source.sender, d.source.identifier, d.source.sent)])


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def engine(clock: ManualClock) -> PolicyEngine:
    return PolicyEngine(CONFIG, clock)


@pytest.mark.parametrize(
    ("kind", "sender", "severity", "action", "reason"),
    [
        (SourceKind.CAP, CMA, Severity.RED, Action.AUTO, Reason.TRUSTED_SEVERE),
        (SourceKind.CAP, CMA, Severity.ORANGE, Action.AUTO, Reason.TRUSTED_SEVERE),
        (SourceKind.CAP, CMA, Severity.YELLOW, Action.HOLD, Reason.HOLD_OFF),
        (SourceKind.CAP, CMA, Severity.BLUE, Action.HOLD, Reason.HOLD_OFF),
        (SourceKind.CAP, CMA, Severity.UNKNOWN, Action.HOLD, Reason.UNTRUSTED_SOURCE),
        (SourceKind.CAP, "someone@else", Severity.RED, Action.HOLD, Reason.UNTRUSTED_SOURCE),
        (SourceKind.UPPER, "upper", Severity.ORANGE, Action.AUTO, Reason.TRUSTED_SEVERE),
        (SourceKind.UPPER, "upper", Severity.YELLOW, Action.HOLD, Reason.HOLD_OFF),
        (SourceKind.OPERATOR, "zhang", Severity.RED, Action.NEEDS_APPROVAL, Reason.OPERATOR_MESSAGE),
        (SourceKind.OPERATOR, "zhang", Severity.BLUE, Action.NEEDS_APPROVAL, Reason.OPERATOR_MESSAGE),
    ],
)
def test_gate(
    engine: PolicyEngine, kind: SourceKind, sender: str, severity: Severity, action: Action, reason: Reason
) -> None:
    d = engine.decide(draft("a", severity=severity, kind=kind, sender=sender))
    assert (d.action, d.reason) == (action, reason)
    assert d.reason_zh
    if action is Action.HOLD:
        assert d.until is not None and d.until > T0


@pytest.mark.parametrize(
    ("severity", "trusted", "outcome", "minutes"),
    [
        (Severity.YELLOW, True, Action.AUTO, 10),  # default: yellow auto-releases
        (Severity.BLUE, True, Action.REJECT, 10),  # default: blue expires
        (Severity.RED, False, Action.REJECT, 30),  # untrusted: expires after the longer window
    ],
)
def test_hold_off_window_then_configured_default(
    engine: PolicyEngine, clock: ManualClock, severity: Severity, trusted: bool, outcome: Action, minutes: int
) -> None:
    d = draft("a", severity=severity, sender=CMA if trusted else "x@y")
    assert engine.decide(d).until == T0 + timedelta(minutes=minutes)
    clock.advance(minutes * 60 - 1)
    assert engine.tick() == []
    clock.advance(1)
    [out] = engine.tick()
    assert (out.key, out.decision.action) == (d.source.key, outcome)
    assert engine.tick() == []  # decided once


def test_hold_off_is_configurable_per_severity(clock: ManualClock) -> None:
    config = replace(CONFIG, hold_off={Severity.BLUE: HoldRule(timedelta(minutes=2), OnTimeout.RELEASE)})
    engine = PolicyEngine(config, clock)
    assert engine.decide(draft("a", severity=Severity.BLUE)).on_timeout is OnTimeout.RELEASE
    clock.advance(120)
    assert [o.decision.reason for o in engine.tick()] == [Reason.HOLD_RELEASED]


def test_operator_releases_or_discards_within_window(engine: PolicyEngine, clock: ManualClock) -> None:
    a, b = draft("a", severity=Severity.YELLOW), draft("b", severity=Severity.YELLOW)
    engine.decide(a)
    engine.decide(b)
    assert engine.release(a.source.key, "wang").action is Action.AUTO
    assert engine.discard(b.source.key, "wang").reason is Reason.OPERATOR_DISCARDED
    clock.advance(3600)
    assert engine.tick() == []
    assert engine.release(a.source.key, "wang").reason is Reason.NOT_PENDING


def test_two_person_approval(engine: PolicyEngine) -> None:
    d = draft("client-1", kind=SourceKind.OPERATOR, sender="zhang")
    assert engine.decide(d).action is Action.NEEDS_APPROVAL
    same = engine.approve(d.source.key, "Zhang ")
    assert (same.action, same.reason) == (Action.NEEDS_APPROVAL, Reason.SAME_PERSON)
    assert engine.state_of(d.source.key) is RecordState.PENDING_APPROVAL
    ok = engine.approve(d.source.key, "li")
    assert (ok.action, ok.reason) == (Action.AUTO, Reason.APPROVED)
    assert engine.approve(d.source.key, "li").reason is Reason.NOT_PENDING


def test_approval_after_expiry_is_refused(engine: PolicyEngine, clock: ManualClock) -> None:
    d = draft("c", kind=SourceKind.OPERATOR, sender="zhang", hours=1)
    engine.decide(d)
    clock.advance(3600)
    assert engine.approve(d.source.key, "li").reason is Reason.EXPIRED


def test_pending_message_expires_on_tick(engine: PolicyEngine, clock: ManualClock) -> None:
    d = draft("c", kind=SourceKind.OPERATOR, sender="zhang", hours=1)
    engine.decide(d)
    clock.advance(3600)
    assert [o.decision.reason for o in engine.tick()] == [Reason.EXPIRED]


def test_drills_never_as_actual(engine: PolicyEngine) -> None:
    actual_from_exercise = engine.decide(draft("a"), (), Origin(SourceKind.CAP, CMA, exercise=True))
    assert (actual_from_exercise.action, actual_from_exercise.reason) == (
        Action.REJECT,
        Reason.DRILL_AS_ACTUAL,
    )
    drill = draft("b", msg_type=MsgType.PLATFORM_DRILL)
    assert engine.decide(drill).action is Action.AUTO  # on air, but as the drill it is
    exercise_cancel = draft("c", msg_type=MsgType.CANCEL, sent=T0 + timedelta(minutes=1))
    original = draft("d")
    engine.decide(original)
    d = engine.decide(exercise_cancel, ref(original), Origin(SourceKind.CAP, CMA, exercise=True))
    assert (d.action, d.reason) == (Action.REJECT, Reason.DRILL_CANCELS_ACTUAL)
    assert engine.state_of(original.source.key) is RecordState.LIVE


@pytest.mark.parametrize("first", ["auto", "parked"])
def test_duplicate(engine: PolicyEngine, first: str) -> None:
    d = draft("a") if first == "auto" else draft("u", msg_type=MsgType.ACTUAL)
    refs = () if first == "auto" else ref(draft("never"))
    engine.decide(d, refs)
    again = engine.decide(d, refs)
    assert (again.action, again.reason) == (Action.REJECT, Reason.DUPLICATE)


def test_expired_is_never_played(engine: PolicyEngine, clock: ManualClock) -> None:
    clock.advance(7 * 3600)
    d = engine.decide(draft("a"))
    assert (d.action, d.reason) == (Action.REJECT, Reason.EXPIRED)


def test_cancel_in_order(engine: PolicyEngine) -> None:
    alert = draft("a")
    engine.decide(alert)
    cancel = draft("c", msg_type=MsgType.CANCEL, sent=T0 + timedelta(minutes=5))
    d = engine.decide(cancel, ref(alert))
    assert (d.action, d.originals) == (Action.CANCEL_ORIGINAL, (alert.source.key,))
    again = draft("c2", msg_type=MsgType.CANCEL, sent=T0 + timedelta(minutes=6))
    assert engine.decide(again, ref(alert)).reason is Reason.ALREADY_CANCELLED


def test_cancel_without_reference_and_from_foreign_sender(engine: PolicyEngine) -> None:
    alert = draft("a")
    engine.decide(alert)
    bare = engine.decide(draft("c", msg_type=MsgType.CANCEL))
    assert (bare.action, bare.reason) == (Action.REJECT, Reason.CANCEL_WITHOUT_REFERENCE)
    foreign = engine.decide(draft("f", msg_type=MsgType.CANCEL, sender="evil@x"), ref(alert))
    assert (foreign.action, foreign.reason) == (Action.REJECT, Reason.FOREIGN_SENDER)
    assert engine.state_of(alert.source.key) is RecordState.LIVE


def test_cancel_before_alert_is_parked_then_alert_never_plays(engine: PolicyEngine) -> None:
    alert = draft("a")
    cancel = draft("c", msg_type=MsgType.CANCEL, sent=T0 + timedelta(minutes=5))
    parked = engine.decide(cancel, ref(alert))
    assert parked.action is Action.PARK_UNTIL_ORIGINAL and parked.until == T0 + timedelta(minutes=30)
    assert engine.parked_keys == (cancel.source.key,)
    d = engine.decide(alert)
    assert (d.action, d.reason) == (Action.REJECT, Reason.CANCELLED_BEFORE_ARRIVAL)
    [out] = engine.on_original_arrived(alert.source.key)
    assert (out.key, out.decision.action, out.decision.originals) == (
        cancel.source.key,
        Action.CANCEL_ORIGINAL,
        (),
    )
    assert not engine.parked_keys


def test_update_before_alert_supersedes_on_arrival(engine: PolicyEngine) -> None:
    alert = draft("a", severity=Severity.ORANGE)
    update = draft("u", severity=Severity.RED, sent=T0 + timedelta(minutes=10))
    assert engine.decide(update, ref(alert)).action is Action.PARK_UNTIL_ORIGINAL
    assert engine.decide(alert).reason is Reason.SUPERSEDED_BEFORE_ARRIVAL
    [out] = engine.on_original_arrived(alert.source.key)
    assert out.decision.action is Action.SUPERSEDE
    assert out.decision.then is not None and out.decision.then.action is Action.AUTO
    assert engine.state_of(update.source.key) is RecordState.LIVE


def test_update_and_cancel_before_alert_applied_in_sent_order(engine: PolicyEngine) -> None:
    alert = draft("a")
    update = draft("u", sent=T0 + timedelta(minutes=10))
    cancel = draft("c", msg_type=MsgType.CANCEL, sent=T0 + timedelta(minutes=20))
    # The Cancel (references both, as CAP producers do) arrives first, then the Update, then the Alert.
    engine.decide(cancel, ref(alert) + ref(update))
    engine.decide(update, ref(alert))
    assert engine.decide(alert).action is Action.REJECT
    outs = engine.on_original_arrived(alert.source.key)
    assert [o.key for o in outs] == [update.source.key, cancel.source.key]
    # Nothing of the chain ever plays: the Update is refused because its Cancel is already here.
    first = outs[0].decision
    assert (first.action, first.originals) == (Action.SUPERSEDE, ())
    assert first.then is not None and first.then.reason is Reason.CANCELLED_BEFORE_ARRIVAL
    assert (outs[1].decision.action, outs[1].decision.originals) == (Action.CANCEL_ORIGINAL, ())
    assert engine.state_of(update.source.key) is RecordState.CANCELLED
    assert engine.state_of(alert.source.key) is RecordState.CANCELLED


def test_late_cancel_of_update_only_still_stops_the_live_alert(engine: PolicyEngine) -> None:
    alert = draft("a")
    assert engine.decide(alert).action is Action.AUTO  # on air
    update = draft("u", sent=T0 + timedelta(minutes=10))
    cancel = draft("c", msg_type=MsgType.CANCEL, sent=T0 + timedelta(minutes=20))
    assert engine.decide(cancel, ref(update)).action is Action.PARK_UNTIL_ORIGINAL
    d = engine.decide(update, ref(alert))
    assert (d.action, d.originals) == (Action.SUPERSEDE, (alert.source.key,))
    assert d.then is not None and d.then.action is Action.REJECT
    [out] = engine.on_original_arrived(update.source.key)
    assert out.decision.action is Action.CANCEL_ORIGINAL


def test_update_supersedes_and_cancel_stops_the_chain(engine: PolicyEngine) -> None:
    alert = draft("a", severity=Severity.ORANGE)
    engine.decide(alert)
    update = draft("u", sent=T0 + timedelta(minutes=10))
    d = engine.decide(update, ref(alert))
    assert (d.action, d.originals) == (Action.SUPERSEDE, (alert.source.key,))
    assert engine.state_of(alert.source.key) is RecordState.SUPERSEDED
    cancel = draft("c", msg_type=MsgType.CANCEL, sent=T0 + timedelta(minutes=20))
    c = engine.decide(cancel, ref(alert))  # references only the first message
    assert (c.action, c.originals) == (Action.CANCEL_ORIGINAL, (update.source.key,))


def test_update_of_cancelled_is_refused(engine: PolicyEngine) -> None:
    alert = draft("a")
    engine.decide(alert)
    engine.decide(draft("c", msg_type=MsgType.CANCEL, sent=T0 + timedelta(minutes=5)), ref(alert))
    d = engine.decide(draft("u", sent=T0 + timedelta(minutes=10)), ref(alert))
    assert (d.action, d.reason) == (Action.REJECT, Reason.UPDATE_OF_CANCELLED)
    assert "已被取消" in d.reason_zh


@pytest.mark.parametrize(
    ("msg_type", "hours", "action", "reason"),
    [
        (MsgType.CANCEL, 6, Action.REJECT, Reason.ORIGINAL_NEVER_ARRIVED),
        (MsgType.ACTUAL, 6, Action.AUTO, Reason.TRUSTED_SEVERE),  # an orphan Update is not lost
        (MsgType.ACTUAL, 0.4, Action.REJECT, Reason.EXPIRED),
    ],
)
def test_parked_timeout(
    engine: PolicyEngine, clock: ManualClock, msg_type: MsgType, hours: float, action: Action, reason: Reason
) -> None:
    d = draft("x", msg_type=msg_type, hours=hours)
    engine.decide(d, ref(draft("never")))
    clock.advance(29 * 60)
    assert engine.tick() == []
    clock.advance(60)
    [out] = engine.tick()
    assert (out.key, out.decision.action, out.decision.reason) == (d.source.key, action, reason)
    assert engine.parked_keys == ()


def test_operator_cancel_by_ebm_id(engine: PolicyEngine) -> None:
    original = draft("client-1", kind=SourceKind.OPERATOR, sender="zhang")
    engine.decide(original)
    engine.approve(original.source.key, "li")
    ebm = "1" * 35
    engine.link_ebm(original.source.key, ebm)
    cancel = draft("client-2", kind=SourceKind.OPERATOR, sender="li", msg_type=MsgType.CANCEL, related=ebm)
    d = engine.decide(cancel)
    assert (d.action, d.originals) == (Action.CANCEL_ORIGINAL, (original.source.key,))
