"""The composition root (组装): builds the county controller from settings and starts and stops its parts
in one ordered list.

``Controller.create`` builds every part — store, inventory, adapters, the event bus and its
subscriptions, receipts, links, dispatch, audio, pipeline, desk, intake, feeds, drills, reports,
programmes, the interconnect and the web app — before anything starts, so no part is attached late and
no part is handed the controller. ``start`` runs the steps in order, ``close`` in reverse. Holds no
rules of its own. Nothing in ``broadcast/`` imports this package; only the CLI, the demo, benchmarks
and tests do. Never imports a concrete adapter or ``sim``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry import AdapterFactory, AdapterRegistry
from broadcast.app.interconnect import attach_interconnect
from broadcast.app.ops import drill_service, report_service
from broadcast.app.schema import feature_tables
from broadcast.app.web import WebParts, make_app
from broadcast.audio.cache import AudioCache
from broadcast.audio.config import AudioConfig, audio_config, build_renderer
from broadcast.audio.normalize import normalise_for_speech
from broadcast.audio.playout import LiveProgrammes
from broadcast.audio.render import AudioRenderer
from broadcast.audio.templates import load_templates
from broadcast.clock import Clock, SystemClock
from broadcast.dispatch.dispatcher import Dispatcher
from broadcast.dispatch.links import LinkTracker
from broadcast.dispatch.receipts import ReceiptBook
from broadcast.dispatch.sink import CoreSink
from broadcast.events import BroadcastAiring, BroadcastSettled, DeliveryChanged, Events, LinkChanged
from broadcast.intake.intake import Intake, Refused
from broadcast.interconnect.facade import CountyParts
from broadcast.interconnect.routes import Interconnect
from broadcast.model import LinkState
from broadcast.pipeline.pipeline import Pipeline
from broadcast.pipeline.resume import resume_unfinished
from broadcast.pipeline.script import CountyScript
from broadcast.policy.config import policy_config
from broadcast.policy.desk import Desk
from broadcast.policy.engine import PolicyEngine
from broadcast.reports.jobs import OpsService
from broadcast.retry import RetryPolicy
from broadcast.schedule.drill_service import DrillService
from broadcast.schedule.drills import drill_prerenderer
from broadcast.schedule.jobstore import jobstore_url
from broadcast.schedule.programme_specs import programmes_from_config
from broadcast.schedule.programmes import ProgrammeService
from broadcast.schedule.slots import pipeline_submitter
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

log = logging.getLogger(__name__)


def read_certificates(base: Path, paths: list[str]) -> list[bytes]:
    """PEM certificates named in the configuration (relative paths from the installation). Start-up only."""
    return [(p if p.is_absolute() else base / p).read_bytes() for p in map(Path, paths)]


def bind_listener(host: str, port: int) -> socket.socket:
    """The web server's listening socket, bound before anything is built so the audio URL is known."""
    sock = socket.create_server((host, port), reuse_port=False, backlog=1024)
    sock.setblocking(False)
    return sock


@dataclass(frozen=True)
class Step:
    """One part in the start/stop order: ``start`` runs in list order, ``close`` in reverse."""

    name: str
    start: Callable[[], Awaitable[None]] | None = None
    close: Callable[[], Awaitable[None]] | None = None


