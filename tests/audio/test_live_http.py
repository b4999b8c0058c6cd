"""``GET /audio/live/{ebm_id}.mp3`` over real HTTP on 127.0.0.1: the opening chime arrives while the
speech is still being rendered, the download is one valid MP3, failures end cleanly, many clients get
identical bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from broadcast.audio.playout import LiveProgrammes
from broadcast.web.live import live_audio_handler
from tests.audio.helpers import SENTENCE
from tests.audio.live_helpers import T0, GatedEngine, decode_mp3, ebm, make_live
from tests.helpers.poll import until

END = T0 + timedelta(hours=1)


class Rig:
    def __init__(self, live: LiveProgrammes, engine: GatedEngine, base: str, http: aiohttp.ClientSession):
        self.live, self.engine, self.base, self.http = live, engine, base, http

    def url(self, ebm_id: str) -> str:
        return f"{self.base}/audio/live/{ebm_id}.mp3"


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    live, engine, _clock = await make_live(tmp_path)
    app = web.Application()
    app.router.add_get("/audio/live/{ebm_id}.mp3", live_audio_handler(live))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        yield Rig(live, engine, base, http)
    engine.gate.set()
    await live.close()
    await runner.cleanup()


async def test_first_bytes_arrive_before_the_speech_is_rendered(rig: Rig, tmp_path: Path) -> None:
    prog = await rig.live.start(ebm(1), "暴雨预警", SENTENCE, expires_at=END)
    async with rig.http.get(rig.url(ebm(1))) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "audio/mpeg"
        assert resp.headers.get("Transfer-Encoding") == "chunked"
        head = await resp.content.readexactly(len(prog.opening))
        assert head == prog.opening
        await until(lambda: rig.engine.waiting == 1)
        assert not prog.settled  # the engine is holding the speech: nothing more can have been sent
        rig.engine.gate.set()
        whole = head + await resp.read()
    assert whole == prog.full_bytes()
    seconds, complaints = decode_mp3(whole, tmp_path)
    ref = await prog.result()
    assert complaints == "" and abs(ref.duration_s - seconds) < 0.03


async def test_a_failed_render_ends_the_stream_cleanly(rig: Rig) -> None:
    chimes = await rig.live.renderer.chime_segments()
    rig.engine.fail = True
    prog = await rig.live.start(ebm(2), "", SENTENCE, expires_at=END)
    async with rig.http.get(rig.url(ebm(2))) as resp:
        assert await resp.content.readexactly(len(prog.opening)) == prog.opening
        rig.engine.gate.set()
        rest = await resp.read()
    assert rest.endswith(chimes.closing) and len(rest) > len(chimes.closing)  # fallback notice + closing
    assert prog.error is not None and prog.error.ebm_id == ebm(2)


async def test_a_hundred_clients_get_identical_bytes(rig: Rig) -> None:
    prog = await rig.live.start(ebm(3), "", SENTENCE, expires_at=END)

    async def fetch() -> bytes:
        async with rig.http.get(rig.url(ebm(3))) as resp:
            assert resp.status == 200
            return await resp.read()

    clients = [asyncio.create_task(fetch()) for _ in range(100)]
    await until(lambda: prog.streams_served == 100)
    assert not prog.settled
    rig.engine.gate.set()
    bodies = await asyncio.gather(*clients)
    assert len(set(bodies)) == 1 and bodies[0] == prog.full_bytes()
    assert rig.engine.calls == [SENTENCE]
    async with rig.http.get(rig.url(ebm(3))) as late:  # after it settled: whole, with a length
        assert late.content_length == len(bodies[0])
        assert await late.read() == bodies[0]


async def test_unknown_malformed_and_head(rig: Rig) -> None:
    for name in (ebm(9), "not-an-ebm-id", ebm(1) + "0"):
        async with rig.http.get(f"{rig.base}/audio/live/{name}.mp3") as resp:
            assert resp.status == 404
            body = await resp.json()
            assert body["error"] == "not_found" and "请改用" in body["message"]
    prog = await rig.live.start(ebm(4), "", SENTENCE, expires_at=END)
    async with rig.http.head(rig.url(ebm(4))) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "audio/mpeg"
    assert prog.streams_served == 0


async def test_a_client_hanging_up_does_not_disturb_the_others(rig: Rig) -> None:
    prog = await rig.live.start(ebm(5), "", SENTENCE, expires_at=END)
    quitter = await rig.http.get(rig.url(ebm(5)))
    await quitter.content.readexactly(len(prog.opening))
    quitter.close()
    async with rig.http.get(rig.url(ebm(5))) as resp:
        await resp.content.readexactly(len(prog.opening))
        rig.engine.gate.set()
        rest = await resp.read()
    assert prog.opening + rest == prog.full_bytes()
