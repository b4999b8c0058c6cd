"""Operator actions over HTTP: pending list, approve / reject / release, stop, decision record.

Thin: the desk decides and records; this module maps its refusals to HTTP and audits each action.
Given the desk and the feed poller at registration (``add_operator_routes``). Role checks are the
security matrix's (``broadcast.app.web.MATRIX``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from broadcast.jsonhttp import json_response
from broadcast.policy.desk import Desk, DeskError, Taken
from broadcast.security.audit import AuditAction
from broadcast.security.context import audit_request
from broadcast.web.errors import actor_of, desk_refusal
from broadcast.web.timestamps import beijing_iso


class FeedHealth(Protocol):
    """The CAP feed poller as these routes use it: the health of each feed."""

    def health(self) -> list[dict[str, Any]]: ...


def _taken_json(bid: int, taken: Taken) -> dict[str, Any]:
    d = taken.decision
    return {
        "broadcast_id": bid,
        "decision": str(d.action),
        "reason": str(d.reason),
        "message": d.reason_zh,
        "stopped": list(taken.stopped),
    }


def add_operator_routes(app: web.Application, desk: Desk, feeds: FeedHealth | None) -> None:
    """Register the operator actions; ``feeds`` is None when no feed is configured."""

    def bid_of(request: web.Request) -> int:
        try:
            return int(request.match_info["id"])
        except ValueError:
            raise web.HTTPBadRequest(reason="播发编号应为整数") from None

    def action(
        verb: Callable[[int, str], Awaitable[Taken]], audit_as: AuditAction
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            bid = bid_of(request)
            try:
                taken = await verb(bid, actor_of(request))
            except DeskError as exc:
                await audit_request(request, audit_as, target=str(bid), detail={"refused": exc.message})
                return desk_refusal(exc)
            await audit_request(
                request, audit_as, target=str(bid), detail={"decision": str(taken.decision.action)}
            )
            return json_response(_taken_json(bid, taken))

        return handler

    async def stop(request: web.Request) -> web.Response:
        bid = bid_of(request)
        try:
            sent = await desk.stop(bid, actor_of(request))
        except DeskError as exc:
            return desk_refusal(exc)
        await audit_request(
            request, AuditAction.BROADCAST_STOPPED, target=str(bid), detail={"stop_instructions": sent}
        )
        return json_response({"broadcast_id": bid, "stop_instructions": sent})

    async def pending(_request: web.Request) -> web.Response:
        rows = await desk.pending()
        return json_response(
            {
                "pending": [
                    {
                        "broadcast_id": r["id"],
                        "ebm_id": r["ebm_id"],
                        "title": r["title"],
                        "severity": r["severity"],
                        "kind": "hold_off" if r["policy_state"] == "held" else "approval",
                        "composer": r["composer"],
                        "hold_until": beijing_iso(r["hold_until"]),
                        "on_timeout": r["hold_on_timeout"],
                        "received_at": beijing_iso(r["received_at"]),
                    }
                    for r in rows
                ]
            }
        )

    async def decisions(request: web.Request) -> web.Response:
        bid = bid_of(request)
        rows = await desk.decisions(broadcast_id=bid)
        return json_response(
            {
                "broadcast_id": bid,
                "decisions": [
                    {
                        "at": beijing_iso(r["at"]),
                        "action": r["action"],
                        "reason": r["reason"],
                        "message": r["reason_zh"],
                        "actor": r["actor"],
                    }
                    for r in rows
                ],
            }
        )

    async def sources(_request: web.Request) -> web.Response:
        return json_response({"feeds": feeds.health() if feeds is not None else []})

    app.router.add_get("/api/pending", pending)
    app.router.add_get("/api/sources", sources)
    app.router.add_get("/api/broadcasts/{id}/decisions", decisions)
    app.router.add_post("/api/broadcasts/{id}/stop", stop)
    app.router.add_post("/api/broadcasts/{id}/approve", action(desk.approve, AuditAction.MESSAGE_APPROVED))
    app.router.add_post("/api/broadcasts/{id}/reject", action(desk.reject, AuditAction.MESSAGE_REJECTED))
    app.router.add_post("/api/broadcasts/{id}/release", action(desk.release, AuditAction.BROADCAST_STARTED))
