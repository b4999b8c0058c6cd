"""Policy types (播发策略的配置与决定): the configuration, the decision values and the record state the
`PolicyEngine` (`broadcast.policy.engine`) works with.

Owns `Action`, `Reason`, `OnTimeout`, `HoldRule`, `PolicyConfig`, `Origin`, `Decision`, `Outcome`,
`RecordState` and the reference-key helpers (`cap_reference_keys`, `ebm_reference_key`).

Plain values only: must never hold decision rules (those live in `broadcast.policy.engine`), do I/O, read
the clock or broadcast anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from broadcast.model import MessageDraft, Severity, SourceKind, SourceRef


class Action(StrEnum):
    AUTO = "auto"  # on air now
    HOLD = "hold"  # wait for an operator until ``until``, then the configured default
    NEEDS_APPROVAL = "needs_approval"  # a second operator must approve
    REJECT = "reject"
    PARK_UNTIL_ORIGINAL = "park_until_original"
    SUPERSEDE = "supersede"  # stop ``originals``; the new message goes as ``then`` says
    CANCEL_ORIGINAL = "cancel_original"  # stop ``originals``


class Reason(StrEnum):
    TRUSTED_SEVERE = "trusted_severe"
    HOLD_OFF = "hold_off"
    UNTRUSTED_SOURCE = "untrusted_source"
    OPERATOR_MESSAGE = "operator_message"
    DUPLICATE = "duplicate"
    DRILL_AS_ACTUAL = "drill_as_actual"
    EXPIRED = "expired"
    CANCEL_WITHOUT_REFERENCE = "cancel_without_reference"
    FOREIGN_SENDER = "foreign_sender"
    DRILL_CANCELS_ACTUAL = "drill_cancels_actual"
    ALREADY_CANCELLED = "already_cancelled"
    UPDATE_OF_CANCELLED = "update_of_cancelled"
    ORIGINAL_NOT_YET_ARRIVED = "original_not_yet_arrived"
    ORIGINAL_NEVER_ARRIVED = "original_never_arrived"
    CANCELLED_BEFORE_ARRIVAL = "cancelled_before_arrival"
    SUPERSEDED_BEFORE_ARRIVAL = "superseded_before_arrival"
    CANCELS = "cancels"
    SUPERSEDES = "supersedes"
    HOLD_RELEASED = "hold_released"
    HOLD_EXPIRED = "hold_expired"
    OPERATOR_RELEASED = "operator_released"
    OPERATOR_DISCARDED = "operator_discarded"
    APPROVED = "approved"
    SAME_PERSON = "same_person"
    NOT_PENDING = "not_pending"


class OnTimeout(StrEnum):
    RELEASE = "release"  # nobody objected within the window: on air
    EXPIRE = "expire"  # nobody confirmed within the window: dropped


@dataclass(frozen=True)
class HoldRule:
    window: timedelta
    on_timeout: OnTimeout


@dataclass(frozen=True)
class PolicyConfig:
    trusted_cap_senders: frozenset[str] = frozenset()
    trust_upper: bool = True
    auto_severities: frozenset[Severity] = frozenset({Severity.RED, Severity.ORANGE})
    hold_off: Mapping[Severity, HoldRule] = field(
        default_factory=lambda: {
            Severity.YELLOW: HoldRule(timedelta(minutes=10), OnTimeout.RELEASE),
            Severity.BLUE: HoldRule(timedelta(minutes=10), OnTimeout.EXPIRE),
        }
    )
    untrusted_hold: HoldRule = HoldRule(timedelta(minutes=30), OnTimeout.EXPIRE)
    two_person_approval: bool = True
    park_timeout: timedelta = timedelta(minutes=30)
    # Per event type (a code prefix such as "11D" for geological hazards or "11B03" rainstorm; the
    # longest matching prefix wins) for trusted sources: "auto" goes on air at once whatever the grade,
    # a HoldRule waits for an operator as configured. Severity rules apply when no prefix matches.
    event_rules: Mapping[str, HoldRule | str] = field(default_factory=dict)

    def event_rule(self, event_type: str) -> HoldRule | str | None:
        best = max((p for p in self.event_rules if event_type.startswith(p)), key=len, default=None)
        return self.event_rules[best] if best is not None else None


@dataclass(frozen=True)
class Origin:
    """Who sent a message: CAP sender / operator account (the composer) / upper platform id."""

    kind: SourceKind
    sender: str
    exercise: bool = False  # CAP status Exercise/Test, also on a Cancel

    @classmethod
    def of(cls, draft: MessageDraft, *, exercise: bool = False) -> Origin:
        return cls(draft.source.kind, draft.source.sender, exercise or draft.msg_type.is_drill)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: Reason
    reason_zh: str
    until: datetime | None = None  # HOLD: window end; PARK: park timeout
    on_timeout: OnTimeout | None = None  # HOLD only
    originals: tuple[str, ...] = ()  # SUPERSEDE / CANCEL_ORIGINAL: live source keys to stop
    then: Decision | None = None  # SUPERSEDE: how the new message itself goes


@dataclass(frozen=True)
class Outcome:
    """A message whose decision changed later (hold window over, original arrived, park timed out)."""

    key: str
    draft: MessageDraft
    decision: Decision


class RecordState(StrEnum):
    LIVE = "live"
    HELD = "held"
    PENDING_APPROVAL = "pending_approval"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"
    REFUSED = "refused"


def cap_reference_keys(references: Iterable[tuple[str, str, str]]) -> tuple[str, ...]:
    """Source keys of CAP references (sender, identifier, sent) as given by `CapConversion.references`."""
    return tuple(SourceRef(SourceKind.CAP, s, i, t).key for s, i, t in references)


def ebm_reference_key(ebm_id: str) -> str:
    """The reference key of an EBM id (operator Cancel's ``related_ebm_id``); see `PolicyEngine.link_ebm`."""
    return f"ebm|{ebm_id}"
