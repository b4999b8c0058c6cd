"""Attention tone (提示音): a two-note chime generated in code, opening and closing every programme.

Owns: the tone's notes and envelope and rendering them to 16-bit mono PCM. Output is deterministic (the
cache key of a programme relies on it) and memoised per sample rate.

Must never: read files, touch the network, or depend on anything outside the standard library.
"""

from __future__ import annotations

import array
import math
from functools import lru_cache

# "Ding-dong": E5 then C5, each note a struck bell (fundamental + soft octave) with exponential decay.
OPENING_NOTES_HZ: tuple[float, ...] = (659.25, 523.25)
CLOSING_NOTES_HZ: tuple[float, ...] = (523.25, 659.25)
NOTE_S = 0.7
TAIL_S = 0.1  # quiet tail so speech does not start on top of the decay
PEAK = 0.5  # of full scale; loudness normalisation of the programme sets the final level
TONE_VERSION = "chime-v1"  # part of every cache key: change it whenever the sound changes


def _note(freq: float, sample_rate: int) -> list[float]:
    n = int(NOTE_S * sample_rate)
    attack = max(1, int(0.005 * sample_rate))  # 5 ms ramp avoids a click
    out = []
    for i in range(n):
        t = i / sample_rate
        env = min(1.0, i / attack) * math.exp(-3.5 * t)
        s = math.sin(2 * math.pi * freq * t) + 0.3 * math.sin(4 * math.pi * freq * t)
        out.append(env * s / 1.3)
    fade = max(1, int(0.02 * sample_rate))  # end each note on zero
    for k in range(fade):
        out[n - 1 - k] *= k / fade
    return out


@lru_cache(maxsize=8)
def chime_pcm(sample_rate: int, *, closing: bool = False) -> bytes:
    """The chime as 16-bit little-endian mono PCM at ``sample_rate`` (≈1.5 s)."""
    notes = CLOSING_NOTES_HZ if closing else OPENING_NOTES_HZ
    samples: list[float] = []
    for f in notes:
        samples.extend(_note(f, sample_rate))
    samples.extend([0.0] * int(TAIL_S * sample_rate))
    pcm = array.array("h", (round(PEAK * 32767 * s) for s in samples))
    if pcm.itemsize != 2:
        raise RuntimeError("array('h') is not 16-bit on this platform")
    if array.array("h", [1]).tobytes() != b"\x01\x00":
        pcm.byteswap()
    return pcm.tobytes()


def silence_pcm(sample_rate: int, seconds: float) -> bytes:
    return b"\x00\x00" * max(0, round(seconds * sample_rate))