@dataclass
class Controller:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    events: Events
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
    feeds: FeedPoller | None
    drills: DrillService | None
    ops: OpsService
    programmes: ProgrammeService
    http: aiohttp.ClientSession
    app: web.Application
    county: CountyParts  # what the upper-platform interconnect may use of this county
    interconnect: Interconnect | None
    web_port: int
    first_admin_password: str | None = None
    _listener: socket.socket | None = None
    _runner: web.AppRunner | None = None
    _steps: list[Step] = field(default_factory=list)
    _started: list[Step] = field(default_factory=list)

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        adapter_factories: dict[str, AdapterFactory] | None = None,
    ) -> Controller:
        clock = clock or SystemClock()
        listener = bind_listener(settings.host, settings.port)
        engine = make_engine(settings.database_url)
        http = aiohttp.ClientSession()  # the one outbound HTTP session (feeds, upper platforms, media)
        try:
            return await cls._build(settings, clock, adapter_factories, listener, engine, http)
        except BaseException:
            listener.close()
            await http.close()
            await engine.dispose()
            raise

    @classmethod
    async def _build(
        cls,
        settings: Settings,
        clock: Clock,
        adapter_factories: dict[str, AdapterFactory] | None,
        listener: socket.socket,
        engine: AsyncEngine,
        http: aiohttp.ClientSession,
    ) -> Controller:
        web_port = int(listener.getsockname()[1])
        await prepare_schema(engine, feature_tables())
        inventory = load_inventory(settings.inventory_path)
        added, updated = await sync_inventory(engine, inventory)
        if added or updated:
            log.info("inventory %s: %d terminals added, %d updated", inventory.name, added, updated)
        registry = AdapterRegistry(clock, adapter_factories)
        registry.build(
            {name: {"platform_code": inventory.platform_code, **cfg} for name, cfg in settings.adapters.items()}
        )
        events = Events()
        links = LinkTracker(engine, events)
        receipts = ReceiptBook(engine, clock, events)
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
        live = LiveProgrammes(renderer, clock)
        audio_base_url = settings.audio_base_url(web_port)
        pipeline = Pipeline(
            engine,
            inventory,
            renderer,
            dispatcher,
            receipts,
            clock,
            events,
            audio_base_url=audio_base_url,
            script=CountyScript(load_templates(), inventory.name, normalise_for_speech),
            live=live,
            repeats_for=audio_cfg.repeats_for,
        )
        desk = Desk(engine, pipeline, PolicyEngine(policy_config(settings.raw.get("policy", {})), clock), clock)
        intake_cfg = settings.raw.get("intake", {})

        def audio_exists(digest: str) -> bool:
            return cache.path_for(digest, "mp3") is not None

        intake = Intake(
            inventory,
            desk,
            clock,
            max_bytes=settings.max_body_bytes,
            audio_exists=audio_exists,
            signature_policy=SignaturePolicy(intake_cfg.get("cap_signature", "verify_if_present")),
            trusted_certs=read_certificates(settings.base_dir, intake_cfg.get("cap_trusted_certs", [])),
        )
        # The way back up: each stage says what happened; these are the only subscriptions.
        events.subscribe(DeliveryChanged, dispatcher.on_delivery_changed)
        events.subscribe(LinkChanged, dispatcher.on_link_changed)
        events.subscribe(BroadcastSettled, pipeline.complete)
        events.subscribe(BroadcastAiring, desk.on_airing)

        async def submit_from_feed(data: bytes, feed: str) -> None:
            try:
                await intake.submit_cap(data, actor=f"feed:{feed}")
            except Refused as exc:
                # Refused for good (malformed, unknown area, expired…): reported, not retried every round.
                log.warning("feed %s: CAP refused: %s", feed, exc.message)

        feed_entries = settings.raw.get("feeds", [])
        feeds = (
            FeedPoller(
                feeds_from_config(feed_entries), session=http, engine=engine, submit=submit_from_feed, clock=clock
            )
            if feed_entries
            else None
        )
        drills = drill_service(
            settings,
            inventory,
            engine,
            clock,
            pipeline_submitter(pipeline),
            prerender=drill_prerenderer(pipeline.script, renderer, repeats_for=audio_cfg.repeats_for),
        )
        ops = report_service(settings, inventory, engine, clock)
        # Daily programmes (日常广播) from ``[[programmes]]`` and approved media-centre submissions;
        # emergencies preempt them. Always built: approving a submission schedules into it.
        programmes = ProgrammeService(
            clock,
            pipeline_submitter(pipeline),
            programmes_from_config(settings.raw.get("programmes", []), inventory.county.code),
            inventory.platform_name or inventory.name,
            inventory.platform_code,
            jobstore_url(settings.database_url, settings.base_dir / "var" / "drill-jobs.sqlite3"),
            engine=engine,
            default_areas=(inventory.county.code,),
            audio_exists=audio_exists,
        )
        app = make_app(
            WebParts(
                engine=engine,
                clock=clock,
                events=events,
                inventory=inventory,
                links=links,
                registry=registry,
                audio_cache=cache,
                renderer=renderer,
                audio_config=audio_cfg,
                live=live,
                intake=intake,
                desk=desk,
                feeds=feeds,
                ops=ops,
                programmes=programmes,
                http=http,
                secure_cookies=bool(settings.raw.get("security", {}).get("secure_cookies", False)),
            )
        )
        county = CountyParts(intake, desk, engine, inventory, links, clock, audio_base_url)
        interconnect = attach_interconnect(
            county,
            app,
            settings.raw.get("interconnect", {}),
            base_dir=settings.base_dir,
            public_url=settings.public_url,
            session=http,
        )
        ctl = cls(
            settings=settings,
            clock=clock,
            engine=engine,
            events=events,
            inventory=inventory,
            registry=registry,
            receipts=receipts,
            links=links,
            dispatcher=dispatcher,
            audio_cache=cache,
            renderer=renderer,
            pipeline=pipeline,
            live=live,
            audio_config=audio_cfg,
            desk=desk,
            intake=intake,
            feeds=feeds,
            drills=drills,
            ops=ops,
            programmes=programmes,
            http=http,
            app=app,
            county=county,
            interconnect=interconnect,
            web_port=web_port,
            _listener=listener,
        )
        ctl._steps = ctl._plan()
        return ctl

    def _plan(self) -> list[Step]:
        feeds_stop = asyncio.Event()
        feeds_task: list[asyncio.Task[None]] = []

        async def start_feeds() -> None:
            if self.feeds is not None:
                await self.feeds.prepare()
                feeds_task.append(asyncio.create_task(self.feeds.run(feeds_stop), name="feeds"))

        async def close_feeds() -> None:
            feeds_stop.set()
            await asyncio.gather(*feeds_task, return_exceptions=True)

        async def restore_and_resume() -> None:
            await self.desk.restore()
            resumed = await resume_unfinished(self.pipeline, self.engine, self.clock)
            if resumed:
                log.info("%d unfinished broadcasts resumed", resumed)
            await self.desk.start()

        steps = [
            Step("receipts", self.receipts.start, self.receipts.close),
            Step("links", self._seed_links, self.links.close),
            Step("web", self._start_web, self._close_web),
            Step("live audio", self.live.warm, self.live.close),  # the chimes and the fallback notice
            Step("accounts", self._accounts),
            Step("adapters", self._start_adapters, self.registry.close_all),
            Step("dispatcher", close=self.dispatcher.close),
            Step("pipeline", close=self.pipeline.close),
            Step("desk", restore_and_resume, self.desk.close),
            Step("feeds", start_feeds, close_feeds),
        ]
        if self.drills is not None:
            steps.append(Step("drills", self.drills.start, self.drills.close))
        steps += [
            Step("reports", self.ops.start, self.ops.close),
            Step("programmes", self.programmes.start, self.programmes.close),
            Step("http client", close=self.http.close),
        ]
        return steps

    async def _seed_links(self) -> None:
        rows = await list_terminals(self.engine)
        # Nothing is connected before adapters start: whatever the last run left is stale.
        self.links.seed(
            {r["resource_code"]: LinkState.OFFLINE for r in rows},
            {r["resource_code"]: r["link_changed_at"] for r in rows if r["link_changed_at"] is not None},
        )
        await self.links.start()

    async def _start_web(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        assert self._listener is not None
        await web.SockSite(self._runner, self._listener, backlog=1024).start()

    async def _close_web(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _accounts(self) -> None:
        await sync_configured_tokens(self.engine, self.clock, self.settings.raw.get("intake", {}).get("tokens", []))
        self.first_admin_password = await accounts.ensure_first_admin(self.engine, self.clock, Passwords(None))

    async def _start_adapters(self) -> None:
        await self.registry.start_all(CoreSink(self.receipts, self.links, self.dispatcher), self.inventory.terminals)

    async def start(
        self, *, extra_setup: Callable[[Controller, web.Application], Awaitable[None]] | None = None
    ) -> None:
        """Start every part in order. ``extra_setup`` may add routes to the web app before it starts
        (tests and benchmarks)."""
        if extra_setup is not None:
            await extra_setup(self, self.app)
        for step in self._steps:
            if step.start is not None:
                await step.start()
            self._started.append(step)

    async def close(self) -> None:
        """Stop what was started, in reverse order; then the database."""
        while self._started:
            step = self._started.pop()
            if step.close is None:
                continue
            try:
                await step.close()
            except Exception:
                log.exception("closing %s failed", step.name)
        if self._listener is not None:
            self._listener.close()
        if not self.http.closed:
            await self.http.close()
        await self.engine.dispose()
