"""aiohttp application: routes of the REST API and the audio files terminals fetch.

Handlers stay thin: they translate HTTP to calls on the controller's parts and refusals to JSON
errors. Never holds business rules.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from broadcast.intake import CapIntake, RefusalKind, Refused
from broadcast.web import views
from broadcast.web.jsonutil import json_response

if TYPE_CHECKING:
    from broadcast.controller import Controller

log = logging.getLogger(__name__)

CONTROLLER: web.AppKey[Controller] = web.AppKey("controller")
INTAKE: web.AppKey[CapIntake] = web.AppKey("intake")


def json_error(status: int, error: str, message: str, **extra: Any) -> web.Response:
    return json_response({"error": error, "message": message, **extra}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        resp: web.StreamResponse = await handler(request)
        return resp
    except Refused as exc:
        return json_response(exc.as_json(), status=exc.http_status)
    except web.HTTPRequestEntityTooLarge:
        return json_error(
            413, str(RefusalKind.TOO_LARGE), "请求体过大，已拒收；请精简文档或联系管理员调整上限"
        )
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith("/api/"):
            return json_error(exc.status, "http_error", exc.reason or "请求无效")
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal", "服务器内部错误，已记录日志；请稍后重试或联系运维")


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise Refused(
            RefusalKind.TOO_LARGE, f"文档大小 {request.content_length} 字节超过上限 {limit} 字节，已拒收"
        )
    data = await request.content.read(limit + 1)
    if len(data) > limit:
        raise Refused(RefusalKind.TOO_LARGE, f"文档超过上限 {limit} 字节，已拒收")
    return data


async def post_alert(request: web.Request) -> web.Response:
    intake = request.app[INTAKE]
    data = await _read_limited(request, intake.max_bytes)
    accepted = await intake.submit(data, actor=f"api@{request.remote}")
    return json_response(accepted.as_json(), status=200 if accepted.duplicate else 202)


def make_app(controller: Controller) -> web.Application:
    settings = controller.settings
    # aiohttp's own cap is a backstop; the intake enforces its limit with a clear message.
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.max_body_bytes + 1024)
    app[CONTROLLER] = controller
    app[INTAKE] = CapIntake(
        controller.engine,
        controller.inventory,
        controller.pipeline,
        controller.clock,
        max_bytes=settings.max_body_bytes,
    )
    app.router.add_post("/api/alerts", post_alert)
    views.add_routes(app, CONTROLLER)
    return app
