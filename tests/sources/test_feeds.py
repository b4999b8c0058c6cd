"""Feed poller against local aiohttp servers: formats, conditional GET, backoff, dedupe across a restart,
hostile responses, credentials and health figures. Time is a ManualClock; nothing sleeps."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import ManualClock
from broadcast.sources.feeds.config import BasicAuth, BearerAuth, FeedConfig, FeedErrorKind, redact_url
from broadcast.sources.feeds.formats import FORMATS, FeedFormatError, FeedItem, parse_atom
from broadcast.sources.feeds.poller import FeedPoller, feed_seen
from broadcast.store.db import make_engine, prepare_schema
from tests.sources.cap_doc import alert, info

BJ = timezone(timedelta(hours=8))
T0 = datetime(2025, 7, 12, 5, 0, tzinfo=BJ)
SENT = ["2025-07-12T04:30:00+08:00", "2025-07-12T04:40:00+08:00", "2025-07-12T04:50:00+08:00"]
DOCS = [alert(info(), identifier=f"53018141600000_2025071204{i}000", sent=SENT[i]) for i in range(3)]


@dataclass
class Feed:
    """A fake feed server: named routes, request counts, ETag/Last-Modified, levers to fail."""

    routes: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    fail_next: int = 0
    fail_status: int = 503
    require_auth: str = ""
    seen_auth: list[str] = field(default_factory=list)
    conditional: bool = True

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] = self.hits.get(path, 0) + 1
        self.seen_auth.append(request.headers.get("Authorization", ""))
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=self.fail_status)
        if self.require_auth and request.headers.get("Authorization") != self.require_auth:
            return web.Response(status=401)
        if path == "/huge":
            resp = web.StreamResponse()  # chunked, no Content-Length: the cap must apply while reading
            await resp.prepare(request)
            for _ in range(64):
                await resp.write(b"<" * 65536)
            return resp
        if path not in self.routes:
            return web.Response(status=404)
        body, ctype = self.routes[path]
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.conditional and request.headers.get("If-None-Match") == etag:
            return web.Response(status=304)
        headers = {"ETag": etag, "Last-Modified": "Sat, 12 Jul 2025 00:00:00 GMT"} if self.conditional else {}
        return web.Response(body=body, content_type=ctype, headers=headers)


@pytest.fixture
async def feed() -> AsyncIterator[tuple[Feed, str]]:
    fake = Feed()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield fake, f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'feeds.db'}")
    await prepare_schema(eng, (feed_seen,))
    try:
        yield eng
    finally:
        await eng.dispose()


class Intake:
    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        self.fail = 0

    async def __call__(self, data: bytes, feed: str) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("store unavailable")
        self.received.append((data, feed))


MakePoller = Callable[..., Awaitable[FeedPoller]]


@pytest.fixture
def make(session: aiohttp.ClientSession, engine: AsyncEngine) -> MakePoller:
    async def _make(*feeds: FeedConfig, intake: Intake, clock: ManualClock, **kw: object) -> FeedPoller:
        poller = FeedPoller(
            feeds,
            session=session,
            engine=engine,
            submit=intake,
            clock=clock,
            rng=random.Random(7),
            **kw,  # type: ignore[arg-type]
        )
        await poller.prepare()
        return poller

    return _make


def atom(*links: str) -> bytes:
    entries = "".join(
        f'<entry><id>{u}</id><title>t</title><link rel="alternate" href="/page"/>'
        f'<link type="application/cap+xml" href="{u}"/></entry>'
        for u in links
    )
    return f'<feed xmlns="http://www.w3.org/2005/Atom"><title>CMA</title>{entries}</feed>'.encode()


def rss(*links: str) -> bytes:
    items = "".join(
        f'<item><title>t</title><enclosure url="{u}" type="application/cap+xml"/></item>' for u in links
    )
    return f'<rss version="2.0"><channel><title>x</title>{items}</channel></rss>'.encode()


def serve_caps(fake: Feed) -> None:
    for i, doc in enumerate(DOCS):
        fake.routes[f"/cap/{i}.xml"] = (doc, "application/cap+xml")


@pytest.mark.parametrize(
    ("fmt", "body", "ctype"),
    [
        ("atom", atom("/cap/0.xml", "cap/1.xml", "/cap/2.xml"), "application/atom+xml"),
        ("rss", rss("/cap/0.xml", "/cap/1.xml", "/cap/2.xml"), "application/rss+xml"),
        (
            "json",
            json.dumps(["/cap/0.xml", {"url": "/cap/1.xml"}, DOCS[2].decode()]).encode(),
            "application/json",
        ),
        ("json", json.dumps({"items": [{"cap": d.decode()} for d in DOCS]}).encode(), "application/json"),
    ],
)
async def test_index_formats_deliver_each_cap_once(
    feed: tuple[Feed, str], make: MakePoller, fmt: str, body: bytes, ctype: str
) -> None:
    fake, base = feed
    serve_caps(fake)
    fake.routes["/feed"] = (body, ctype)
    clock, intake = ManualClock(T0), Intake()
    poller = await make(
        FeedConfig("cma", f"{base}/feed", format=fmt, interval_s=60), intake=intake, clock=clock
    )
    assert await poller.tick() == ["cma"]
    assert sorted(d for d, _ in intake.received) == sorted(DOCS)
    assert {f for _, f in intake.received} == {"cma"}
    assert await poller.tick() == []  # not due yet
    clock.advance(60)
    fake.conditional = False  # the index comes back in full: dedupe must still hold
    assert await poller.tick() == ["cma"]
    assert len(intake.received) == 3
    [h] = poller.health()
    assert h["items_submitted"] == 3 and h["status"] == "ok"


async def test_single_document_format(feed: tuple[Feed, str], make: MakePoller) -> None:
    fake, base = feed
    fake.routes["/latest.xml"] = (DOCS[0], "application/xml")
    clock, intake = ManualClock(T0), Intake()
    poller = await make(
        FeedConfig("one", f"{base}/latest.xml", format="cap", interval_s=30), intake=intake, clock=clock
    )
    await poller.tick()
    fake.routes["/latest.xml"] = (DOCS[1], "application/xml")
    clock.advance(30)
    await poller.tick()
    assert [d for d, _ in intake.received] == [DOCS[0], DOCS[1]]


async def test_conditional_get_304_costs_nothing(feed: tuple[Feed, str], make: MakePoller) -> None:
    fake, base = feed
    serve_caps(fake)
    fake.routes["/feed"] = (atom("/cap/0.xml", "/cap/1.xml"), "application/atom+xml")
    clock, intake = ManualClock(T0), Intake()
    poller = await make(FeedConfig("cma", f"{base}/feed", interval_s=60), intake=intake, clock=clock)
    await poller.tick()
    assert fake.hits == {"/feed": 1, "/cap/0.xml": 1, "/cap/1.xml": 1}
    for _ in range(3):
        clock.advance(60)
        await poller.tick()
    assert fake.hits == {"/feed": 4, "/cap/0.xml": 1, "/cap/1.xml": 1}
    h = poller.health()[0]
    assert (h["not_modified"], h["requests"]) == (3, 6)
    fake.routes["/feed"] = (atom("/cap/0.xml", "/cap/1.xml", "/cap/2.xml"), "application/atom+xml")
    clock.advance(60)
    await poller.tick()
    assert fake.hits["/cap/2.xml"] == 1 and fake.hits["/cap/0.xml"] == 1  # seen links are not refetched
    assert len(intake.received) == 3


async def test_backoff_after_errors_then_recovery(
    feed: tuple[Feed, str], make: MakePoller, caplog: pytest.LogCaptureFixture
) -> None:
    fake, base = feed
    serve_caps(fake)
    fake.routes["/feed"] = (atom("/cap/0.xml"), "application/atom+xml")
    fake.fail_next = 4
    clock, intake = ManualClock(T0), Intake()
    cfg = FeedConfig("cma", f"{base}/feed", interval_s=10, max_backoff_s=100)
    poller = await make(cfg, intake=intake, clock=clock)
    gaps: list[float] = []
    with caplog.at_level(logging.INFO, logger="broadcast.sources.feeds.poller"):
        for _ in range(4):
            await poller.tick()
            due = poller.next_due()
            assert due is not None
            gaps.append((due - clock.now()).total_seconds())
            clock.advance(gaps[-1] - 0.5)
            assert await poller.tick() == []  # not before the backoff delay
            clock.advance(0.5)
        h = poller.health()[0]
        assert h["status"] == "error" and h["consecutive_errors"] == 4
        assert (
            h["last_error"]["kind"] == FeedErrorKind.HTTP_STATUS and "HTTP 503" in h["last_error"]["message"]
        )
        assert intake.received == []
        await poller.tick()
    bounds = [(min(100, 10 * 2**n) * 0.5, min(100, 10 * 2**n)) for n in range(1, 5)]
    assert all(lo <= g <= hi for g, (lo, hi) in zip(gaps, bounds, strict=True)), gaps
    assert gaps[1] > gaps[0] and gaps[2] > gaps[1]
    assert len(intake.received) == 1
    h = poller.health()[0]
    assert h["status"] == "ok" and h["consecutive_errors"] == 0
    assert h["last_success"] == clock.now().isoformat()
    assert (poller.next_due() - clock.now()).total_seconds() == 10  # type: ignore[operator]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("is failing" in m for m in messages) == 1  # logged once going down …
    assert sum("recovered" in m for m in messages) == 1  # … and once coming back


async def test_backoff_jitter_uses_injected_rng(engine: AsyncEngine, session: aiohttp.ClientSession) -> None:
    cfg = FeedConfig("x", "http://127.0.0.1:9/feed", interval_s=10, max_backoff_s=1000)
    delays = []
    for _ in range(2):
        p = FeedPoller(
            [cfg],
            session=session,
            engine=engine,
            submit=Intake(),
            clock=ManualClock(T0),
            rng=random.Random(3),
        )
        delays.append([p.backoff_s(cfg, n) for n in range(1, 8)])
    assert delays[0] == delays[1]
    assert delays[0][-1] <= 1000 and len(set(delays[0])) == 7


async def test_failed_submit_is_retried_next_round(feed: tuple[Feed, str], make: MakePoller) -> None:
    fake, base = feed
    serve_caps(fake)
    fake.routes["/feed"] = (atom("/cap/0.xml", "/cap/1.xml"), "application/atom+xml")
    clock, intake = ManualClock(T0), Intake()
    intake.fail = 1
    poller = await make(FeedConfig("cma", f"{base}/feed", interval_s=60), intake=intake, clock=clock)
    await poller.tick()
    assert [d for d, _ in intake.received] == [DOCS[1]]
    assert poller.health()[0]["last_error"]["kind"] == FeedErrorKind.SUBMIT
    clock.advance(60)
    await poller.tick()  # the index must be fetched in full again (no 304), and only item 0 resubmitted
    assert [d for d, _ in intake.received] == [DOCS[1], DOCS[0]]
    assert poller.health()[0]["not_modified"] == 0
    clock.advance(60)
    await poller.tick()
    assert poller.health()[0]["not_modified"] == 1


async def test_dedupe_across_restart(feed: tuple[Feed, str], make: MakePoller) -> None:
    fake, base = feed
    fake.routes["/feed"] = (json.dumps([d.decode() for d in DOCS[:2]]).encode(), "application/json")
    clock, intake = ManualClock(T0), Intake()
    cfg = FeedConfig("cma", f"{base}/feed", format="json", interval_s=60)
    first = await make(cfg, intake=intake, clock=clock)
    await first.tick()
    assert len(intake.received) == 2
    fake.routes["/feed"] = (json.dumps([d.decode() for d in DOCS]).encode(), "application/json")
    clock.advance(600)
    second = await make(cfg, intake=intake, clock=clock)  # a restart: same database, fresh memory
    assert second.health()[0]["lag_s"] == (clock.now() - datetime.fromisoformat(SENT[1])).total_seconds()
    await second.tick()
    assert [d for d, _ in intake.received] == [DOCS[0], DOCS[1], DOCS[2]]
    h = second.health()[0]
    assert (h["items_submitted"], h["items_duplicate"]) == (1, 2)


async def test_same_cap_from_two_feeds_goes_once(feed: tuple[Feed, str], make: MakePoller) -> None:
    fake, base = feed
    serve_caps(fake)
    fake.routes["/a"] = (atom("/cap/0.xml"), "application/atom+xml")
    fake.routes["/b"] = (rss("/cap/0.xml"), "application/rss+xml")
    clock, intake = ManualClock(T0), Intake()
    poller = await make(
        FeedConfig("a", f"{base}/a"), FeedConfig("b", f"{base}/b", format="rss"), intake=intake, clock=clock
    )
    await poller.tick()
    clock.advance(60)
    await poller.tick()
    assert len(intake.received) == 1


async def test_health_figures(feed: tuple[Feed, str], make: MakePoller) -> None:
    fake, base = feed
    serve_caps(fake)
    fake.routes["/bad.xml"] = (b"<alert>not closed", "application/xml")
    fake.routes["/feed"] = (atom("/cap/0.xml", "/cap/2.xml", "/bad.xml"), "application/atom+xml")
    clock, intake = ManualClock(T0), Intake()
    url = f"{base.replace('http://', 'http://user:secret@')}/feed?token=abc"
    poller = await make(FeedConfig("cma", url), intake=intake, clock=clock)
    assert poller.health()[0]["status"] == "pending"
    await poller.tick()
    clock.advance(25)
    [h] = poller.health()
    assert h["url"] == f"{base}/feed?…"
    assert h["items_seen"] == 3 and h["items_submitted"] == 2 and h["items_rejected"] == 1
    assert h["newest_sent"] == datetime.fromisoformat(SENT[2]).isoformat()
    assert h["lag_s"] == (clock.now() - datetime.fromisoformat(SENT[2])).total_seconds()
    assert h["last_error"]["kind"] == FeedErrorKind.BAD_CAP
    assert "secret" not in json.dumps(h, ensure_ascii=False) and "abc" not in json.dumps(h)
    clock.advance(60)
    await poller.tick()
    assert poller.health()[0]["items_rejected"] == 1  # a bad document is reported once, not every round


@pytest.mark.parametrize("path", ["/huge", "/big"])
async def test_oversized_response_is_cut_off(feed: tuple[Feed, str], make: MakePoller, path: str) -> None:
    fake, base = feed
    fake.routes["/big"] = (b"x" * 200_000, "application/json")
    clock, intake = ManualClock(T0), Intake()
    poller = await make(
        FeedConfig("h", f"{base}{path}", format="json", max_bytes=100_000), intake=intake, clock=clock
    )
    await poller.tick()
    h = poller.health()[0]
    assert h["last_error"]["kind"] == FeedErrorKind.TOO_LARGE and h["status"] == "error"


@pytest.mark.parametrize(
    ("body", "fmt"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><feed xmlns="http://www.w3.org/2005/Atom"/>',
            "atom",
        ),
        (b"<html><body>login</body></html>", "atom"),
        (b"<rss><channel>", "rss"),
        (b'{"not": "a list"}', "json"),
        (b"[42]", "json"),
    ],
)
async def test_hostile_or_wrong_index_is_a_feed_error(
    feed: tuple[Feed, str], make: MakePoller, body: bytes, fmt: str
) -> None:
    fake, base = feed
    fake.routes["/feed"] = (body, "text/plain")
    clock, intake = ManualClock(T0), Intake()
    poller = await make(FeedConfig("h", f"{base}/feed", format=fmt), intake=intake, clock=clock)
    await poller.tick()
    h = poller.health()[0]
    assert h["last_error"]["kind"] == FeedErrorKind.BAD_FORMAT
    assert h["consecutive_errors"] == 1 and intake.received == []


@pytest.mark.parametrize(
    ("auth", "header"),
    [
        (BasicAuth("relay", "pa55"), "Basic cmVsYXk6cGE1NQ=="),
        (BearerAuth("tok-123"), "Bearer tok-123"),
    ],
)
async def test_credentials_sent_to_the_feed_only(
    feed: tuple[Feed, str], make: MakePoller, auth: BasicAuth | BearerAuth, header: str
) -> None:
    fake, base = feed
    serve_caps(fake)
    other = base.replace("127.0.0.1", "localhost")  # another origin: must not receive the credentials
    fake.routes["/feed"] = (atom("/cap/0.xml", f"{other}/cap/1.xml"), "application/atom+xml")
    fake.require_auth = header
    clock, intake = ManualClock(T0), Intake()
    poller = await make(FeedConfig("s", f"{base}/feed", auth=auth), intake=intake, clock=clock)
    await poller.tick()
    assert fake.seen_auth[:2] == [header, header]
    assert fake.seen_auth[2] == ""  # the foreign link got no Authorization (and was refused: 401)
    assert [d for d, _ in intake.received] == [DOCS[0]]
    assert "pa55" not in repr(auth) and "tok-123" not in repr(auth)
    assert poller.health()[0]["last_error"]["kind"] == FeedErrorKind.ITEM_FETCH


async def test_unreachable_feed_is_a_connect_error(make: MakePoller) -> None:
    clock, intake = ManualClock(T0), Intake()
    poller = await make(FeedConfig("dead", "http://127.0.0.1:9/feed"), intake=intake, clock=clock)
    await poller.tick()
    assert poller.health()[0]["last_error"]["kind"] == FeedErrorKind.CONNECT


async def test_custom_format_registry(feed: tuple[Feed, str], make: MakePoller) -> None:
    fake, base = feed
    serve_caps(fake)
    fake.routes["/list.txt"] = (b"/cap/0.xml\n/cap/1.xml\n", "text/plain")

    def parse_lines(body: bytes, base_url: str) -> list[FeedItem]:
        return [FeedItem(url=base_url.rsplit("/", 1)[0] + line) for line in body.decode().split()]

    clock, intake = ManualClock(T0), Intake()
    poller = await make(
        FeedConfig("txt", f"{base}/list.txt", format="lines"),
        intake=intake,
        clock=clock,
        formats={**FORMATS, "lines": parse_lines},
    )
    await poller.tick()
    assert len(intake.received) == 2


def test_config_errors_and_redaction(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        FeedPoller(
            [FeedConfig("x", "http://h/f", format="gopher")],
            session=None,  # type: ignore[arg-type]
            engine=engine,
            submit=Intake(),
            clock=ManualClock(T0),
        )
    assert redact_url("https://u:p@h.example:8443/a/b?key=1") == "https://h.example:8443/a/b?…"


def test_atom_inline_content_and_link_choice() -> None:
    body = (
        '<feed xmlns="http://www.w3.org/2005/Atom">'
        '<entry><link href="https://x/alt"/><link rel="enclosure" href="https://x/enc"/></entry>'
        f'<entry><content type="application/cap+xml">{DOCS[0].decode().split("?>", 1)[-1]}</content></entry>'
        "</feed>"
    ).encode()
    items = parse_atom(body, "https://x/feed")
    assert items[0] == FeedItem(url="https://x/enc")
    assert b"53018141600000_20250712040000" in items[1].data
    with pytest.raises(FeedFormatError):
        parse_atom(b"<feed", "https://x/")


async def test_run_loop_polls_until_stopped(
    feed: tuple[Feed, str], session: aiohttp.ClientSession, engine: AsyncEngine
) -> None:
    import asyncio

    from broadcast.clock import SystemClock

    fake, base = feed
    fake.routes["/feed"] = (DOCS[0], "application/xml")
    got = asyncio.Event()

    async def intake(data: bytes, feed: str) -> None:
        got.set()

    poller = FeedPoller(
        [FeedConfig("one", f"{base}/feed", format="cap", interval_s=3600)],
        session=session,
        engine=engine,
        submit=intake,
        clock=SystemClock(),
    )
    await poller.prepare()
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    await asyncio.wait_for(got.wait(), timeout=5)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert fake.hits["/feed"] == 1 and poller.health()[0]["items_submitted"] == 1


# --- a CAP that fails to parse is retried, not written off ------------------------------------------


async def test_garbled_fetch_is_retried_and_the_alert_still_arrives(
    feed: tuple[Feed, str], make: MakePoller
) -> None:
    fake, base = feed
    serve_caps(fake)
    fake.routes["/cap/0.xml"] = (DOCS[0][: len(DOCS[0]) // 2], "application/cap+xml")  # cut off mid-way
    fake.routes["/feed"] = (atom("/cap/0.xml", "/cap/1.xml"), "application/atom+xml")
    clock, intake = ManualClock(T0), Intake()
    poller = await make(FeedConfig("cma", f"{base}/feed", interval_s=60), intake=intake, clock=clock)
    await poller.tick()
    assert [d for d, _ in intake.received] == [DOCS[1]]
    h = poller.health()[0]
    assert (h["items_rejected"], h["items_retrying"]) == (1, 1)
    assert h["last_error"]["kind"] == FeedErrorKind.BAD_CAP and "下一轮" in h["last_error"]["message"]
    serve_caps(fake)  # the source serves the whole document again
    clock.advance(60)
    await poller.tick()
    assert [d for d, _ in intake.received] == [DOCS[1], DOCS[0]]
    assert fake.hits["/cap/0.xml"] == 2 and fake.hits["/cap/1.xml"] == 1
    h = poller.health()[0]
    assert (h["items_submitted"], h["items_rejected"], h["items_retrying"]) == (2, 0, 0)
    clock.advance(60)
    await poller.tick()  # everything processed: the index is unchanged (304), nothing is fetched
    assert poller.health()[0]["not_modified"] == 1 and fake.hits["/cap/0.xml"] == 2


async def test_bad_document_is_given_up_after_three_rounds_even_with_the_same_bytes(
    feed: tuple[Feed, str], make: MakePoller
) -> None:
    fake, base = feed
    fake.routes["/bad.xml"] = (b"<alert>not closed", "application/xml")
    fake.routes["/feed"] = (atom("/bad.xml"), "application/atom+xml")
    clock, intake = ManualClock(T0), Intake()
    poller = await make(FeedConfig("cma", f"{base}/feed", interval_s=60), intake=intake, clock=clock)
    for round_no in range(1, 4):
        await poller.tick()
        assert fake.hits["/bad.xml"] == round_no  # identical bytes in rounds 1 and 2: still retried
        clock.advance(60)
    h = poller.health()[0]
    assert "不再重试" in h["last_error"]["message"] and "3" in h["last_error"]["message"]
    assert (h["items_rejected"], h["items_retrying"], h["not_modified"]) == (1, 0, 0)
    for _ in range(2):
        await poller.tick()
        clock.advance(60)
    assert fake.hits["/bad.xml"] == 3  # given up: never fetched again
    assert poller.health()[0]["not_modified"] == 2 and intake.received == []


async def test_different_garbage_each_round_is_given_up_after_three(
    feed: tuple[Feed, str], make: MakePoller
) -> None:
    fake, base = feed
    fake.routes["/feed"] = (atom("/cap/9.xml"), "application/atom+xml")
    clock, intake = ManualClock(T0), Intake()
    poller = await make(FeedConfig("cma", f"{base}/feed", interval_s=60), intake=intake, clock=clock)
    for round_no in range(1, 6):
        fake.routes["/cap/9.xml"] = (DOCS[0][: 40 + 10 * round_no], "application/cap+xml")
        await poller.tick()
        clock.advance(60)
    assert fake.hits["/cap/9.xml"] == 3 and intake.received == []
    assert poller.health()[0]["items_rejected"] == 1


async def test_a_fetch_error_does_not_end_a_parse_failure_streak(
    feed: tuple[Feed, str], make: MakePoller
) -> None:
    fake, base = feed
    fake.routes["/cap/0.xml"] = (b"<alert>", "application/cap+xml")
    fake.routes["/feed"] = (atom("/cap/0.xml"), "application/atom+xml")
    clock, intake = ManualClock(T0), Intake()
    poller = await make(FeedConfig("cma", f"{base}/feed", interval_s=60), intake=intake, clock=clock)
    await poller.tick()
    del fake.routes["/cap/0.xml"]  # 404 for a round
    clock.advance(60)
    await poller.tick()
    assert poller.health()[0]["items_retrying"] == 1
    serve_caps(fake)
    clock.advance(60)
    await poller.tick()
    assert [d for d, _ in intake.received] == [DOCS[0]]
    assert poller.health()[0]["items_rejected"] == 0


async def test_inline_garbage_replaced_by_a_good_document_ends_the_streak(
    feed: tuple[Feed, str], make: MakePoller
) -> None:
    fake, base = feed
    fake.routes["/feed"] = (json.dumps([DOCS[0].decode()[:-30]]).encode(), "application/json")
    clock, intake = ManualClock(T0), Intake()
    poller = await make(
        FeedConfig("cma", f"{base}/feed", format="json", interval_s=60), intake=intake, clock=clock
    )
    await poller.tick()
    assert poller.health()[0]["items_retrying"] == 1
    fake.routes["/feed"] = (json.dumps([DOCS[0].decode()]).encode(), "application/json")
    clock.advance(60)
    await poller.tick()
    assert [d for d, _ in intake.received] == [DOCS[0]]
    h = poller.health()[0]
    assert (h["items_submitted"], h["items_rejected"], h["items_retrying"]) == (1, 0, 0)


# --- order within one round -------------------------------------------------------------------------

ORIGINAL = DOCS[0]
REF = f"Anning_Meteorological_Observatory,53018141600000_20250712040000,{SENT[0]}"
UPDATE = alert(
    info(), identifier="53018141600000_20250712044000", sent=SENT[1], msg_type="Update", references=REF
)
CANCEL = alert(
    info(), identifier="53018141600000_20250712045000", sent=SENT[2], msg_type="Cancel", references=REF
)


@pytest.mark.parametrize("fmt", ["atom", "json"])
async def test_round_is_submitted_oldest_first(feed: tuple[Feed, str], make: MakePoller, fmt: str) -> None:
    fake, base = feed
    for path, doc in (("/c.xml", CANCEL), ("/u.xml", UPDATE), ("/a.xml", ORIGINAL)):
        fake.routes[path] = (doc, "application/cap+xml")
    if fmt == "atom":  # newest first, as feeds list them
        fake.routes["/feed"] = (atom("/c.xml", "/u.xml", "/a.xml"), "application/atom+xml")
    else:  # inline documents, listed in a muddled order
        body = json.dumps([UPDATE.decode(), CANCEL.decode(), ORIGINAL.decode()]).encode()
        fake.routes["/feed"] = (body, "application/json")
    clock, intake = ManualClock(T0), Intake()
    poller = await make(FeedConfig("cma", f"{base}/feed", format=fmt), intake=intake, clock=clock)
    await poller.tick()
    assert [d for d, _ in intake.received] == [ORIGINAL, UPDATE, CANCEL]


async def test_equal_sent_times_go_in_reverse_listing_order(feed: tuple[Feed, str], make: MakePoller) -> None:
    fake, base = feed
    same = [alert(info(), identifier=f"53018141600000_X{i}", sent=SENT[0]) for i in range(3)]
    fake.routes["/feed"] = (json.dumps([d.decode() for d in same]).encode(), "application/json")
    clock, intake = ManualClock(T0), Intake()
    poller = await make(FeedConfig("cma", f"{base}/feed", format="json"), intake=intake, clock=clock)
    await poller.tick()
    assert [d for d, _ in intake.received] == same[::-1]


async def test_order_holds_when_the_original_submit_fails(feed: tuple[Feed, str], make: MakePoller) -> None:
    fake, base = feed
    body = json.dumps([UPDATE.decode(), ORIGINAL.decode()]).encode()
    fake.routes["/feed"] = (body, "application/json")
    clock, intake = ManualClock(T0), Intake()
    intake.fail = 1  # the first submit (the original Alert) fails and is retried next round
    poller = await make(FeedConfig("cma", f"{base}/feed", format="json"), intake=intake, clock=clock)
    await poller.tick()
    assert intake.received == []  # the Update waits for its Alert
    assert poller.health()[0]["last_error"]["kind"] == FeedErrorKind.SUBMIT
    clock.advance(60)
    await poller.tick()
    assert [d for d, _ in intake.received] == [ORIGINAL, UPDATE]
