"""Assembles the county controller from settings: database, inventory, adapters, receipts, dispatch,
audio, pipeline and the web app; starts and stops them in order.

The only place that knows how the parts fit together. Never imports a concrete adapter or ``sim``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry import AdapterFactory, AdapterRegistry
from broadcast.audio.cache import AudioCache
from broadcast.audio.config import AudioConfig, audio_config, build_renderer
from broadcast.audio.normalize import normalise_for_speech
from broadcast.audio.playout import LiveProgrammes
from broadcast.audio.render import AudioRenderer
from broadcast.audio.templates import load_templates
from broadcast.clock import Clock, SystemClock
from broadcast.dispatch.dispatcher import Dispatcher, RetryPolicy
from broadcast.dispatch.links import LinkTracker
from broadcast.dispatch.receipts import ReceiptBook
from broadcast.intake.intake import Intake, Refused
from broadcast.model import DeliveryEvent, LinkState, MessageDraft, SourceKind
from broadcast.pipeline.pipeline import Pipeline
from broadcast.policy.config import policy_config
from broadcast.policy.desk import Desk
from broadcast.policy.engine import PolicyEngine
from broadcast.reports.jobs import OpsService, ops_for
from broadcast.schedule.drill_service import jobstore_url
from broadcast.schedule.programme_specs import programmes_from_config
from broadcast.schedule.programmes import ProgrammeService
from broadcast.schedule.programmes import pipeline_submitter as programme_submitter
from broadcast.security import accounts
from broadcast.security.passwords import Passwords
from broadcast.security.tokens import sync_configured_tokens
from broadcast.settings import Settings
from broadcast.sources.cap.signature import SignaturePolicy
from broadcast.sources.feeds.config import feeds_from_config
from broadcast.sources.feeds.poller import FeedPoller
from broadcast.store.db import make_engine, prepare_schema
from broadcast.store.inventory import list_terminals, sync_inventory
from terminals.inventory import load_inventory
from terminals.inventory_model import Inventory

if TYPE_CHECKING:
    from broadcast.interconnect.routes import Interconnect

log = logging.getLogger(__name__)


def read_certificates(base: Path, paths: list[str]) -> list[bytes]:
    """PEM certificates named in the configuration (relative paths from the installation). Start-up only."""
    return [(p if p.is_absolute() else base / p).read_bytes() for p in map(Path, paths)]


class CoreSink:
    """Routes adapter news to receipts, link health and the dispatcher (AdapterSink)."""

    def __init__(self, receipts: ReceiptBook, links: LinkTracker, dispatcher: Dispatcher) -> None:
        self._receipts = receipts
        self._links = links
        self._dispatcher = dispatcher

    def delivery_event(self, event: DeliveryEvent) -> None:
        if self._dispatcher.is_interruption_report(event):
            log.debug(
                "EBM %s on %s interrupted by preemption: resumes later", event.ebm_id, event.terminal_code
            )
            return
        self._receipts.record(
            event.ebm_id,
            event.terminal_code,
            event.status,
            event.at,
            reason=event.reason,
            detail=event.detail,
        )

    def terminal_link(self, terminal_code: str, state: LinkState, at: datetime, detail: str = "") -> None:
        was = self._links.state(terminal_code)
        self._links.link(terminal_code, state, at, detail)
        if state is LinkState.ONLINE and was is LinkState.OFFLINE:
            self._dispatcher.on_terminal_online(terminal_code)

    def terminal_heartbeat(self, terminal_code: str, at: datetime) -> None:
        self._links.heartbeat(terminal_code, at)


@dataclass
class Controller:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    inventory: Inventory
    registry: AdapterRegistry
    receipts: ReceiptBook
    links: LinkTracker
    dispatcher: Dispatcher
    audio_cache: AudioCache
    renderer: AudioRenderer
    pipeline: Pipeline
    live: LiveProgrammes
    audio_config: AudioConfig
    desk: Desk
    intake: Intake
    feeds: FeedPoller | None = None
    web_port: int = 0
    first_admin_password: str | None = None
    interconnect: Interconnect | None = None
    ops: OpsService | None = None
    programmes: ProgrammeService | None = None
    _runner: web.AppRunner | None = None
    _http: aiohttp.ClientSession | None = None
    _feeds_stop: asyncio.Event | None = None
    _feeds_task: asyncio.Task[None] | None = None

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        adapter_factories: dict[str, AdapterFactory] | None = None,
    ) -> Controller:
        clock = clock or SystemClock()
        engine = make_engine(settings.database_url)
        await prepare_schema(engine)
        inventory = load_inventory(settings.inventory_path)
        added, updated = await sync_inventory(engine, inventory)
        if added or updated:
            log.info("inventory %s: %d terminals added, %d updated", inventory.name, added, updated)
        registry = AdapterRegistry(clock, adapter_factories)
        adapter_cfg = {
            name: {"platform_code": inventory.platform_code, **cfg} for name, cfg in settings.adapters.items()
        }
        registry.build(adapter_cfg)
        links = LinkTracker(engine)
        receipts = ReceiptBook(engine, clock)
        dispatcher = Dispatcher(
            registry,
            receipts,
            clock,
            retry=RetryPolicy(initial_s=settings.retry_initial_s, max_s=settings.retry_max_s),
            concurrency_per_adapter=settings.concurrency_per_adapter,
        )
        cache = AudioCache(settings.audio_cache_dir, max_bytes=settings.audio_max_bytes)
        audio_cfg = audio_config(settings.raw.get("audio", {}))
        renderer = build_renderer(cache, audio_cfg, clock, normalise=normalise_for_speech)
        templates = load_templates()
        live = LiveProgrammes(renderer, clock)

        def script(draft: MessageDraft) -> tuple[str, str]:
            if draft.source.kind is SourceKind.SCHEDULE and not draft.msg_type.is_drill:
                # A daily programme is read as written, not framed as a warning.
                return draft.primary.title, normalise_for_speech(draft.primary.text)
            spoken = templates.render(draft, county_name=inventory.name)
            return spoken.title, spoken.body

        # The audio URL needs the bound web port; the pipeline is re-pointed after the server binds.
        pipeline = Pipeline(
            engine,
            inventory,
            renderer,
            dispatcher,
            receipts,
            clock,
            audio_base_url=settings.audio_base_url(),
            script=script,
            live=live,
            repeats_for=audio_cfg.repeats_for,
        )
        receipts.on_settled = pipeline.on_settled
        desk = Desk(
            engine, pipeline, PolicyEngine(policy_config(settings.raw.get("policy", {})), clock), clock
        )
        intake_cfg = settings.raw.get("intake", {})
        intake = Intake(
            inventory,
            desk,
            clock,
            max_bytes=settings.max_body_bytes,
            audio_exists=lambda d: cache.path_for(d, "mp3") is not None,
            signature_policy=SignaturePolicy(intake_cfg.get("cap_signature", "verify_if_present")),
            trusted_certs=read_certificates(settings.base_dir, intake_cfg.get("cap_trusted_certs", [])),
        )
        return cls(
            settings,
            clock,
            engine,
            inventory,
            registry,
            receipts,
            links,
            dispatcher,
            cache,
            renderer,
            pipeline,
            live,
            audio_cfg,
            desk,
            intake,
        )

    async def start(
        self,
        *,
        serve_web: bool = True,
        extra_setup: Callable[[Controller, web.Application], Awaitable[None]] | None = None,
    ) -> None:
        """Start everything. ``extra_setup`` may add routes/components to the web app before it
        starts (e.g. the upper-platform interconnect)."""
        # These import the controller type; importing them here avoids a cycle.
        from broadcast.app.interconnect import attach_interconnect
        from broadcast.app.web import make_app

        known = {r["resource_code"]: LinkState(r["link_state"]) for r in await list_terminals(self.engine)}
        # Nothing is connected before adapters start: whatever the last run left is stale.
        self.links.seed({code: LinkState.OFFLINE for code in known})
        await self.live.warm()  # the chimes and the fallback notice, encoded once
        self.receipts.start()
        self.links.start()
        if serve_web:
            app = make_app(self)
            self.interconnect = await attach_interconnect(
                self, app, self.settings.raw.get("interconnect", {})
            )
            if extra_setup is not None:
                await extra_setup(self, app)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.settings.host, self.settings.port, backlog=1024)
            await site.start()
            self.web_port = int(self._runner.addresses[0][1])
            self.pipeline.audio_base_url = self.settings.audio_base_url(self.web_port)
        await sync_configured_tokens(
            self.engine, self.clock, self.settings.raw.get("intake", {}).get("tokens", [])
        )
        self.first_admin_password = await accounts.ensure_first_admin(
            self.engine, self.clock, Passwords(None)
        )
        sink = CoreSink(self.receipts, self.links, self.dispatcher)
        await self.registry.start_all(sink, self.inventory.terminals)
        await self.desk.restore()
        resumed = await self.pipeline.resume()
        if resumed:
            log.info("%d unfinished broadcasts resumed", resumed)
        self.desk.start()
        await self._start_feeds()
        self.ops = ops_for(self)  # drills, scheduled health reports
        await self.ops.start()
        await self._start_programmes()

    async def _start_programmes(self) -> None:
        """Daily programmes (日常广播) from ``[[programmes]]`` and approved media-centre submissions;
        emergencies preempt them. Always started: approving a submission schedules into it."""
        specs = programmes_from_config(self.settings.raw.get("programmes", []), self.inventory.county.code)
        self.programmes = ProgrammeService(
            self.clock,
            programme_submitter(self.pipeline),
            specs,
            self.inventory.platform_name or self.inventory.name,
            self.inventory.platform_code,
            jobstore_url(self.settings.database_url, self.settings.base_dir / "var" / "drill-jobs.sqlite3"),
            engine=self.engine,
            default_areas=(self.inventory.county.code,),
            audio_exists=lambda d: self.audio_cache.path_for(d, "mp3") is not None,
        )
        await self.programmes.start()

    async def _start_feeds(self) -> None:
        entries = self.settings.raw.get("feeds", [])
        if not entries:
            return
        self._http = aiohttp.ClientSession()
        self.feeds = FeedPoller(
            feeds_from_config(entries),
            session=self._http,
            engine=self.engine,
            submit=self._submit_from_feed,
            clock=self.clock,
        )
        await self.feeds.prepare()
        self._feeds_stop = asyncio.Event()
        self._feeds_task = asyncio.create_task(self.feeds.run(self._feeds_stop), name="feeds")

    async def _submit_from_feed(self, data: bytes, feed: str) -> None:
        try:
            await self.intake.submit_cap(data, actor=f"feed:{feed}")
        except Refused as exc:
            # Refused for good (malformed, unknown area, expired…): reported, not retried every round.
            log.warning("feed %s: CAP refused: %s", feed, exc.message)

    async def close(self) -> None:
        if self.programmes is not None:
            await self.programmes.close()
        if self.ops is not None:
            await self.ops.close()
        if self._feeds_stop is not None and self._feeds_task is not None:
            self._feeds_stop.set()
            await asyncio.gather(self._feeds_task, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        await self.desk.close()
        await self.pipeline.close()
        await self.live.close()
        await self.dispatcher.close()
        await self.registry.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.receipts.close()
        await self.links.close()
        await self.engine.dispose()
