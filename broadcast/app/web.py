"""aiohttp application: routes of the REST API and the audio files terminals fetch.

Handlers stay thin: they translate HTTP to calls on the controller's parts and refusals to JSON
errors. Never holds business rules.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from broadcast.intake.intake import Intake, RefusalKind, Refused
from broadcast.security.audit import AuditAction
from broadcast.security.context import audit_request
from broadcast.security.install import install as install_security
from broadcast.security.middleware import principal_of
from broadcast.security.roles import DEFAULT_MATRIX, PUBLIC, Permission, Rule
from broadcast.web import operator, views
from broadcast.web.audio_routes import add_audio_routes
from broadcast.web.console_routes import CONSOLE_RULES, add_console_routes
from broadcast.web.jsonutil import json_response
from broadcast.web.live import live_audio_handler
from broadcast.web.media_routes import MEDIA_RULES, add_media_routes
from broadcast.web.reports_routes import add_report_routes

if TYPE_CHECKING:
    from broadcast.app.controller import Controller

log = logging.getLogger(__name__)

CONTROLLER: web.AppKey[Controller] = web.AppKey("controller")
INTAKE: web.AppKey[Intake] = web.AppKey("intake")


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


def actor_of(request: web.Request) -> str:
    who = principal_of(request)
    return who.name if who else f"anonymous@{request.remote}"


async def post_alert(request: web.Request) -> web.Response:
    intake = request.app[INTAKE]
    data = await _read_limited(request, intake.max_bytes)
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
    return json_response(accepted.as_json(), status=accepted.http_status)


async def post_message(request: web.Request) -> web.Response:
    intake = request.app[INTAKE]
    data = await _read_limited(request, intake.max_bytes)
    accepted = await intake.submit_json(data, actor=actor_of(request))
    await audit_request(
        request,
        AuditAction.MESSAGE_SUBMITTED,
        target=str(accepted.broadcast_id or ""),
        detail={"decision": accepted.decision, "reason": accepted.reason},
    )
    return json_response(accepted.as_json(), status=accepted.http_status)


# Operator actions beyond the security module's default matrix.
MATRIX = DEFAULT_MATRIX.with_rules(
    *CONSOLE_RULES,
    *MEDIA_RULES,
    Rule("POST", "/api/audio", Permission.MESSAGES_COMPOSE),  # operator audio upload
    Rule("POST", "/api/reports/health", Permission.READ),  # generate a health report on demand
    Rule("POST", "/ebd", PUBLIC),  # upper platforms: authenticated by SM2 signatures, not logins
    Rule("*", "/api/media/programmes", PUBLIC),  # media centre: its own bearer token ([interconnect])
    Rule("POST", "/api/broadcasts/{id}/approve", Permission.MESSAGES_APPROVE),
    Rule("POST", "/api/broadcasts/{id}/reject", Permission.MESSAGES_APPROVE),
    Rule("POST", "/api/broadcasts/{id}/release", Permission.MESSAGES_SUBMIT),
)


def make_app(controller: Controller) -> web.Application:
    settings = controller.settings
    # aiohttp's own cap is a backstop; the intake enforces its limit with a clear message.
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.max_body_bytes + 1024)
    app[CONTROLLER] = controller
    app[INTAKE] = controller.intake
    install_security(
        app,
        controller.engine,
        controller.clock,
        matrix=MATRIX,
        secure_cookies=bool(settings.raw.get("security", {}).get("secure_cookies", False)),
    )
    app.router.add_post("/api/alerts", post_alert)
    app.router.add_post("/api/messages", post_message)
    # Tone-first live programmes; registered before /audio/{name} so that it matches first.
    app.router.add_get("/audio/live/{ebm_id}.mp3", live_audio_handler(controller.live))
    views.add_routes(app, CONTROLLER)
    operator.add_routes(app, CONTROLLER)
    add_report_routes(app, CONTROLLER)
    add_audio_routes(
        app,
        CONTROLLER,
        max_bytes=controller.audio_config.upload_max_bytes,
        max_duration_s=controller.audio_config.upload_max_duration_s,
    )
    add_media_routes(app, CONTROLLER)
    add_console_routes(app, CONTROLLER)
    return app
