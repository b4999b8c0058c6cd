"""Helpers for tone-first playout tests: a speech engine the test opens like a gate, MP3 checks."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

from broadcast.audio.cache import AudioCache
from broadcast.audio.encode_options import EncodeOptions
from broadcast.audio.engines import Speech, TtsError, TtsFailure
from broadcast.audio.espeak import EspeakEngine
from broadcast.audio.ffmpeg import ffmpeg_exe
from broadcast.audio.playout import LiveProgrammes
from broadcast.audio.render import AudioRenderer
from broadcast.clock import ManualClock
from broadcast.codes import ebm_id

PLATFORM = "45301810000000101010101"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
FALLBACK = "语音暂时无法播放"


def ebm(n: int) -> str:
    return ebm_id(PLATFORM, date(2026, 11, 1), n)


class GatedEngine:
    """The offline engine, but each synth waits until the test opens the gate; can be told to fail."""

    name = "gated-espeak"

    def __init__(self) -> None:
        self.inner = EspeakEngine()
        self.gate = asyncio.Event()
        self.fail = False
        self.calls: list[str] = []
        self.waiting = 0

    @property
    def voice(self) -> str:
        return self.inner.voice

    @property
    def settings(self) -> str:
        return self.inner.settings

    async def synth(self, text: str) -> Speech:
        self.calls.append(text)
        self.waiting += 1
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1
        if self.fail:
            raise TtsError(self.name, TtsFailure.UNAVAILABLE, "told to fail")
        return await self.inner.synth(text)


async def make_live(
    tmp_path: Path, *, speech_wait_s: float = 30.0, fallback: str | None = FALLBACK
) -> tuple[LiveProgrammes, GatedEngine, ManualClock]:
    engine = GatedEngine()
    renderer = AudioRenderer(AudioCache(tmp_path / "cache"), [engine], options=EncodeOptions(loudnorm=False))
    clock = ManualClock(T0)
    live = LiveProgrammes(renderer, clock, speech_wait_s=speech_wait_s, fallback_text=fallback)
    engine.gate.set()  # the fallback notice renders at warm-up
    await live.warm()
    engine.gate.clear()
    engine.calls.clear()
    return live, engine, clock


def decode_mp3(data: bytes, tmp_path: Path) -> tuple[float, str]:
    """(seconds of decoded audio, ffmpeg's complaints) for an MP3 byte string."""
    src = tmp_path / "decode-me.mp3"
    src.write_bytes(data)
    p = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(src), "-ac", "1", "-ar", "24000", "-f", "s16le", "pipe:1"],
        capture_output=True, timeout=30, check=False,
    )
    return len(p.stdout) / 2 / 24_000, p.stderr.decode("utf-8", "replace").strip()


