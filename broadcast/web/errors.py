"""How the HTTP API answers what went wrong: the error middleware, the status of each refusal kind,
the size-limited body read, and who is acting.

Owns the mapping from the core's refusal kinds (intake ``RefusalKind``, desk ``DeskRefusal``) to HTTP
statuses; the core never carries an HTTP status. Never holds business rules.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from broadcast.intake.intake import Accepted, RefusalKind, Refused
from broadcast.jsonhttp import json_error, json_response
from broadcast.policy.desk import DeskError, DeskRefusal
from broadcast.security.middleware import principal_of

log = logging.getLogger(__name__)

REFUSAL_STATUS: Mapping[RefusalKind, int] = {
    RefusalKind.TOO_LARGE: 413,
    RefusalKind.MALFORMED: 400,
    RefusalKind.FORBIDDEN: 400,
    RefusalKind.INVALID: 422,
    RefusalKind.UNKNOWN_AREA: 422,
    RefusalKind.NOT_BROADCASTABLE: 422,
    RefusalKind.EXPIRED: 422,
    RefusalKind.NOTHING_TO_CANCEL: 409,
    RefusalKind.POLICY: 409,
    RefusalKind.SIGNATURE: 422,
}

DESK_STATUS: Mapping[DeskRefusal, int] = {
    DeskRefusal.NOT_FOUND: 404,
    DeskRefusal.NOT_PENDING: 409,
    DeskRefusal.SAME_PERSON: 403,
}


def accepted_status(accepted: Accepted) -> int:
    """202 for a new decision, 200 for a duplicate (the first submission's answer again)."""
    return 200 if accepted.duplicate else 202


def desk_refusal(exc: DeskError) -> web.Response:
    return json_error(DESK_STATUS[exc.kind], "refused", exc.message)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        resp: web.StreamResponse = await handler(request)
        return resp
    except Refused as exc:
        return json_response(exc.as_json(), status=REFUSAL_STATUS[exc.kind])
    except web.HTTPRequestEntityTooLarge:
        return json_error(413, str(RefusalKind.TOO_LARGE), "请求体过大，已拒收；请精简文档或联系管理员调整上限")
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith("/api/"):
            return json_error(exc.status, "http_error", exc.reason or "请求无效")
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal", "服务器内部错误，已记录日志；请稍后重试或联系运维")


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The request body, refused (TOO_LARGE) past ``limit`` bytes before more is read."""
    if request.content_length is not None and request.content_length > limit:
        raise Refused(
            RefusalKind.TOO_LARGE, f"文档大小 {request.content_length} 字节超过上限 {limit} 字节，已拒收"
        )
    data = await request.content.read(limit + 1)
    if len(data) > limit:
        raise Refused(RefusalKind.TOO_LARGE, f"文档超过上限 {limit} 字节，已拒收")
    return data


def actor_of(request: web.Request) -> str:
    """Who is acting: the signed-in account or token, else the anonymous remote address."""
    who = principal_of(request)
    return who.name if who else f"anonymous@{request.remote}"
