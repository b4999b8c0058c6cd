"""The web application of the controller (组装网页服务): every route module given the parts it needs,
the security service, and the role matrix (``MATRIX``) that rules every route.

Composition only: the handlers live in ``broadcast.web``. Never holds business rules.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from broadcast.security.install import install as install_security
from broadcast.security.roles import DEFAULT_MATRIX, PUBLIC, Permission, Rule
from broadcast.web import operator, views
from broadcast.web.alerts import add_alert_routes
from broadcast.web.audio_routes import add_audio_routes
from broadcast.web.console_routes import CONSOLE_RULES, add_console_routes
from broadcast.web.errors import error_middleware
from broadcast.web.live import live_audio_handler
from broadcast.web.media_routes import MEDIA_RULES, add_media_routes
from broadcast.web.reports_routes import add_report_routes

if TYPE_CHECKING:
    from broadcast.app.controller import Controller

log = logging.getLogger(__name__)

CONTROLLER: web.AppKey[Controller] = web.AppKey("controller")


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
    install_security(
        app,
        controller.engine,
        controller.clock,
        matrix=MATRIX,
        secure_cookies=bool(settings.raw.get("security", {}).get("secure_cookies", False)),
    )
    add_alert_routes(app, controller.intake)
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
