"""Shared helpers for audio tests: decoding with pydub and ffmpeg, a tone detector (Goertzel), speech-like
work PCM and an MP3 frame check."""

from __future__ import annotations

import array
import math
from pathlib import Path

import imageio_ffmpeg
from pydub import AudioSegment

from broadcast.audio.encode_options import WORK_RATE
from broadcast.audio.engines import Speech, TtsEngine
from broadcast.audio.ffmpeg import run_ffmpeg

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


# MPEG-2 layer III frame header: 48 kbit/s (index 6 of the MPEG-2 table), 24 kHz (index 1), no CRC.
MPEG2_L3_48K = (0xFF, 0xF3, 0x64)
FRAME_BYTES = 144  # 72 × 48000 / 24000, never padded at 24 kHz


def speechlike(seconds: float, amplitude: int = 3000) -> bytes:
    """Syllables of a gliding tone with pauses of digital silence (so the renderer may split there)."""
    xs = array.array("h")
    n = int(seconds * WORK_RATE)
    for i in range(n):
        t = i / WORK_RATE
        on = (t % 0.6) < 0.4
        xs.append(int(amplitude * math.sin(2 * math.pi * (180 + 40 * math.sin(t * 3)) * t)) if on else 0)
    return xs.tobytes()


def mp3_frames_ok(data: bytes) -> int:
    """Walk the stream frame by frame: every frame must be MPEG-2 layer III, 24 kHz, 48 kbit/s, mono."""
    assert data and len(data) % FRAME_BYTES == 0, len(data)
    for pos in range(0, len(data), FRAME_BYTES):
        head = data[pos : pos + 4]
        assert tuple(head[:3]) == MPEG2_L3_48K, (pos, head.hex())
        assert head[3] >> 6 == 3, (pos, "not mono")
    return len(data) // FRAME_BYTES


async def decode_mp3_pcm(data: bytes) -> tuple[bytes, str]:
    """MP3 bytes decoded by ffmpeg to 16-bit mono PCM at 24 kHz, with ffmpeg's error output."""
    pcm, err = await run_ffmpeg(
        ["-v", "error", "-f", "mp3", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", "24000", "pipe:1"],
        data,
        what="decode test mp3",
    )
    return pcm, err
