"""Intake: turns a submitted document (CAP, JSON message, an upper platform's EBM) into a desk
decision, or a clear refusal.

The one refusal path of the product: parse, convert, target and policy failures of every format
become a ``Refused`` with one ``RefusalKind`` and a message a person can act on. Targets are resolved
here, once, and handed down with the draft. Nothing is broadcast for a refused document. Never talks
to adapters; the HTTP status of a refusal is the web layer's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from broadcast.clock import Clock
from broadcast.model import MessageDraft, MsgType, SourceKind, TerminalRef
from broadcast.policy.desk import Taken
from broadcast.policy.types import Action, Origin, Reason, cap_reference_keys
from broadcast.sources.cap.convert import to_draft
from broadcast.sources.cap.errors import CapError, CapErrorKind
from broadcast.sources.cap.model import CapStatus
from broadcast.sources.cap.parse import parse_cap
from broadcast.sources.cap.signature import SignaturePolicy, check_signature
from broadcast.sources.message_json import MessageJsonError, MessageJsonErrorKind, parse_message_json
from terminals.geo import resolve_geometry
from terminals.inventory_model import Inventory, UnknownAreaError


class RefusalKind(StrEnum):
    TOO_LARGE = "too_large"
    MALFORMED = "malformed"
    FORBIDDEN = "forbidden_xml"
    INVALID = "invalid"
    UNKNOWN_AREA = "unknown_area"
    NOT_BROADCASTABLE = "not_broadcastable"
    EXPIRED = "expired"
    NOTHING_TO_CANCEL = "nothing_to_cancel"
    POLICY = "refused_by_policy"
    SIGNATURE = "bad_signature"


_CAP_KIND = {
    CapErrorKind.TOO_LARGE: RefusalKind.TOO_LARGE,
    CapErrorKind.MALFORMED_XML: RefusalKind.MALFORMED,
    CapErrorKind.FORBIDDEN_DTD: RefusalKind.FORBIDDEN,
    CapErrorKind.TOO_DEEP: RefusalKind.FORBIDDEN,
    CapErrorKind.BAD_ENCODING: RefusalKind.MALFORMED,
    CapErrorKind.NOT_BROADCASTABLE: RefusalKind.NOT_BROADCASTABLE,
    CapErrorKind.UNKNOWN_AREA: RefusalKind.UNKNOWN_AREA,
    CapErrorKind.NO_AREA: RefusalKind.UNKNOWN_AREA,
    CapErrorKind.SIGNATURE_MISSING: RefusalKind.SIGNATURE,
    CapErrorKind.SIGNATURE_INVALID: RefusalKind.SIGNATURE,
}


class Refused(Exception):
    def __init__(self, kind: RefusalKind, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.extra = extra

    def as_json(self) -> dict[str, Any]:
        return {"error": str(self.kind), "message": self.message, **self.extra}


@dataclass(frozen=True)
class Accepted:
    broadcast_id: int | None
    ebm_id: str | None
    targets: int
    decision: str
    reason: str
    reason_zh: str
    duplicate: bool = False
    msg_type: str = "actual"
    stopped: tuple[int, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {
            "broadcast_id": self.broadcast_id,
            "ebm_id": self.ebm_id,
            "targets": self.targets,
            "decision": self.decision,
            "reason": self.reason,
            "message": self.reason_zh,
            "duplicate": self.duplicate,
            "msg_type": self.msg_type,
            "stopped": list(self.stopped),
            "warnings": list(self.warnings),
        }


_REFUSAL_OF_REASON = {
    Reason.EXPIRED: RefusalKind.EXPIRED,
    Reason.DRILL_AS_ACTUAL: RefusalKind.NOT_BROADCASTABLE,
    Reason.ORIGINAL_NEVER_ARRIVED: RefusalKind.NOTHING_TO_CANCEL,
}


class Deciding(Protocol):
    """The intake desk as the intake uses it."""

    async def take(
        self,
        draft: MessageDraft,
        *,
        targets: Sequence[TerminalRef] | None = None,
        references: Sequence[str] = (),
        origin: Origin | None = None,
        actor: str = "",
        received_at: datetime | None = None,
    ) -> Taken: ...


class Intake:
    """Documents in, desk decisions out. One instance serves every push format."""

    def __init__(
        self,
        inventory: Inventory,
        desk: Deciding,
        clock: Clock,
        *,
        max_bytes: int,
        audio_exists: Callable[[str], bool] | None = None,
        signature_policy: SignaturePolicy = SignaturePolicy.VERIFY_IF_PRESENT,
        trusted_certs: Sequence[bytes] = (),
    ) -> None:
        self._audio_exists = audio_exists
        self._signature_policy = signature_policy
        self._trusted_certs = tuple(trusted_certs)
        self._inventory = inventory
        self._desk = desk
        self._clock = clock
        self.max_bytes = max_bytes

    def _targets(self, draft: MessageDraft) -> tuple[TerminalRef, ...] | None:
        """The draft's terminals, or a refusal; a Cancel has none of its own (None)."""
        if draft.msg_type is MsgType.CANCEL:
            return None
        try:
            targets = self._inventory.targets(draft.area_codes, draft.terminal_codes)
        except UnknownAreaError as exc:
            raise Refused(RefusalKind.UNKNOWN_AREA, str(exc), codes=list(exc.codes)) from exc
        if not targets:
            raise Refused(
                RefusalKind.UNKNOWN_AREA,
                "消息没有可定位到本县终端的区域（行政区划代码缺失，或多边形/圆形范围内没有终端），未播发；"
                "请填写 6/9/12 位区划代码或核对范围",
            )
        return targets

    async def submit_draft(
        self,
        draft: MessageDraft,
        *,
        references: Sequence[str] = (),
        origin: Origin,
        actor: str,
        received: datetime | None = None,
        warnings: tuple[str, ...] = (),
    ) -> Accepted:
        """A draft already parsed from its format: targets, then the desk. Raises Refused."""
        received = received or self._clock.now()
        targets = self._targets(draft)
        taken = await self._desk.take(
            draft, targets=targets, references=references, origin=origin, actor=actor, received_at=received
        )
        d = taken.decision
        if d.action is Action.REJECT and not taken.duplicate:
            kind = _REFUSAL_OF_REASON.get(d.reason, RefusalKind.POLICY)
            raise Refused(kind, d.reason_zh, reason=str(d.reason))
        return Accepted(
            taken.broadcast_id,
            taken.ebm_id,
            taken.targets,
            str(d.action),
            str(d.reason),
            d.reason_zh,
            duplicate=taken.duplicate,
            msg_type="cancel"
            if draft.msg_type is MsgType.CANCEL
            else "drill"
            if draft.msg_type.is_drill
            else "actual",
            stopped=taken.stopped,
            warnings=draft.warnings + warnings,
        )

    async def submit_cap(self, data: bytes, *, actor: str = "api") -> Accepted:
        received = self._clock.now()
        try:
            alert = parse_cap(data, max_bytes=self.max_bytes)
            if self._signature_policy is SignaturePolicy.REQUIRE or (
                alert.signature_present and self._signature_policy is SignaturePolicy.VERIFY_IF_PRESENT
            ):
                # XML-DSig: a present signature must verify against a configured certificate.
                check_signature(data, self._signature_policy, trusted_certs=self._trusted_certs, now=received)
            conv = to_draft(alert, now=received, known_area=lambda c: self._inventory.area(c) is not None)
        except CapError as exc:
            raise Refused(
                _CAP_KIND.get(exc.kind, RefusalKind.INVALID), exc.message, cap_error=str(exc.kind)
            ) from exc
        draft = conv.draft
        if conv.polygons or conv.circles:
            shaped = resolve_geometry(self._inventory, conv.polygons, conv.circles)
            draft = replace(draft, terminal_codes=tuple(t.resource_code for t in shaped))
        origin = Origin(SourceKind.CAP, alert.sender, conv.cap_status in (CapStatus.EXERCISE, CapStatus.TEST))
        return await self.submit_draft(
            draft,
            references=cap_reference_keys(conv.references),
            origin=origin,
            actor=actor,
            received=received,
            warnings=tuple(f"不可定位的区域: {u}" for u in conv.untargetable),
        )

    async def submit_json(self, data: bytes, *, actor: str) -> Accepted:
        received = self._clock.now()
        try:
            draft = parse_message_json(
                data, now=received, max_bytes=self.max_bytes, audio_exists=self._audio_exists
            )
        except MessageJsonError as exc:
            status = (
                RefusalKind.TOO_LARGE if exc.kind is MessageJsonErrorKind.TOO_LARGE else RefusalKind.INVALID
            )
            raise Refused(status, exc.message, field=exc.field, json_error=str(exc.kind)) from exc
        # The composer is the authenticated account, not whatever the document claims.
        origin = Origin(SourceKind.OPERATOR, actor, draft.msg_type.is_drill)
        return await self.submit_draft(draft, references=(), origin=origin, actor=actor, received=received)
