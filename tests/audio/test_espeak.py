"""The offline Mandarin engine really speaks, on its own thread, at 22,050 Hz 16-bit mono."""

from __future__ import annotations

import asyncio
import threading

from broadcast.audio.engines import SpeechFormat
from broadcast.audio.espeak import EspeakEngine
from tests.audio.helpers import SENTENCE


async def test_speaks_mandarin_as_pcm() -> None:
    speech = await EspeakEngine().synth(SENTENCE)
    assert speech.format is SpeechFormat.PCM_S16LE
    assert speech.sample_rate == 22_050
    assert (speech.engine, speech.voice) == ("espeak-ng", "cmn")
    seconds = len(speech.data) / 2 / speech.sample_rate
    # 23 characters: somewhere between very fast (0.1 s/char) and very slow (1 s/char) speech.
    assert 0.1 * len(SENTENCE) < seconds < 1.0 * len(SENTENCE)
    assert len(speech.data) % 2 == 0


async def test_longer_text_gives_longer_speech_and_rate_matters() -> None:
    short = await EspeakEngine().synth("请注意。")
    long = await EspeakEngine().synth(SENTENCE)
    slow = await EspeakEngine(rate=100).synth(SENTENCE)
    assert len(long.data) > 2 * len(short.data)
    assert len(slow.data) > len(long.data)


async def test_concurrent_calls_are_serialised_on_one_thread() -> None:
    seen: set[str] = set()
    engine = EspeakEngine()
    original = engine._synth_blocking

    def spy(text: str) -> tuple[bytes, int]:
        seen.add(threading.current_thread().name)
        return original(text)

    engine._synth_blocking = spy  # type: ignore[method-assign]
    results = await asyncio.gather(*(engine.synth(f"第{i}号通知。") for i in range(6)))
    assert all(r.data for r in results)
    assert len(seen) == 1 and next(iter(seen)).startswith("espeak-ng")
    assert threading.current_thread().name not in seen
