"""The simulated CMA CAP feed, polled by the real FeedPoller on a manual clock through a scenario:
publication order, conditional GET (304), outage with backoff and recovery, duplicate index entries,
garbage answers, expiry, and the documents themselves read by the real CAP parser."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import BEIJING, ManualClock
from broadcast.sources.cap.convert import to_draft
from broadcast.sources.cap.model import CapMsgType
from broadcast.sources.cap.parse import parse_cap
from broadcast.sources.feeds.config import FeedConfig, FeedErrorKind
from broadcast.sources.feeds.formats import parse_atom
from broadcast.sources.feeds.poller import FeedPoller, feed_seen
from broadcast.store.db import make_engine, prepare_schema
from sim.cap_feed import CapFeedServer, Colour, publication, rainstorm_scenario

START = datetime(2025, 7, 12, 4, 30, tzinfo=BEIJING)
INTERVAL = 60.0


class Intake:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def __call__(self, data: bytes, feed: str) -> None:
        self.received.append(data)

    def identifiers(self) -> list[str]:
        return [parse_cap(d).identifier for d in self.received]


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'feeds.db'}")
    await prepare_schema(eng, (feed_seen,))
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START - timedelta(minutes=1))


@pytest.fixture
async def server(clock: ManualClock) -> AsyncIterator[CapFeedServer]:
    async with CapFeedServer(clock, rainstorm_scenario(START)) as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _poller(
    server: CapFeedServer,
    session: aiohttp.ClientSession,
    engine: AsyncEngine,
    clock: ManualClock,
    intake: Intake,
) -> FeedPoller:
    poller = FeedPoller(
        [FeedConfig("cma", server.index_url, format="atom", interval_s=INTERVAL, timeout_s=5)],
        session=session,
        engine=engine,
        submit=intake,
        clock=clock,
        rng=random.Random(3),
    )
    await poller.prepare()
    return poller


def _health(poller: FeedPoller) -> dict[str, Any]:
    [h] = poller.health()
    return h


async def _advance_and_tick(poller: FeedPoller, clock: ManualClock, until: datetime) -> None:
    """Advance to ``until`` (or to the feed's next due time if later) and poll once."""
    due = poller.next_due()
    assert due is not None
    target = max(until, due)
    clock.advance((target - clock.now()).total_seconds())
    assert await poller.tick() == ["cma"]


async def test_scenario_through_the_real_poller(
    server: CapFeedServer, session: aiohttp.ClientSession, engine: AsyncEngine, clock: ManualClock
) -> None:
    scenario = server.publications
    yellow, fog, orange, lifted, thunder = (p.identifier for p in scenario)
    intake = Intake()
    poller = await _poller(server, session, engine, clock, intake)

    await poller.tick()  # before anything is published: an empty feed
    assert intake.received == []
    assert _health(poller)["status"] == "ok"

    await _advance_and_tick(poller, clock, START)
    assert intake.identifiers() == [yellow]

    await _advance_and_tick(poller, clock, clock.now())  # nothing new: one conditional GET, 304
    assert server.statuses[304] == 1 and _health(poller)["not_modified"] == 1
    assert intake.identifiers() == [yellow]

    await _advance_and_tick(poller, clock, START + timedelta(minutes=5))
    await _advance_and_tick(poller, clock, START + timedelta(minutes=20))
    assert intake.identifiers() == [yellow, fog, orange]
    update = parse_cap(intake.received[-1])
    assert update.msg_type is CapMsgType.UPDATE
    assert [r[1] for r in update.references] == [yellow]

    # Outage: 503 → error in health, exponential backoff (jitter keeps it in [1, 2) x the previous base).
    server.go_down()
    await _advance_and_tick(poller, clock, clock.now())
    h = _health(poller)
    assert h["status"] == "error" and h["consecutive_errors"] == 1
    assert h["last_error"]["kind"] == FeedErrorKind.HTTP_STATUS and "503" in h["last_error"]["message"]
    first_wait = (poller.next_due() or clock.now()) - clock.now()
    assert first_wait >= timedelta(seconds=INTERVAL)
    await _advance_and_tick(poller, clock, clock.now())
    second_wait = (poller.next_due() or clock.now()) - clock.now()
    assert second_wait >= timedelta(seconds=2 * INTERVAL)
    assert _health(poller)["consecutive_errors"] == 2

    # Recovery: the lifting (解除) published meanwhile arrives, with references to both earlier warnings.
    server.come_up()
    await _advance_and_tick(poller, clock, START + timedelta(minutes=60))
    h = _health(poller)
    assert h["status"] == "ok" and h["consecutive_errors"] == 0
    assert intake.identifiers() == [yellow, fog, orange, lifted]
    cancel = parse_cap(intake.received[-1])
    assert cancel.msg_type is CapMsgType.CANCEL
    assert [r[1] for r in cancel.references] == [yellow, orange]
    assert "解除" in to_draft(cancel, now=clock.now()).draft.primary.title

    # The feed lists every entry twice: the new warning is still submitted once.
    server.serve_duplicate()
    await _advance_and_tick(poller, clock, START + timedelta(minutes=90))
    assert intake.identifiers() == [yellow, fog, orange, lifted, thunder]
    assert _health(poller)["items_submitted"] == 5

    # Garbage instead of the index: reported in health, then the next round recovers.
    server.serve_garbage(1)
    await _advance_and_tick(poller, clock, clock.now())
    h = _health(poller)
    assert h["status"] == "error" and h["last_error"]["kind"] == FeedErrorKind.BAD_FORMAT
    await _advance_and_tick(poller, clock, clock.now())
    assert _health(poller)["status"] == "ok"
    assert len(intake.received) == 5


async def test_garbage_document_is_reported_as_bad_cap(
    server: CapFeedServer, session: aiohttp.ClientSession, engine: AsyncEngine, clock: ManualClock
) -> None:
    intake = Intake()
    poller = await _poller(server, session, engine, clock, intake)
    server.serve_garbage(1, "document")
    await _advance_and_tick(poller, clock, START)
    h = _health(poller)
    assert intake.received == []
    assert h["items_rejected"] == 1 and h["last_error"]["kind"] == FeedErrorKind.BAD_CAP


async def test_index_conditional_get_and_expiry(
    server: CapFeedServer, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    clock.advance(6 * 60 + 1)  # START + 5 min: the rainstorm and the fog warnings are out
    async with session.get(server.index_url) as resp:
        assert resp.status == 200
        etag, modified = resp.headers["ETag"], resp.headers["Last-Modified"]
        body = await resp.read()
    items = parse_atom(body, server.index_url)
    fog, yellow = (server.document_url(p.identifier) for p in server.publications[1::-1])
    assert [i.url for i in items] == [fog, yellow]  # newest first
    async with session.get(server.index_url, headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
    async with session.get(server.index_url, headers={"If-Modified-Since": modified}) as resp:
        assert resp.status == 304
    orange, lifted = (server.document_url(p.identifier) for p in server.publications[2:4])
    async with session.get(lifted) as resp:
        assert resp.status == 404  # not published yet
    clock.advance(30 * 60)  # START + 35 min: the fog warning has expired, the orange update is out
    async with session.get(server.index_url, headers={"If-None-Match": etag}) as resp:
        assert resp.status == 200
        assert [i.url for i in parse_atom(await resp.read(), server.index_url)] == [orange, yellow]
    async with session.get(fog) as resp:
        assert resp.status == 200  # an expired document's URL still answers


async def test_slow_feed_times_out_then_recovers(
    server: CapFeedServer, session: aiohttp.ClientSession, engine: AsyncEngine, clock: ManualClock
) -> None:
    intake = Intake()
    poller = FeedPoller(
        [FeedConfig("cma", server.index_url, interval_s=INTERVAL, timeout_s=0.1)],
        session=session,
        engine=engine,
        submit=intake,
        clock=clock,
        rng=random.Random(1),
    )
    await poller.prepare()
    server.slow(0.5)
    await _advance_and_tick(poller, clock, START)
    assert _health(poller)["last_error"]["kind"] == FeedErrorKind.TIMEOUT
    server.slow(0)
    await _advance_and_tick(poller, clock, clock.now())
    assert intake.identifiers() == [server.publications[0].identifier]


def test_documents_are_bilingual_cma_style_and_convert() -> None:
    for p in rainstorm_scenario(START):
        alert = parse_cap(p.document)
        assert [i.language for i in alert.infos] == ["en-US", "zh-CN"]
        assert alert.identifier.startswith("53018141600000_") and alert.warnings == ()
        conv = to_draft(alert, now=p.at)
        assert conv.draft.sender_code == "53018141600000"
        assert all(c.startswith("530181") and len(c) == 12 for c in conv.draft.area_codes)
        assert conv.draft.warnings == ()
    upgrade = publication(START, msg_type="Update", colour=Colour.ORANGE, previous=Colour.YELLOW)
    assert to_draft(parse_cap(upgrade.document), now=START).draft.severity.colour_zh == "橙色"
