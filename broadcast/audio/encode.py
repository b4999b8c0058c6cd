"""Output encoding shared by rendering and uploads: formats, options, loudness, MP3/WAV encoding.

Owns: the work format (16-bit mono PCM at ``WORK_RATE``), turning any speech/recording into it with
loudness normalisation (``Loudness``: ffmpeg loudnorm, or a fast measured gain + limiter), and encoding
work PCM into the output formats adapters need (MP3 for IP terminals, 16-bit PCM WAV for FM / cable
inserters). Output is bit-exact for the same input so the
content digest is stable.

Must never: block the event loop (ffmpeg runs as a subprocess), touch the cache, or decide layout.
"""

from __future__ import annotations

import array
import math
import operator
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from broadcast.audio.ffmpeg import run_ffmpeg, wav_bytes

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
_VOLUME_RE = re.compile(r"(mean|max)_volume:\s*(-?[0-9.]+|-inf) dB")


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


async def to_work_pcm(
    data: bytes,
    input_args: list[str],
    options: EncodeOptions,
    *,
    what: str,
    timeout_s: float = 120.0,
) -> bytes:
    """Decode ``data`` (described by ffmpeg ``input_args`` such as ``["-f", "mp3"]``) to work PCM,
    loudness-normalised if ``options.loudnorm``."""
    o = options
    if o.loudnorm and Loudness(o.loudness) is Loudness.GAIN:
        return await _gain_to_work_pcm(data, input_args, o, what=what, timeout_s=timeout_s)
    filters = ["-af", f"loudnorm=I={o.loudness_i}:TP={o.true_peak}:LRA=11"] if o.loudnorm else []
    out, _ = await run_ffmpeg(
        [
            *input_args,
            "-i",
            "pipe:0",
            "-vn",
            *filters,
            "-ac",
            "1",
            "-ar",
            str(WORK_RATE),
            "-f",
            "s16le",
            "-c:a",
            "pcm_s16le",
            "pipe:1",
        ],
        data,
        what=what,
        timeout_s=timeout_s,
    )
    return out


async def _gain_to_work_pcm(
    data: bytes, input_args: list[str], o: EncodeOptions, *, what: str, timeout_s: float
) -> bytes:
    """Convert while measuring (one ffmpeg pass), then apply one gain (a second, cheap pass)."""
    pcm, err = await run_ffmpeg(
        [
            *input_args,
            "-i",
            "pipe:0",
            "-vn",
            "-af",
            "volumedetect",
            "-ac",
            "1",
            "-ar",
            str(WORK_RATE),
            "-f",
            "s16le",
            "-c:a",
            "pcm_s16le",
            "pipe:1",
        ],
        data,
        what=f"{what} (measure)",
        timeout_s=timeout_s,
    )
    levels = {k: float(v) for k, v in _VOLUME_RE.findall(err)}
    mean, peak = levels.get("mean", float("-inf")), levels.get("max", float("-inf"))
    if mean == float("-inf") or peak == float("-inf"):
        return pcm  # silence: nothing to normalise
    gain = min(o.loudness_i + RMS_ABOVE_LUFS_DB - mean, MAX_GAIN_DB)
    if abs(gain) < 0.05 and peak <= o.true_peak:
        return pcm
    # Speech peaks sit 15-20 dB above its RMS: a fast limiter keeps them below the ceiling instead of
    # letting the peaks cap the gain (which would leave quiet voices quiet).
    limit = 10 ** (o.true_peak / 20)
    chain = f"volume={gain:.2f}dB,alimiter=limit={limit:.4f}:attack=1:release=50:level=disabled"
    out, _ = await run_ffmpeg(
        [
            *pcm_input_args(WORK_RATE),
            "-i",
            "pipe:0",
            "-af",
            chain,
            "-f",
            "s16le",
            "-c:a",
            "pcm_s16le",
            "pipe:1",
        ],
        pcm,
        what=f"{what} (gain)",
        timeout_s=timeout_s,
    )
    return out


