"""Shared helpers for audio tests: decoding with pydub and a tone detector (Goertzel)."""

from __future__ import annotations

import math
from pathlib import Path

import imageio_ffmpeg
from pydub import AudioSegment

from broadcast.audio.engines import Speech, TtsEngine

AudioSegment.converter = imageio_ffmpeg.get_ffmpeg_exe()

SENTENCE = "安宁县气象台发布暴雨红色预警信号，请注意防范。"


def decode(path: Path, fmt: str = "mp3") -> AudioSegment:
    if fmt == "mp3":
        return AudioSegment.from_file(path, format="mp3", codec="mp3")
    return AudioSegment.from_file(path, format=fmt)


def samples(seg: AudioSegment) -> list[int]:
    return list(seg.get_array_of_samples())


def tone_fraction(xs: list[int], rate: int, freq: float) -> float:
    """Amplitude of ``freq`` (Goertzel) relative to the amplitude a pure sine of the same RMS would have.

    ≈1 for a pure tone at ``freq``, small for speech, noise or other notes."""
    n = len(xs)
    if n == 0:
        return 0.0
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in xs:
        s1, s2 = x + k * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    amp = 2 * math.sqrt(max(power, 0.0)) / n
    rms = math.sqrt(sum(x * x for x in xs) / n)
    return amp / (rms * math.sqrt(2)) if rms else 0.0


class CountingEngine:
    """Wraps an engine and counts synth calls (and the texts it was asked to speak)."""

    def __init__(self, inner: TtsEngine) -> None:
        self.inner = inner
        self.calls: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def voice(self) -> str:
        return self.inner.voice

    @property
    def settings(self) -> str:
        return self.inner.settings

    async def synth(self, text: str) -> Speech:
        self.calls.append(text)
        return await self.inner.synth(text)
