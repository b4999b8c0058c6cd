"""``POST /api/alerts`` (CAP) and ``POST /api/messages`` (JSON): documents into the intake.

Thin: reads the body within the intake's limit, hands it over, audits the decision and answers with
it (refusals become JSON errors in ``errors``). Never holds business rules.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from broadcast.intake.intake import Accepted, Refused
from broadcast.jsonhttp import json_response
from broadcast.security.audit import AuditAction
from broadcast.security.context import audit_request
from broadcast.web.errors import accepted_status, actor_of, read_limited


class Submitting(Protocol):
    """The intake as these routes use it."""

    @property
    def max_bytes(self) -> int: ...

    async def submit_cap(self, data: bytes, *, actor: str = "api") -> Accepted: ...

    async def submit_json(self, data: bytes, *, actor: str) -> Accepted: ...


def add_alert_routes(app: web.Application, intake: Submitting) -> None:
    async def post_alert(request: web.Request) -> web.Response:
        data = await read_limited(request, intake.max_bytes)
        try:
            accepted = await intake.submit_cap(data, actor=actor_of(request))
        except Refused as exc:
            await audit_request(request, AuditAction.ALERT_RECEIVED, detail={"refused": str(exc.kind)})
            raise
        await audit_request(
            request,
            AuditAction.ALERT_RECEIVED,
            target=str(accepted.broadcast_id or ""),
            detail={"decision": accepted.decision, "reason": accepted.reason},
        )
        return json_response(accepted.as_json(), status=accepted_status(accepted))

    async def post_message(request: web.Request) -> web.Response:
        data = await read_limited(request, intake.max_bytes)
        accepted = await intake.submit_json(data, actor=actor_of(request))
        await audit_request(
            request,
            AuditAction.MESSAGE_SUBMITTED,
            target=str(accepted.broadcast_id or ""),
            detail={"decision": accepted.decision, "reason": accepted.reason},
        )
        return json_response(accepted.as_json(), status=accepted_status(accepted))

    app.router.add_post("/api/alerts", post_alert)
    app.router.add_post("/api/messages", post_message)
