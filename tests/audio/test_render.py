"""AudioRenderer with the real offline engine and the real ffmpeg: layout, formats, cache hits."""

from __future__ import annotations

import asyncio
import hashlib
import wave
from pathlib import Path

import pytest

from broadcast.audio.cache import AudioCache
from broadcast.audio.encode_options import EncodeOptions, OutputFormat
from broadcast.audio.espeak import EspeakEngine
from broadcast.audio.render import AudioRenderer
from broadcast.audio.tone import CLOSING_NOTES_HZ, OPENING_NOTES_HZ
from tests.audio.helpers import SENTENCE, CountingEngine, decode, samples, tone_fraction

TITLE = "暴雨红色预警"


@pytest.fixture
def engine() -> CountingEngine:
    return CountingEngine(EspeakEngine())


async def test_renders_decodable_mp3_that_starts_and_ends_with_the_chime(
    tmp_path: Path, engine: CountingEngine
) -> None:
    renderer = AudioRenderer(AudioCache(tmp_path), [engine])
    out = await renderer.render(TITLE, SENTENCE)
    assert out.path.read_bytes()[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")  # MPEG audio frame sync
    assert out.ref.digest == hashlib.sha256(out.path.read_bytes()).hexdigest()
    assert (out.ref.format, out.ref.engine, out.ref.voice) == ("mp3", "espeak-ng", "cmn")
    assert engine.calls == [TITLE, SENTENCE]

    seg = decode(out.path)
    assert seg.channels == 1 and seg.frame_rate == 24_000
    assert abs(len(seg) / 1000 - out.ref.duration_s) < 0.2
    # two 1.5 s chimes plus 29 characters of speech
    assert 3.0 + 0.1 * 29 < out.ref.duration_s < 3.0 + 1.0 * 29
    bitrate_kbps = out.path.stat().st_size * 8 / 1000 / out.ref.duration_s
    assert 40 < bitrate_kbps < 70

    xs = samples(seg)
    rate = seg.frame_rate
    first = xs[int(0.05 * rate) : int(0.6 * rate)]  # first note of the opening chime
    second = xs[int(0.75 * rate) : int(1.3 * rate)]
    assert seg[:1000].dBFS > -30  # not silence
    assert tone_fraction(first, rate, OPENING_NOTES_HZ[0]) > 0.7
    assert tone_fraction(second, rate, OPENING_NOTES_HZ[1]) > 0.7
    assert tone_fraction(first, rate, OPENING_NOTES_HZ[1]) < 0.3
    speech = xs[int(2.2 * rate) : int(4.0 * rate)]
    assert tone_fraction(speech, rate, OPENING_NOTES_HZ[0]) < 0.3  # speech is not the chime
    end = len(xs) - int(0.8 * rate)  # last note of the closing chime starts ≈0.8 s before the end
    assert tone_fraction(xs[end + int(0.05 * rate) : end + int(0.6 * rate)], rate, CLOSING_NOTES_HZ[1]) > 0.7


async def test_second_render_is_a_cache_hit_even_after_restart(
    tmp_path: Path, engine: CountingEngine
) -> None:
    first = await AudioRenderer(AudioCache(tmp_path), [engine]).render(TITLE, SENTENCE, repeats=2)
    calls = len(engine.calls)
    again = await AudioRenderer(AudioCache(tmp_path), [engine]).render(TITLE, SENTENCE, repeats=2)
    assert len(engine.calls) == calls
    assert again.from_cache and not first.from_cache
    assert again.ref == first.ref and again.path == first.path
    # anything that changes the sound is a different programme
    await AudioRenderer(AudioCache(tmp_path), [engine]).render(TITLE, SENTENCE, repeats=3)
    assert len(engine.calls) == calls + 2


async def test_repeats_lengthen_the_programme(tmp_path: Path, engine: CountingEngine) -> None:
    renderer = AudioRenderer(AudioCache(tmp_path), [engine])
    once = await renderer.render("", SENTENCE)
    twice = await renderer.render("", SENTENCE, repeats=2, gap_s=2.0)
    speech_s = once.ref.duration_s - 3.0 - 0.8  # chimes, lead-in and lead-out
    assert twice.ref.duration_s == pytest.approx(once.ref.duration_s + speech_s + 2.0, abs=0.1)
    assert engine.calls == [SENTENCE, SENTENCE]


async def test_concurrent_identical_renders_synthesise_once(tmp_path: Path, engine: CountingEngine) -> None:
    renderer = AudioRenderer(AudioCache(tmp_path), [engine])
    results = await asyncio.gather(*(renderer.render(TITLE, SENTENCE) for _ in range(4)))
    assert len({r.ref.digest for r in results}) == 1
    assert engine.calls == [TITLE, SENTENCE]


async def test_wav_output_is_16_bit_pcm(tmp_path: Path, engine: CountingEngine) -> None:
    out = await AudioRenderer(AudioCache(tmp_path), [engine]).render(TITLE, SENTENCE, fmt="wav")
    assert out.path.suffix == ".wav" and out.ref.format == "wav"
    with wave.open(str(out.path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 48_000)
        assert w.getnframes() / w.getframerate() == pytest.approx(out.ref.duration_s, abs=0.1)
    mp3 = await AudioRenderer(AudioCache(tmp_path), [engine]).render(TITLE, SENTENCE, fmt=OutputFormat.MP3)
    assert mp3.ref.digest != out.ref.digest


async def test_normalise_hook_changes_what_is_spoken_and_the_key(
    tmp_path: Path, engine: CountingEngine
) -> None:
    def expand(s: str) -> str:
        return s.replace("PM2.5", "细颗粒物")

    renderer = AudioRenderer(AudioCache(tmp_path), [engine], normalise=expand)
    await renderer.render("", "PM2.5超标")
    assert engine.calls == ["细颗粒物超标"]
    await renderer.render("", "细颗粒物超标")  # same spoken text: cache hit
    assert len(engine.calls) == 1
    await renderer.render("", "PM2.5超标", normalise=str.upper)  # per-call hook overrides the default
    assert engine.calls[-1] == "PM2.5超标"


@pytest.mark.parametrize(
    ("title", "text", "kwargs"),
    [("", "  ", {}), ("t", "x", {"repeats": 0}), ("t", "x", {"repeats": 11}), ("t", "x", {"gap_s": -1.0})],
)
async def test_refuses_bad_requests(tmp_path: Path, title: str, text: str, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        await AudioRenderer(AudioCache(tmp_path)).render(title, text, **kwargs)  # type: ignore[arg-type]


async def test_speech_loudness_is_normalised_whatever_the_engine_level(tmp_path: Path) -> None:
    levels: dict[tuple[int, bool], float] = {}
    for volume in (10, 100):
        for loudnorm in (True, False):
            r = AudioRenderer(AudioCache(tmp_path), [EspeakEngine(volume=volume)],
                              options=EncodeOptions(loudnorm=loudnorm))
            seg = decode((await r.render("", SENTENCE)).path)
            levels[(volume, loudnorm)] = seg[2000:-2000].dBFS  # the speech, without the chimes
    assert levels[(10, False)] < levels[(100, False)] - 10  # the engine really was quieter
    assert abs(levels[(10, True)] - levels[(100, True)]) < 2
    assert -22 < levels[(10, True)] < -12
