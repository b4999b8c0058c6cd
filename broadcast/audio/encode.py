"""Output encoding shared by rendering and uploads: formats, options, loudness, MP3/WAV encoding.

Owns: the work format (16-bit mono PCM at ``WORK_RATE``), turning any speech/recording into it with
loudness normalisation (``Loudness``: ffmpeg loudnorm, or a fast measured gain + limiter), and encoding
work PCM into the output formats adapters need (MP3 for IP terminals, 16-bit PCM WAV for FM / cable
inserters). Output is bit-exact for the same input so the
content digest is stable.

Must never: block the event loop (ffmpeg runs as a subprocess), touch the cache, or decide layout.
"""

from __future__ import annotations

import re
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


# Speech measured by ffmpeg ``volumedetect`` (plain RMS over the whole clip, pauses included) is aimed
# this many dB below ``loudness_i``; calibrated on espeak-ng speech so that both methods give the same
# RMS level (≈ -17 dBFS for -16 LUFS).
RMS_BELOW_LUFS_DB = 1.0
MAX_GAIN_DB = 30.0
_VOLUME_RE = re.compile(r"(mean|max)_volume:\s*(-?[0-9.]+|-inf) dB")


@dataclass(frozen=True)
class EncodeOptions:
    mp3_rate: int = 24_000
    mp3_bitrate_k: int = 48  # CBR
    wav_rate: int = 48_000
    loudness_i: float = -16.0  # LUFS target for speech (the chime sits at about -19 LUFS)
    true_peak: float = -1.5  # dBTP
    loudnorm: bool = True  # normalise each speech segment / upload (method: ``loudness``)
    loudness: Loudness = Loudness.LOUDNORM


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
    gain = min(o.loudness_i - RMS_BELOW_LUFS_DB - mean, MAX_GAIN_DB)
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


def pcm_input_args(sample_rate: int) -> list[str]:
    return ["-f", "s16le", "-ar", str(sample_rate), "-ac", "1"]


async def encode(pcm: bytes, fmt: OutputFormat, options: EncodeOptions, *, timeout_s: float = 120.0) -> bytes:
    """Encode work PCM to ``fmt`` (MP3 mono CBR, or a complete RIFF/WAVE 16-bit mono file)."""
    o = options
    args = [
        *pcm_input_args(WORK_RATE),
        "-i",
        "pipe:0",
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
