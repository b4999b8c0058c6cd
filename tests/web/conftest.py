"""Fixtures for the web routes: a fresh SQLite database with the full schema and the default county, and
``WebParts`` built by hand from real parts (no ``Controller``), for apps made with ``make_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry import AdapterRegistry
from broadcast.app.schema import feature_tables
from broadcast.app.web import WebParts
from broadcast.audio.cache import AudioCache
from broadcast.audio.config import AudioConfig
from broadcast.audio.playout import LiveProgrammes
from broadcast.audio.render import AudioRenderer
from broadcast.clock import BEIJING, ManualClock
from broadcast.dispatch.dispatcher import Dispatcher
from broadcast.dispatch.links import LinkTracker
from broadcast.dispatch.receipts import ReceiptBook
from broadcast.events import Events
from broadcast.intake.intake import Intake
from broadcast.pipeline.pipeline import Pipeline
from broadcast.policy.config import policy_config
from broadcast.policy.desk import Desk
from broadcast.policy.engine import PolicyEngine
from broadcast.reports.jobs import OpsService
from broadcast.schedule.programmes import ProgrammeService
from broadcast.schedule.slots import pipeline_submitter
from broadcast.store.db import make_engine, prepare_schema
from broadcast.store.inventory import sync_inventory
from terminals.inventory import default_inventory
from terminals.inventory_model import Inventory

NOW = datetime(2026, 11, 20, 12, tzinfo=BEIJING)


@pytest.fixture
def inventory() -> Inventory:
    return default_inventory()


@pytest.fixture
async def engine(tmp_path: Path, inventory: Inventory) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'web.sqlite3'}")
    await prepare_schema(eng, feature_tables())
    await sync_inventory(eng, inventory)
    yield eng
    await eng.dispose()


@pytest.fixture
async def web_parts(tmp_path: Path, engine: AsyncEngine, inventory: Inventory) -> AsyncIterator[WebParts]:
    """Every part the web app uses, wired by hand; nothing started (no adapters, no feeds)."""
    clock = ManualClock(NOW)
    events = Events()
    registry = AdapterRegistry(clock, {})
    receipts = ReceiptBook(engine, clock, events)
    cache = AudioCache(tmp_path / "audio")
    renderer = AudioRenderer(cache)
    pipeline = Pipeline(
        engine,
        inventory,
        renderer,
        Dispatcher(registry, receipts, clock),
        receipts,
        clock,
        events,
        audio_base_url="http://127.0.0.1:1",
    )
    desk = Desk(engine, pipeline, PolicyEngine(policy_config({}), clock), clock)
    async with aiohttp.ClientSession() as http:
        yield WebParts(
            engine=engine,
            clock=clock,
            events=events,
            inventory=inventory,
            links=LinkTracker(engine, events),
            registry=registry,
            audio_cache=cache,
            renderer=renderer,
            audio_config=AudioConfig(),
            live=LiveProgrammes(renderer, clock),
            intake=Intake(inventory, desk, clock, max_bytes=1 << 20),
            desk=desk,
            feeds=None,
            ops=OpsService(engine, inventory, clock),
            programmes=ProgrammeService(
                clock,
                pipeline_submitter(pipeline),
                [],
                inventory.platform_name or inventory.name,
                inventory.platform_code,
                f"sqlite:///{tmp_path / 'jobs.sqlite3'}",
                engine=engine,
            ),
            http=http,
        )
