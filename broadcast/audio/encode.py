"""Output encoding shared by rendering and uploads: formats, options, loudness, MP3/WAV encoding.

Owns: the work format (16-bit mono PCM at ``WORK_RATE``), turning any speech/recording into it with
loudness normalisation, and encoding work PCM into the output formats adapters need (MP3 for IP
terminals, 16-bit PCM WAV for FM / cable inserters). Output is bit-exact for the same input so the
content digest is stable.

Must never: block the event loop (ffmpeg runs as a subprocess), touch the cache, or decide layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from broadcast.audio.ffmpeg import run_ffmpeg, wav_bytes

WORK_RATE = 22_050  # programmes are assembled as 16-bit mono PCM at this rate


class OutputFormat(StrEnum):
    MP3 = "mp3"  # IP terminals fetch this by URL
    WAV = "wav"  # 16-bit PCM for FM / cable inserters


@dataclass(frozen=True)
class EncodeOptions:
    mp3_rate: int = 24_000
    mp3_bitrate_k: int = 48  # CBR
    wav_rate: int = 48_000
    loudness_i: float = -16.0  # LUFS target for speech (the chime sits at about -19 LUFS)
    true_peak: float = -1.5  # dBTP
    loudnorm: bool = True  # normalise each speech segment / upload (ffmpeg loudnorm, single pass)


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
    filters = ["-af", f"loudnorm=I={o.loudness_i}:TP={o.true_peak}:LRA=11"] if o.loudnorm else []
    out, _ = await run_ffmpeg(
        [*input_args, "-i", "pipe:0", "-vn", *filters, "-ac", "1", "-ar", str(WORK_RATE),
         "-f", "s16le", "-c:a", "pcm_s16le", "pipe:1"],
        data, what=what, timeout_s=timeout_s,
    )
    return out


def pcm_input_args(sample_rate: int) -> list[str]:
    return ["-f", "s16le", "-ar", str(sample_rate), "-ac", "1"]


async def encode(pcm: bytes, fmt: OutputFormat, options: EncodeOptions, *, timeout_s: float = 120.0) -> bytes:
    """Encode work PCM to ``fmt`` (MP3 mono CBR, or a complete RIFF/WAVE 16-bit mono file)."""
    o = options
    args = [*pcm_input_args(WORK_RATE), "-i", "pipe:0",
            "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact", "-ac", "1"]
    if fmt is OutputFormat.MP3:
        args += ["-ar", str(o.mp3_rate), "-c:a", "libmp3lame", "-b:a", f"{o.mp3_bitrate_k}k",
                 "-id3v2_version", "0", "-write_xing", "0", "-f", "mp3", "pipe:1"]
        out, _ = await run_ffmpeg(args, pcm, what="encode mp3", timeout_s=timeout_s)
        return out
    # ffmpeg cannot fill in WAV sizes when writing to a pipe, so wrap raw PCM ourselves.
    args += ["-ar", str(o.wav_rate), "-c:a", "pcm_s16le", "-f", "s16le", "pipe:1"]
    out, _ = await run_ffmpeg(args, pcm, what="encode wav", timeout_s=timeout_s)
    return wav_bytes(out, o.wav_rate)
