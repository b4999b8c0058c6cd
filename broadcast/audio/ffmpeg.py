"""Running the ffmpeg binary shipped by ``imageio-ffmpeg`` without blocking the event loop.

Owns: locating ffmpeg, running one ffmpeg process with bytes on stdin and bytes from stdout, the deadline,
and turning failures into ``FfmpegError``. Also the small PCM/WAV helpers the audio package shares.

Must never: use a shell, leave a process behind on timeout or cancellation, or write files of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import wave
from collections.abc import Sequence
from functools import lru_cache


class FfmpegError(Exception):
    """ffmpeg failed or timed out; ``stderr`` holds its last words."""

    def __init__(self, what: str, detail: str, stderr: str = "") -> None:
        self.what = what
        self.stderr = stderr
        super().__init__(f"ffmpeg {what} failed: {detail}")


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


async def run_ffmpeg(
    args: Sequence[str], stdin: bytes, *, what: str, timeout_s: float = 120.0
) -> tuple[bytes, str]:
    """Run ``ffmpeg <args>`` feeding ``stdin``; return (stdout, stderr text). Raise ``FfmpegError``."""
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_exe(),
        "-hide_banner",
        "-nostats",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate(stdin)
    except TimeoutError as e:
        raise FfmpegError(what, f"no result within {timeout_s:.0f} s") from e
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    text = err.decode("utf-8", "replace")
    if proc.returncode != 0:
        tail = text.strip().splitlines()[-3:]
        raise FfmpegError(what, f"exit {proc.returncode}: {' | '.join(tail)}", text)
    return out, text


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """Wrap 16-bit mono PCM in a RIFF/WAVE header (sizes filled in, unlike ffmpeg writing to a pipe)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return buf.getvalue()
