"""Operator audio uploads (上传录音): really decode, check, normalise and store an operator's recording.

Owns: deciding whether uploaded bytes are usable broadcast audio (size, decodable audio stream, sample
rate, duration, not silent), with a reason (``UploadProblem``) and a Chinese message saying what to do,
and storing the accepted recording in the ``AudioCache`` in the programme's output format.

Must never: trust the file name or extension (ffmpeg decides what the bytes are), keep the temporary
file, decode more than ``max_duration_s`` + 1 s of audio, or block the event loop.
"""

from __future__ import annotations

import array
import asyncio
import os
import re
import tempfile
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from broadcast.audio.cache import AudioCache
from broadcast.audio.encode import encode, to_work_pcm
from broadcast.audio.encode_options import WORK_RATE, EncodeOptions, OutputFormat, pcm_input_args
from broadcast.audio.ffmpeg import FfmpegError, run_ffmpeg
from broadcast.audio.truncation import mp3_truncated, wav_truncated
from broadcast.model import AudioRef

ALLOWED_SAMPLE_RATES = frozenset({8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000})
MIN_DURATION_S = 0.5
SILENCE_PEAK = 64  # of 32767: below this the recording is silence (about -54 dBFS)
UPLOAD_ENGINE = "upload"

_STREAM_RE = re.compile(
    r"Stream #\d+:\d+[^:]*: Audio: (?P<codec>[\w-]+)[^,]*, (?P<rate>\d+) Hz, (?P<layout>[^,\n]+)"
)


_DURATION_RE = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


class UploadProblem(StrEnum):
    EMPTY = "empty"
    TOO_BIG = "too_big"
    NOT_AUDIO = "not_audio"
    BAD_SAMPLE_RATE = "bad_sample_rate"
    TOO_LONG = "too_long"
    TOO_SHORT = "too_short"
    SILENT = "silent"
    TRUNCATED = "truncated"  # the file ends before the audio it declares (an interrupted copy or upload)


class UploadRejected(Exception):
    """An upload (``filename``) was refused; ``message_zh`` tells the operator what to do."""

    def __init__(self, filename: str, problem: UploadProblem, message_zh: str, detail: str = "") -> None:
        self.filename = filename
        self.problem = problem
        self.message_zh = message_zh
        self.detail = detail
        super().__init__(f"{filename}: {message_zh}")


@dataclass(frozen=True)
class ValidatedAudio:
    """An accepted recording: what it was, and (when a cache was given) the stored programme audio."""

    filename: str
    codec: str
    sample_rate: int
    channels: int
    duration_s: float
    size_bytes: int
    ref: AudioRef | None = None
    path: Path | None = None


def _declared_duration_s(stderr: str) -> float | None:
    """The duration the container states (ffmpeg's "Duration:"), unless ffmpeg only estimated it."""
    if "Estimating duration from bitrate" in stderr:
        return None
    m = _DURATION_RE.search(stderr)
    if m is None:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def _channels(layout: str) -> int:
    layout = layout.strip()
    named = {"mono": 1, "stereo": 2}
    if layout in named:
        return named[layout]
    m = re.match(r"(\d+) channels", layout)
    return int(m.group(1)) if m else 0


