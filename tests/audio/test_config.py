"""The [audio] section: defaults, validation with Chinese messages, and the engine chain it builds — run
against the local edge-tts stand-in (never the internet)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import edge_tts.communicate
import pytest

from broadcast.audio.cache import AudioCache
from broadcast.audio.config import AudioConfigError, EngineKind, audio_config, build_chain, build_renderer
from broadcast.audio.encode_options import Loudness
from broadcast.clock import ManualClock
from broadcast.model import Severity
from tests.audio.edge_stub import EdgeStub, StubMode
from tests.audio.helpers import SENTENCE


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


def test_defaults_are_edge_then_offline_with_fast_levelling() -> None:
    cfg = audio_config({"cache_dir": "var/audio", "max_bytes": 1})
    assert cfg.engines == (EngineKind.EDGE, EngineKind.OFFLINE)
    assert cfg.options.loudness is Loudness.GAIN and cfg.options.loudnorm
    assert [cfg.repeats_for(s) for s in (Severity.RED, Severity.ORANGE, Severity.YELLOW, Severity.BLUE)] == [
        3, 2, 1, 1]
    assert cfg.repeats_for(Severity.UNKNOWN) == 1


def test_settings_are_read() -> None:
    cfg = audio_config({
        "engines": ["offline"], "loudness": "off", "mp3_quality": 2, "encode_jobs": 1,
        "edge": {"voice": "zh-CN-YunyangNeural", "rate": "+5%"}, "offline": {"voice": "yue", "rate": 170},
        "repeats": {"red": 4, "blue": 2}, "upload_max_mb": 5, "upload_max_duration_s": 120,
    })
    assert cfg.engines == (EngineKind.OFFLINE,)
    assert not cfg.options.loudnorm and cfg.options.mp3_quality == 2 and cfg.options.encode_jobs == 1
    assert (cfg.edge.voice, cfg.edge.rate, cfg.edge.volume) == ("zh-CN-YunyangNeural", "+5%", "+0%")
    assert (cfg.offline.voice, cfg.offline.rate) == ("yue", 170)
    assert cfg.repeats_for(Severity.RED) == 4 and cfg.repeats_for(Severity.BLUE) == 2
    assert cfg.upload_max_bytes == 5 * 1024 * 1024 and cfg.upload_max_duration_s == 120


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"engines": ["edge", "cloud"]}, "audio.engines"),
        ({"engines": []}, "audio.engines"),
        ({"engines": ["edge", "edge"]}, "audio.engines"),
        ({"loudness": "loud"}, "audio.loudness"),
        ({"mp3_quality": 12}, "audio.mp3_quality"),
        ({"repeats": {"purple": 2}}, "audio.repeats.purple"),
        ({"repeats": {"red": 20}}, "audio.repeats.red"),
        ({"edge": {"speed": "+1%"}}, "audio.edge.speed"),
        ({"offline": {"rate": "fast"}}, "audio.offline.rate"),
        ({"voice": "x"}, "audio.voice"),
    ],
)
def test_bad_settings_name_the_key_in_chinese(section: dict[str, Any], key: str) -> None:
    with pytest.raises(AudioConfigError) as info:
        audio_config(section)
    assert info.value.key == key and key in str(info.value)
    assert any("\u4e00" <= c <= "\u9fff" for c in info.value.message_zh)


def test_bad_edge_rate_fails_when_the_chain_is_built(clock: ManualClock) -> None:
    with pytest.raises(AudioConfigError) as info:
        build_chain(audio_config({"edge": {"rate": "fast"}}), clock)
    assert info.value.key == "audio.edge"


async def test_configured_chain_speaks_with_edge_and_falls_back_once(
    tmp_path: Path, stub: EdgeStub, clock: ManualClock
) -> None:
    cfg = audio_config({"edge": {"voice": "zh-CN-YunyangNeural"}, "engine_backoff_s": 60})
    renderer = build_renderer(AudioCache(tmp_path), cfg, clock)
    out = await renderer.render("", SENTENCE)
    assert (out.ref.engine, out.ref.voice) == ("edge-tts", "zh-CN-YunyangNeural") and stub.texts == [SENTENCE]

    stub.mode = StubMode.REFUSE  # the service goes away
    first = await renderer.render("", SENTENCE + "一")
    assert first.ref.engine == "espeak-ng" and stub.connections == 2
    second = await renderer.render("", SENTENCE + "二")
    assert second.ref.engine == "espeak-ng" and stub.connections == 2  # backed off: no new attempt
    clock.advance(60)
    stub.mode = StubMode.OK
    back = await renderer.render("", SENTENCE + "三")
    assert back.ref.engine == "edge-tts" and stub.connections == 3


async def test_offline_only_never_touches_the_network(tmp_path: Path, stub: EdgeStub, clock: ManualClock) -> None:
    renderer = build_renderer(AudioCache(tmp_path), audio_config({"engines": ["offline"]}), clock)
    out = await renderer.render("", SENTENCE)
    assert out.ref.engine == "espeak-ng" and stub.connections == 0
