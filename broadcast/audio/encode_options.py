"""Encoding settings and their small pure pieces: the work sample rate, output formats, loudness
methods, EncodeOptions, the GAIN filter chain read back, and the two optional in-process accelerators
(``numpy``, ``lameenc``: None when not importable). Used by broadcast/audio/encode.py and encode_level.py;
must never start a process or call numpy/LAME itself.

The accelerators are read from this module at call time (``encode_options.numpy``), never copied into
another module, so switching one off here (tests: ``monkeypatch.setattr(encode_options, "numpy", None)``)
switches every path that uses it to ffmpeg.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from enum import StrEnum
from types import ModuleType


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# numpy (``numpy>=1.26``) levels GAIN speech in-process; None: the ffmpeg filter chain does it instead.
numpy: ModuleType | None = _optional("numpy")
# LAME in-process (``lameenc>=1.7``); None: MP3 is encoded by an ffmpeg process instead.
lameenc: ModuleType | None = _optional("lameenc")

WORK_RATE = 22_050  # programmes are assembled as 16-bit mono PCM at this rate


class OutputFormat(StrEnum):
    MP3 = "mp3"  # IP terminals fetch this by URL
    WAV = "wav"  # 16-bit PCM for FM / cable inserters


class Loudness(StrEnum):
    """How speech and uploads are brought to ``loudness_i``."""

    LOUDNORM = "loudnorm"  # ffmpeg loudnorm, single pass: dynamic, ≈0.75 s for 50 s of speech
    GAIN = "gain"  # one gain from the measured RMS level + a peak limiter at ``true_peak``: ≈0.06 s


# Speech measured as plain RMS over the whole clip (pauses included, as ffmpeg ``volumedetect`` does) is
# aimed this many dB *above* ``loudness_i``: the limiter then takes about 1 dB off, and the gated
# integrated loudness (EBU R128) of espeak-ng speech lands at -16.1 ± 0.1 LUFS for any engine volume
# (measured by tests/audio/test_levels.py).
RMS_ABOVE_LUFS_DB = 1.0
MAX_GAIN_DB = 30.0


@dataclass(frozen=True)
class EncodeOptions:
    mp3_rate: int = 24_000
    mp3_bitrate_k: int = 48  # CBR
    wav_rate: int = 48_000
    loudness_i: float = -16.0  # LUFS target for speech (the chime sits at about -19 LUFS)
    true_peak: float = -1.5  # dBTP
    loudnorm: bool = True  # normalise the speech / upload (method: ``loudness``)
    # GAIN measures within ±1 LU of the target on speech (tests/audio/test_levels.py) at a fraction of the
    # time of loudnorm, so it is the default.
    loudness: Loudness = Loudness.GAIN
    # LAME quality (ffmpeg ``-compression_level``, 0 best … 9 fastest); 7 is ≈1.6× faster than LAME's
    # default (3) and indistinguishable for speech at 48 kbit/s. None = the encoder's default.
    mp3_quality: int | None = 7
    # Speech longer than ``2 × MIN_CHUNK_S`` is split at pauses and its parts encoded by this many ffmpeg
    # processes at once (MP3 frames of separate encodes concatenate; each join adds ≈50 ms to a pause).
    encode_jobs: int = 2

    def __post_init__(self) -> None:
        if self.mp3_quality is not None and not 0 <= self.mp3_quality <= 9:
            raise ValueError(f"mp3_quality must be 0..9 or None, got {self.mp3_quality}")
        if self.encode_jobs < 1:
            raise ValueError(f"encode_jobs must be at least 1, got {self.encode_jobs}")


_GAIN_FILTER_RE = re.compile(
    r"volume=(-?[0-9.]+)dB,alimiter=limit=([0-9.]+):attack=1:release=50:level=disabled"
)
# The in-process limiter holds its gain reduction this long either side of a peak and fades in and out
# over the same time (no look-ahead is needed offline: the whole clip is at hand).
LIMIT_HOLD_S = 0.005
# MP3 coding can lift peaks a little above the PCM's: the in-process limiter aims this far below
# ``true_peak`` (espeak-ng speech decoded from the MP3: -16.4 to -16.5 LUFS, true peak -1.8 to -2.0 dBFS
# by ffmpeg ebur128, tests/audio/test_levels.py).
LIMIT_MARGIN_DB = 0.2


@dataclass(frozen=True)
class GainLevel:
    """A GAIN ``level_filter`` chain read back: the gain in dB and the limiter ceiling (linear)."""

    gain_db: float
    limit: float


def parse_gain_filter(audio_filter: str | None) -> GainLevel | None:
    """The gain and ceiling of a filter chain made by ``level_filter`` for ``Loudness.GAIN``; None for any
    other chain (that one must go through ffmpeg)."""
    if not audio_filter:
        return None
    m = _GAIN_FILTER_RE.fullmatch(audio_filter)
    return GainLevel(float(m.group(1)), float(m.group(2))) if m else None


def pcm_input_args(sample_rate: int) -> list[str]:
    return ["-f", "s16le", "-ar", str(sample_rate), "-ac", "1"]
