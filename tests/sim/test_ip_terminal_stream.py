"""The simulated IP terminal streams its audio: it reports playing when the first audio arrives (the live
programme's opening chime, while the speech is still being rendered), plays until the stream has ended,
and reports a stream that breaks after it started."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web

from broadcast.model import DeliveryStatus, FailureReason
from broadcast.web.live import live_audio_handler
from sim.ip_playback import FETCH_FAILED, STREAM_BROKEN
from sim.mp3 import mpeg_duration
from tests.adapters.ip_speaker.test_adapter import T0, Rig, make_rig
from tests.audio.helpers import SENTENCE
from tests.audio.live_helpers import make_live
from tests.helpers.poll import until

FRAME = bytes.fromhex("FFFB9000") + bytes(417 - 4)  # MPEG-1 layer III 128 kbit/s 44.1 kHz: 26 ms


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async for r in make_rig():
        yield r


class AudioServer:
    """Serves ``/live/<ebm>.mp3`` from a LiveProgrammes registry and ``/broken.mp3`` (a few frames, then
    the connection drops) on 127.0.0.1."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def start(self, app: web.Application) -> None:
        app.router.add_get("/broken.mp3", self._broken)
        app.router.add_get("/html.mp3", self._html)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.base = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def _broken(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        resp.content_length = len(FRAME) * 100  # promise more than will come
        await resp.prepare(request)
        await resp.write(FRAME * 4)
        await self.release.wait()
        assert request.transport is not None
        request.transport.close()
        return resp

    async def _html(self, _request: web.Request) -> web.Response:
        return web.Response(body=b"<html>" + b"x" * 2000 + b"</html>", content_type="audio/mpeg")


async def test_playing_is_reported_before_the_speech_exists(rig: Rig, tmp_path: Path) -> None:
    live, engine, _ = await make_live(tmp_path, fallback=None)
    app = web.Application()
    app.router.add_get("/audio/live/{ebm_id}.mp3", live_audio_handler(live))
    server = AudioServer()
    await server.start(app)
    try:
        code = rig.refs[0].resource_code
        sim = await rig.online(0, time_scale=0.01)
        order = rig.order(url="")
        prog = await live.start(order.ebm_id, "", SENTENCE, expires_at=T0 + timedelta(hours=1))
        order = rig.order(url=f"{server.base}/audio/live/{order.ebm_id}.mp3", ebm_id=order.ebm_id)
        await rig.adapter.deliver(order, code)
        await until(lambda: DeliveryStatus.PLAYING in rig.sink.statuses(order.ebm_id, code))
        assert not prog.settled and sim.playing == order.ebm_id  # on air with only the chime in hand
        engine.gate.set()
        await until(lambda: DeliveryStatus.PLAYED in rig.sink.statuses(order.ebm_id, code), within_s=10)
        (record,) = sim.played
        assert record.completed
        full = prog.full_bytes()
        assert full is not None and mpeg_duration(full) > 3.0
    finally:
        assert server.runner is not None
        await live.close()
        await server.runner.cleanup()


async def test_a_stream_that_breaks_after_it_started_is_reported(rig: Rig) -> None:
    server = AudioServer()
    await server.start(web.Application())
    try:
        code = rig.refs[0].resource_code
        sim = await rig.online(0)
        order = rig.order(url=f"{server.base}/broken.mp3")
        await rig.adapter.deliver(order, code)
        await until(lambda: DeliveryStatus.PLAYING in rig.sink.statuses(order.ebm_id, code))
        server.release.set()
        await until(lambda: DeliveryStatus.FAILED in rig.sink.statuses(order.ebm_id, code))
        failed = rig.sink.events[-1]
        assert failed.reason is FailureReason.PLAYBACK_FAILED and failed.detail == STREAM_BROKEN
        (record,) = sim.played
        assert not record.completed and sim.playing is None and sim.fetch_failures == 1

        html = rig.order(url=f"{server.base}/html.mp3")  # 200 OK but not audio: never "playing"
        await rig.adapter.deliver(html, code)
        await until(lambda: DeliveryStatus.FAILED in rig.sink.statuses(html.ebm_id, code))
        assert rig.sink.statuses(html.ebm_id, code)[-1] is DeliveryStatus.FAILED
        assert DeliveryStatus.PLAYING not in rig.sink.statuses(html.ebm_id, code)
        assert rig.sink.events[-1].detail == FETCH_FAILED and len(sim.played) == 1
    finally:
        server.release.set()
        assert server.runner is not None
        await server.runner.cleanup()


async def test_play_lasts_until_the_stream_ends(rig: Rig) -> None:
    """With time_scale 0 the clock never holds playback: only the stream does."""
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        await resp.prepare(request)
        await resp.write(FRAME * 4)
        await release.wait()
        await resp.write(FRAME * 4)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/slow.mp3", slow)
    server = AudioServer()
    await server.start(app)
    try:
        code = rig.refs[0].resource_code
        sim = await rig.online(0, time_scale=0.0)
        order = rig.order(url=f"{server.base}/slow.mp3")
        await rig.adapter.deliver(order, code)
        await until(lambda: DeliveryStatus.PLAYING in rig.sink.statuses(order.ebm_id, code))
        assert DeliveryStatus.PLAYED not in rig.sink.statuses(order.ebm_id, code)
        assert sim.playing == order.ebm_id
        release.set()
        await until(lambda: DeliveryStatus.PLAYED in rig.sink.statuses(order.ebm_id, code))
    finally:
        release.set()
        assert server.runner is not None
        await server.runner.cleanup()