def rms_dbfs(parts: Sequence[bytes], *, stride: int = 8) -> float:
    """RMS level of 16-bit mono PCM ``parts`` taken together, in dBFS (as ffmpeg ``volumedetect``
    reports it), from every ``stride``-th sample: in-process, ≈8 ms for a minute of speech."""
    total = 0
    count = 0
    for part in parts:
        xs = array.array("h", part[: len(part) // 2 * 2])
        if sys.byteorder != "little":
            xs.byteswap()
        sub = xs[::stride]
        total += sum(map(operator.mul, sub, sub))
        count += len(sub)
    if count == 0 or total == 0:
        return float("-inf")
    return 10 * math.log10(total / count / 32768**2)


def level_filter(options: EncodeOptions, parts: Sequence[bytes]) -> str | None:
    """The ffmpeg audio filter that brings work-PCM speech ``parts`` to the target loudness (applied while
    encoding, so levelling costs no extra pass), or None when nothing is to be done."""
    o = options
    if not o.loudnorm:
        return None
    if Loudness(o.loudness) is Loudness.LOUDNORM:
        return f"loudnorm=I={o.loudness_i}:TP={o.true_peak}:LRA=11"
    mean = rms_dbfs(parts)
    if mean == float("-inf"):
        return None  # silence: nothing to level
    gain = min(o.loudness_i + RMS_ABOVE_LUFS_DB - mean, MAX_GAIN_DB)
    limit = 10 ** (o.true_peak / 20)
    return f"volume={gain:.2f}dB,alimiter=limit={limit:.4f}:attack=1:release=50:level=disabled"


async def filter_pcm(pcm: bytes, audio_filter: str, *, timeout_s: float = 120.0) -> bytes:
    """Work PCM through an ffmpeg filter chain, back to work PCM (for WAV output)."""
    out, _ = await run_ffmpeg(
        [
            *pcm_input_args(WORK_RATE),
            "-i",
            "pipe:0",
            "-af",
            audio_filter,
            "-ac",
            "1",
            "-ar",
            str(WORK_RATE),
            "-f",
            "s16le",
            "-c:a",
            "pcm_s16le",
            "pipe:1",
        ],
        pcm,
        what="level speech",
        timeout_s=timeout_s,
    )
    return out


def pcm_input_args(sample_rate: int) -> list[str]:
    return ["-f", "s16le", "-ar", str(sample_rate), "-ac", "1"]


async def encode(
    pcm: bytes,
    fmt: OutputFormat,
    options: EncodeOptions,
    *,
    timeout_s: float = 120.0,
    audio_filter: str | None = None,
) -> bytes:
    """Encode work PCM to ``fmt`` (MP3 mono CBR, or a complete RIFF/WAVE 16-bit mono file), passing it
    through ``audio_filter`` (an ffmpeg filter chain such as ``level_filter`` gives) on the way."""
    o = options
    args = [
        *pcm_input_args(WORK_RATE),
        "-i",
        "pipe:0",
        *(["-af", audio_filter] if audio_filter else []),
        "-map_metadata",
        "-1",
        "-fflags",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-ac",
        "1",
    ]
    if fmt is OutputFormat.MP3:
        args += [
            "-ar",
            str(o.mp3_rate),
            "-c:a",
            "libmp3lame",
            "-b:a",
            f"{o.mp3_bitrate_k}k",
            *(["-compression_level", str(o.mp3_quality)] if o.mp3_quality is not None else []),
            "-id3v2_version",
            "0",
            "-write_xing",
            "0",
            "-f",
            "mp3",
            "pipe:1",
        ]
        out, _ = await run_ffmpeg(args, pcm, what="encode mp3", timeout_s=timeout_s)
        return out
    # ffmpeg cannot fill in WAV sizes when writing to a pipe, so wrap raw PCM ourselves.
    args += ["-ar", str(o.wav_rate), "-c:a", "pcm_s16le", "-f", "s16le", "pipe:1"]
    out, _ = await run_ffmpeg(args, pcm, what="encode wav", timeout_s=timeout_s)
    return wav_bytes(out, o.wav_rate)
