"""Intake: turns a submitted document into a stored, dispatched broadcast, or a clear refusal.

Owns the mapping from parse/convert/target failures to refusals a person can act on, dedupe of the
same source item, and the CAP Update/Cancel link to what they replace. Nothing is broadcast for a
refused document. Never talks to adapters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.model import MsgType, SourceKind, SourceRef
from broadcast.pipeline import Pipeline
from broadcast.sources.cap import CapError, CapErrorKind, parse_cap
from broadcast.sources.cap_convert import to_draft
from broadcast.store import broadcasts as store
from terminals.inventory import Inventory, UnknownAreaError


class RefusalKind(StrEnum):
    TOO_LARGE = "too_large"
    MALFORMED = "malformed"
    FORBIDDEN = "forbidden_xml"
    INVALID = "invalid"
    UNKNOWN_AREA = "unknown_area"
    NOT_BROADCASTABLE = "not_broadcastable"
    EXPIRED = "expired"
    NOTHING_TO_CANCEL = "nothing_to_cancel"


_HTTP_STATUS = {
    RefusalKind.TOO_LARGE: 413,
    RefusalKind.MALFORMED: 400,
    RefusalKind.FORBIDDEN: 400,
    RefusalKind.INVALID: 422,
    RefusalKind.UNKNOWN_AREA: 422,
    RefusalKind.NOT_BROADCASTABLE: 422,
    RefusalKind.EXPIRED: 422,
    RefusalKind.NOTHING_TO_CANCEL: 409,
}

_CAP_KIND = {
    CapErrorKind.TOO_LARGE: RefusalKind.TOO_LARGE,
    CapErrorKind.MALFORMED_XML: RefusalKind.MALFORMED,
    CapErrorKind.FORBIDDEN_DTD: RefusalKind.FORBIDDEN,
    CapErrorKind.TOO_DEEP: RefusalKind.FORBIDDEN,
    CapErrorKind.BAD_ENCODING: RefusalKind.MALFORMED,
    CapErrorKind.NOT_BROADCASTABLE: RefusalKind.NOT_BROADCASTABLE,
    CapErrorKind.UNKNOWN_AREA: RefusalKind.UNKNOWN_AREA,
    CapErrorKind.NO_AREA: RefusalKind.UNKNOWN_AREA,
}


class Refused(Exception):
    def __init__(self, kind: RefusalKind, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.extra = extra

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self.kind]

    def as_json(self) -> dict[str, Any]:
        return {"error": str(self.kind), "message": self.message, **self.extra}


@dataclass(frozen=True)
class Accepted:
    broadcast_id: int | None
    ebm_id: str | None
    targets: int
    duplicate: bool = False
    msg_type: str = "actual"
    stopped: tuple[int, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {
            "broadcast_id": self.broadcast_id,
            "ebm_id": self.ebm_id,
            "targets": self.targets,
            "duplicate": self.duplicate,
            "msg_type": self.msg_type,
            "stopped": list(self.stopped),
            "warnings": list(self.warnings),
        }


class CapIntake:
    def __init__(
        self, engine: AsyncEngine, inventory: Inventory, pipeline: Pipeline, clock: Clock, *, max_bytes: int
    ) -> None:
        self._engine = engine
        self._inventory = inventory
        self._pipeline = pipeline
        self._clock = clock
        self.max_bytes = max_bytes

    async def submit(self, data: bytes, *, actor: str = "api") -> Accepted:
        received = self._clock.now()
        try:
            alert = parse_cap(data, max_bytes=self.max_bytes)
            conv = to_draft(alert, now=received, known_area=lambda c: self._inventory.area(c) is not None)
        except CapError as exc:
            raise Refused(
                _CAP_KIND.get(exc.kind, RefusalKind.INVALID), exc.message, cap_error=str(exc.kind)
            ) from exc
        draft = conv.draft
        if conv.expired:
            raise Refused(RefusalKind.EXPIRED, f"预警已于 {draft.end_at.isoformat()} 过期，未播发")
        replaced = await store.find_by_source_keys(
            self._engine, [SourceRef(SourceKind.CAP, s, i, t).key for s, i, t in conv.references]
        )
        if draft.msg_type is MsgType.CANCEL:
            if not replaced:
                raise Refused(
                    RefusalKind.NOTHING_TO_CANCEL,
                    "解除/取消消息引用的原预警未在本平台找到（references 不匹配），没有可停止的播发；请核对 references",
                    references=[list(r) for r in conv.references],
                )
            stopped = tuple(int(r["id"]) for r in replaced)
            for bid in stopped:
                await self._pipeline.stop(bid, actor=actor)
            return Accepted(None, None, 0, msg_type="cancel", stopped=stopped, warnings=draft.warnings)
        try:
            self._pipeline.resolve(draft)
        except UnknownAreaError as exc:
            raise Refused(RefusalKind.UNKNOWN_AREA, str(exc), codes=list(exc.codes)) from exc
        try:
            sub = await self._pipeline.submit(draft, actor=actor, received_at=received)
        except store.DuplicateSourceError as dup:
            return Accepted(dup.broadcast_id, dup.ebm_id, 0, duplicate=True, warnings=draft.warnings)
        # An Update supersedes what it references: the old message stops once the new one is stored.
        superseded = [int(row["id"]) for row in replaced]
        for old in superseded:
            await self._pipeline.stop(old, actor=actor)
        return Accepted(
            sub.broadcast_id,
            sub.ebm_id,
            sub.targets,
            msg_type="drill" if draft.msg_type.is_drill else "actual",
            stopped=tuple(superseded),
            warnings=draft.warnings + tuple(f"不可定位的区域: {u}" for u in conv.untargetable),
        )
