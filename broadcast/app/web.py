"""The web application of the controller (组装网页服务): every route module given the parts it needs,
the security service, the console's live board subscribed to the event bus, and the role matrix
(``MATRIX``) that rules every route.

Composition only: the handlers live in ``broadcast.web``; ``WebParts`` is all they may use, each route
module is handed its share when it registers, and nothing is looked up through the app at request
time. Never holds business rules; never sees the ``Controller``.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry import AdapterRegistry
from broadcast.audio.cache import AudioCache
from broadcast.audio.config import AudioConfig
from broadcast.audio.playout import LiveProgrammes
from broadcast.audio.render import AudioRenderer
from broadcast.clock import Clock
from broadcast.dispatch.links import LinkTracker
from broadcast.events import DeliveryChanged, Events, LinkChanged
from broadcast.intake.intake import Intake
from broadcast.policy.desk import Desk
from broadcast.reports.jobs import OpsService
from broadcast.schedule.programmes import ProgrammeService
from broadcast.security.install import install as install_security
from broadcast.security.roles import DEFAULT_MATRIX, PUBLIC, Permission, Rule
from broadcast.sources.feeds.poller import FeedPoller
from broadcast.web.alerts import add_alert_routes
from broadcast.web.audio_routes import add_audio_routes
from broadcast.web.console_routes import CONSOLE_RULES, add_console_routes
from broadcast.web.errors import error_middleware
from broadcast.web.live import live_audio_handler
from broadcast.web.media_routes import MEDIA_RULES, add_media_routes
from broadcast.web.operator import add_operator_routes
from broadcast.web.reports_routes import add_report_routes
from broadcast.web.views import add_view_routes
from terminals.inventory_model import Inventory

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


@dataclass(frozen=True)
class WebParts:
    """Exactly the parts the web routes use, all built before the app."""

    engine: AsyncEngine
    clock: Clock
    events: Events  # the console's live board listens here
    inventory: Inventory
    links: LinkTracker
    registry: AdapterRegistry
    audio_cache: AudioCache
    renderer: AudioRenderer
    audio_config: AudioConfig  # upload limits (operator uploads, media-centre recordings)
    live: LiveProgrammes
    intake: Intake
    desk: Desk
    feeds: FeedPoller | None  # None when no feed is configured
    ops: OpsService
    programmes: ProgrammeService
    http: aiohttp.ClientSession  # the one outbound session (media-centre recordings)
    secure_cookies: bool = False  # [security] secure_cookies


def make_app(parts: WebParts) -> web.Application:
    # aiohttp's own cap is a backstop; the intake enforces its limit with a clear message.
    app = web.Application(middlewares=[error_middleware], client_max_size=parts.intake.max_bytes + 1024)
    install_security(app, parts.engine, parts.clock, matrix=MATRIX, secure_cookies=parts.secure_cookies)
    add_alert_routes(app, parts.intake)
    # Tone-first live programmes; registered before /audio/{name} so that it matches first.
    app.router.add_get("/audio/live/{ebm_id}.mp3", live_audio_handler(parts.live))
    add_view_routes(
        app,
        engine=parts.engine,
        inventory=parts.inventory,
        links=parts.links,
        adapters=parts.registry,
        audio=parts.audio_cache,
    )
    add_operator_routes(app, parts.desk, parts.feeds)
    add_report_routes(app, inventory=parts.inventory, links=parts.links, ops=parts.ops)
    uploads = parts.audio_config
    add_audio_routes(
        app,
        cache=parts.audio_cache,
        options=parts.renderer.options,
        max_bytes=uploads.upload_max_bytes,
        max_duration_s=uploads.upload_max_duration_s,
    )
    add_media_routes(
        app,
        engine=parts.engine,
        clock=parts.clock,
        programmes=parts.programmes,
        cache=parts.audio_cache,
        options=parts.renderer.options,
        max_bytes=uploads.upload_max_bytes,
        max_duration_s=uploads.upload_max_duration_s,
        session=parts.http,
    )
    hub = add_console_routes(app, engine=parts.engine, inventory=parts.inventory, renderer=parts.renderer)
    parts.events.subscribe(DeliveryChanged, hub.on_delivery)
    parts.events.subscribe(LinkChanged, hub.on_link)
    return app
