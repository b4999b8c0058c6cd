"""edge-tts against a local stand-in of its service: success, slow, garbage, disconnect, dead network.

Never contacts the internet: ``edge_tts.communicate.WSS_URL`` points at 127.0.0.1 for every test here.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import edge_tts.communicate
import pytest

from broadcast.audio.cache import AudioCache
from broadcast.audio.edge import EdgeTtsEngine
from broadcast.audio.encode_options import EncodeOptions
from broadcast.audio.engines import EngineChain, Speech, SpeechFormat, TtsError, TtsFailure
from broadcast.audio.espeak import EspeakEngine
from broadcast.audio.render import AudioRenderer
from broadcast.clock import ManualClock
from tests.audio.edge_stub import EdgeStub, StubMode
from tests.audio.helpers import SENTENCE, CountingEngine, decode

TITLE = "暴雨红色预警"


@pytest.fixture
async def stub(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[EdgeStub]:
    s = EdgeStub()
    await s.start()
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", s.url)
    yield s
    await s.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 7, 1, tzinfo=UTC))


def edge(voice: str = "zh-CN-YunyangNeural") -> EdgeTtsEngine:
    return EdgeTtsEngine(voice, connect_timeout_s=1, receive_timeout_s=1, total_timeout_s=0.3)


def renderer(tmp_path: Path, clock: ManualClock) -> tuple[AudioRenderer, CountingEngine, EngineChain]:
    offline = CountingEngine(EspeakEngine())
    chain = EngineChain([edge(), offline], clock=clock, backoff_s=60)
    # loudness normalisation is covered in test_render; skipping it here keeps these tests fast
    return AudioRenderer(AudioCache(tmp_path), chain, options=EncodeOptions(loudnorm=False)), offline, chain


async def test_edge_speech_is_used_and_recorded(tmp_path: Path, stub: EdgeStub, clock: ManualClock) -> None:
    speech = await edge().synth(SENTENCE)
    assert speech.format is SpeechFormat.MP3 and speech.sample_rate == 24_000
    assert stub.texts == [SENTENCE]

    render, offline, _ = renderer(tmp_path, clock)
    out = await render.render(TITLE, SENTENCE)
    assert (out.ref.engine, out.ref.voice) == ("edge-tts", "zh-CN-YunyangNeural")
    assert stub.texts[1:] == [TITLE, SENTENCE] and offline.calls == []
    seg = decode(out.path)
    assert abs(len(seg) / 1000 - out.ref.duration_s) < 0.2
    assert out.ref.duration_s > 3.0 + 0.15 * 29  # chimes + the stub's 0.15 s per character


@pytest.mark.parametrize(
    ("mode", "failure"),
    [
        (StubMode.HANG, TtsFailure.TIMEOUT),
        (StubMode.GARBAGE, TtsFailure.BAD_RESPONSE),
        (StubMode.DISCONNECT, TtsFailure.BAD_RESPONSE),
        (StubMode.REFUSE, TtsFailure.UNAVAILABLE),
    ],
)
async def test_broken_service_falls_back_to_offline(
    tmp_path: Path, stub: EdgeStub, clock: ManualClock, mode: StubMode, failure: TtsFailure
) -> None:
    stub.mode = mode
    with pytest.raises(TtsError) as info:
        await edge().synth(SENTENCE)
    assert info.value.failure is failure and info.value.engine == "edge-tts"

    render, offline, chain = renderer(tmp_path, clock)
    out = await render.render(TITLE, SENTENCE)
    assert (out.ref.engine, out.ref.voice) == ("espeak-ng", "cmn")
    assert offline.calls == [TITLE, SENTENCE]
    assert decode(out.path).duration_seconds > 3.0
    assert not chain.available(chain.engines[0])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_dead_network_costs_nothing_after_the_first_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", f"ws://127.0.0.1:{closed_port()}/edge/v1?x=1")
    render, offline, chain = renderer(tmp_path, clock)
    attempts: list[str] = []
    online = chain.engines[0]
    original = online.synth

    async def counted(text: str) -> Speech:
        attempts.append(text)
        return await original(text)

    monkeypatch.setattr(online, "synth", counted)
    first = await render.render("", "第一条通知。")
    assert first.ref.engine == "espeak-ng" and attempts == ["第一条通知。"]
    for i in range(3):
        out = await render.render("", f"第{i + 2}条通知。")
        assert out.ref.engine == "espeak-ng"
    assert len(attempts) == 1  # backed off: no connection attempts at all
    clock.advance(60)
    await render.render("", "第五条通知。")
    assert len(attempts) == 2  # one probe per back-off period
    assert len(offline.calls) == 5


async def test_cached_fallback_is_used_only_while_the_better_engine_is_down(
    tmp_path: Path, stub: EdgeStub, clock: ManualClock
) -> None:
    render, offline, _ = renderer(tmp_path, clock)
    stub.mode = StubMode.REFUSE
    down = await render.render(TITLE, SENTENCE)
    assert down.ref.engine == "espeak-ng" and stub.connections == 1
    again = await render.render(TITLE, SENTENCE)
    assert again.from_cache and again.ref == down.ref
    assert stub.connections == 1 and len(offline.calls) == 2

    stub.mode = StubMode.OK
    clock.advance(60)
    better = await render.render(TITLE, SENTENCE)
    assert better.ref.engine == "edge-tts" and not better.from_cache
    cached = await render.render(TITLE, SENTENCE)
    assert cached.from_cache and cached.ref == better.ref
    assert stub.texts.count(SENTENCE) == 1


def test_bad_voice_settings_fail_at_configuration() -> None:
    with pytest.raises(ValueError):
        EdgeTtsEngine("zh-CN-XiaoxiaoNeural", rate="fast")