async def validate_upload(
    data: bytes,
    filename: str,
    *,
    max_bytes: int,
    max_duration_s: float,
    cache: AudioCache | None = None,
    fmt: OutputFormat | str = OutputFormat.MP3,
    options: EncodeOptions | None = None,
) -> ValidatedAudio:
    """Check an uploaded recording; raise ``UploadRejected`` with a Chinese message if it is unusable.

    With ``cache``, the recording is loudness-normalised, encoded to ``fmt`` and stored; ``ref.digest``
    is the sha256 of the stored file (as for rendered programmes)."""
    fmt = OutputFormat(fmt)
    options = options or EncodeOptions()

    def reject(problem: UploadProblem, message: str, detail: str = "") -> UploadRejected:
        return UploadRejected(filename, problem, message, detail)

    if not data:
        raise reject(UploadProblem.EMPTY, "上传的文件是空的，请重新选择录音文件。")
    if len(data) > max_bytes:
        raise reject(
            UploadProblem.TOO_BIG,
            f"文件过大（{len(data) / 1048576:.1f} MB），上限为 {max_bytes / 1048576:.1f} MB。"
            "请压缩或剪短后重新上传。",
        )
    try:
        pcm, stderr = await _decode(data, max_duration_s)
    except FfmpegError as e:
        raise reject(
            UploadProblem.NOT_AUDIO, "无法识别为音频文件，请上传 MP3、WAV 等格式的录音。", e.stderr[-300:]
        ) from e
    m = _STREAM_RE.search(stderr)
    if m is None or not pcm:
        raise reject(UploadProblem.NOT_AUDIO, "文件中没有可播放的声音，请上传 MP3、WAV 等格式的录音。")
    rate = int(m.group("rate"))
    if rate not in ALLOWED_SAMPLE_RATES:
        raise reject(
            UploadProblem.BAD_SAMPLE_RATE,
            f"不支持的采样率 {rate} Hz。请用常见采样率（如 16000、44100 或 48000 Hz）重新导出后上传。",
        )
    duration = len(pcm) / 2 / WORK_RATE
    if duration > max_duration_s:
        raise reject(UploadProblem.TOO_LONG, f"录音超过 {max_duration_s:.0f} 秒的上限，请剪短后重新上传。")
    if duration < MIN_DURATION_S:
        raise reject(UploadProblem.TOO_SHORT, f"录音太短（不足 {MIN_DURATION_S} 秒），请重新录制。")
    declared = _declared_duration_s(stderr)
    cut_short = declared is not None and duration + max(0.5, 0.02 * declared) < declared
    if cut_short or (m.group("codec") == "mp3" and mp3_truncated(data)) or wav_truncated(data):
        said = f"（文件声明 {declared:.1f} 秒，实际只有 {duration:.1f} 秒）" if cut_short and declared else ""
        raise reject(
            UploadProblem.TRUNCATED,
            f"录音文件不完整{said}，可能是复制或上传中断。请重新导出完整的录音后再上传。",
        )
    samples = array.array("h", pcm)
    if max(samples, default=0) < SILENCE_PEAK and -min(samples, default=0) < SILENCE_PEAK:
        raise reject(UploadProblem.SILENT, "录音里没有声音（全是静音），请检查麦克风后重新录制。")
    result = ValidatedAudio(
        filename=filename,
        codec=m.group("codec"),
        sample_rate=rate,
        channels=_channels(m.group("layout")),
        duration_s=round(duration, 3),
        size_bytes=len(data),
    )
    if cache is None:
        return result
    work = await to_work_pcm(pcm, pcm_input_args(WORK_RATE), options, what=f"normalise upload {filename}")
    encoded = await encode(work, fmt, options)
    digest, path = await asyncio.to_thread(cache.put, encoded, str(fmt))
    ref = AudioRef(digest=digest, format=str(fmt), duration_s=result.duration_s, engine=UPLOAD_ENGINE)
    return replace(result, ref=ref, path=path)


async def _decode(data: bytes, max_duration_s: float) -> tuple[bytes, str]:
    """Decode the first audio stream to work PCM (at most ``max_duration_s`` + 1 s); return (pcm, log).

    A temporary file, not a pipe: containers such as MP4/M4A keep their index at the end."""
    path = await asyncio.to_thread(_write_temp, data)
    try:
        return await run_ffmpeg(
            [
                "-i",
                str(path),
                "-map",
                "0:a:0",
                "-t",
                f"{max_duration_s + 1:.3f}",
                "-vn",
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
            b"",
            what="decode upload",
            timeout_s=60.0,
        )
    finally:
        await asyncio.to_thread(os.unlink, path)


def _write_temp(data: bytes) -> Path:
    fd, name = tempfile.mkstemp(prefix="ebc-upload-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Path(name)
