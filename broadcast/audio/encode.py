"""Output encoding shared by rendering and uploads: formats, options, loudness, MP3/WAV encoding.

Owns: the work format (16-bit mono PCM at ``WORK_RATE``), turning any speech/recording into it with
loudness normalisation (``Loudness``: ffmpeg loudnorm, or a fast measured gain + limiter), and encoding
work PCM into the output formats adapters need (MP3 for IP terminals, 16-bit PCM WAV for FM / cable
inserters). Output is bit-exact for the same input so the
content digest is stable.

MP3 is encoded in-process by LAME (the ``lameenc`` package, in worker threads — the GIL is released
while encoding; ≈2.5× less CPU than ffmpeg's libmp3lame here). Without a levelling filter (chimes, gaps,
uploads) there is no process at all and LAME resamples ``WORK_RATE`` → ``mp3_rate`` itself. The default
GAIN levelling (one gain + a peak limiter) is done in-process by numpy (``level_pcm``) and fed straight
to LAME (``numpy_levelled_mp3``): no process either. A loudnorm chain (or GAIN without numpy) goes
through a single ffmpeg process that levels and resamples while LAME encodes its output as it arrives
(``lame_levelled_mp3``). Without ``lameenc`` (import error) MP3 falls back to ffmpeg's libmp3lame with
the same parameters.

Must never: block the event loop (ffmpeg runs as a subprocess, LAME in a thread), touch the cache, or
decide layout.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import itertools
import math
import operator
import re
import sys
from collections.abc import Sequence
from typing import Any

from broadcast.audio import encode_options
from broadcast.audio.encode_level import level_pcm
from broadcast.audio.encode_options import (  # settings and pure helpers live there
    MAX_GAIN_DB,
    RMS_ABOVE_LUFS_DB,
    WORK_RATE,
    EncodeOptions,
    GainLevel,
    Loudness,
    OutputFormat,
    parse_gain_filter,
    pcm_input_args,
)
from broadcast.audio.ffmpeg import FfmpegError, ffmpeg_exe, run_ffmpeg, wav_bytes

_VOLUME_RE = re.compile(r"(mean|max)_volume:\s*(-?[0-9.]+|-inf) dB")


def in_process_level(audio_filter: str | None) -> GainLevel | None:
    """The level to apply in-process (numpy gain + limiter, then LAME) when ``audio_filter`` is a GAIN
    chain and numpy and lameenc are both importable; None means the ffmpeg path."""
    if encode_options.numpy is None or encode_options.lameenc is None:
        return None
    return parse_gain_filter(audio_filter)


async def numpy_levelled_mp3(pieces: Sequence[bytes], level: GainLevel, options: EncodeOptions) -> bytes:
    """Level work PCM ``pieces`` (taken together: one gain, one limiter) and resample them to ``mp3_rate``
    with numpy, then encode each piece with its own LAME encoder, in parallel threads; the
    encoded pieces are joined like ``mp3parts`` joins them. No process is started."""
    rate = options.mp3_rate
    levelled = await asyncio.to_thread(level_pcm, b"".join(pieces), level, WORK_RATE, rate)
    bounds = [0]
    total_in = 0
    for piece in pieces[:-1]:
        total_in += len(piece) // 2
        bounds.append(total_in * rate // WORK_RATE * 2)  # sample-aligned, in a pause
    bounds.append(len(levelled))
    parts = [levelled[a:b] for a, b in itertools.pairwise(bounds)]
    encoded = await asyncio.gather(*(asyncio.to_thread(lame_mp3, p, rate, options) for p in parts))
    return b"".join(encoded)


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
    np = encode_options.numpy
    if np is not None:  # the same sum, exactly (integers), ≈10× faster
        for part in parts:
            sub = np.frombuffer(part, dtype="<i2", count=len(part) // 2)[::stride].astype(np.int64)
            total += int(np.dot(sub, sub))
            count += len(sub)
        parts = ()
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


async def filter_pcm(
    pcm: bytes, audio_filter: str, *, timeout_s: float = 120.0, sample_rate: int = WORK_RATE
) -> bytes:
    """Work PCM through an ffmpeg filter chain, back to 16-bit mono PCM at ``sample_rate`` (work PCM for
    WAV output; the MP3 rate before LAME encodes it in-process)."""
    level = (
        parse_gain_filter(audio_filter)
        if encode_options.numpy is not None and sample_rate == WORK_RATE
        else None
    )
    if level is not None:
        return await asyncio.to_thread(level_pcm, pcm, level)
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
            str(sample_rate),
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
    if fmt is OutputFormat.MP3 and encode_options.lameenc is not None:
        level = in_process_level(audio_filter)
        if level is not None:
            return await numpy_levelled_mp3([pcm], level, o)
        if audio_filter:
            return await lame_levelled_mp3([pcm], audio_filter, o, timeout_s=timeout_s)
        return await asyncio.to_thread(lame_mp3, pcm, WORK_RATE, o)
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


def in_process_mp3() -> bool:
    """True when MP3 is encoded in-process by LAME (``lameenc`` importable), False when by ffmpeg."""
    return encode_options.lameenc is not None


def _lame_encoder(sample_rate: int, options: EncodeOptions) -> Any:
    lame = encode_options.lameenc
    if lame is None:
        raise RuntimeError("lameenc is not installed: MP3 is encoded by ffmpeg (encode())")
    enc = lame.Encoder()
    enc.set_channels(1)
    enc.set_in_sample_rate(sample_rate)
    enc.set_out_sample_rate(options.mp3_rate)
    enc.set_bit_rate(options.mp3_bitrate_k)
    if options.mp3_quality is not None:
        enc.set_quality(options.mp3_quality)
    return enc


_STREAM_CHUNK = 1 << 17  # bytes of filtered PCM handed to LAME at a time (≈2.7 s at 24 kHz)


async def lame_levelled_mp3(
    pieces: Sequence[bytes], audio_filter: str, options: EncodeOptions, *, timeout_s: float = 120.0
) -> bytes:
    """Level work PCM ``pieces`` (taken together) with ``audio_filter`` and encode them to MP3 in-process.

    One ffmpeg process levels and resamples the whole speech to ``mp3_rate`` (exactly the PCM the ffmpeg
    path would encode; ffmpeg's resampler costs far less than LAME's, and a second ffmpeg process ≈45 ms
    of CPU just to start) while one LAME encoder per piece, each in its own thread, encodes its share of
    the output *as it arrives*: filter and encoders overlap, and the pieces are encoded in parallel. The
    encoded pieces are joined like ``mp3parts`` joins them (split pieces only in pauses). LAME's output
    does not depend on how its input is chunked, so the bytes are the same on every run."""
    o = options
    what = "level speech for mp3"
    # Piece boundaries as byte offsets in the resampled output (sample-aligned).
    cuts: list[int] = []
    total_in = 0
    for piece in pieces[:-1]:
        total_in += len(piece) // 2
        cuts.append(total_in * o.mp3_rate // WORK_RATE * 2)
    queues: list[asyncio.Queue[bytes | None]] = [asyncio.Queue() for _ in range(len(cuts) + 1)]

    async def encode_part(queue: asyncio.Queue[bytes | None]) -> bytes:
        enc = _lame_encoder(o.mp3_rate, o)
        out = bytearray()
        fed = False
        while (chunk := await queue.get()) is not None:
            fed = True
            out += await asyncio.to_thread(enc.encode, chunk)
        if not fed:
            return b""
        return bytes(out) + bytes(await asyncio.to_thread(enc.flush))

    proc = await asyncio.create_subprocess_exec(
        ffmpeg_exe(),
        "-hide_banner",
        "-nostats",
        *pcm_input_args(WORK_RATE),
        "-i",
        "pipe:0",
        "-af",
        audio_filter,
        "-ac",
        "1",
        "-ar",
        str(o.mp3_rate),
        "-f",
        "s16le",
        "-c:a",
        "pcm_s16le",
        "pipe:1",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr

    async def feed() -> None:
        with contextlib.suppress(
            BrokenPipeError, ConnectionResetError
        ):  # ffmpeg died: its exit code says why
            for piece in pieces:
                stdin.write(piece)
            await stdin.drain()
            stdin.close()

    async def pump() -> None:
        part = 0
        buf = bytearray()
        buf_start = 0  # output byte offset of buf[0]

        def hand_over(n: int) -> None:
            nonlocal buf_start
            if n > 0:
                queues[part].put_nowait(bytes(buf[:n]))
                del buf[:n]
                buf_start += n

        try:
            while chunk := await stdout.read(_STREAM_CHUNK):
                buf += chunk
                while part < len(cuts) and buf_start + len(buf) >= cuts[part]:
                    hand_over(cuts[part] - buf_start)
                    queues[part].put_nowait(None)
                    part += 1
                if len(buf) >= _STREAM_CHUNK:
                    hand_over(len(buf) // 2 * 2)
            hand_over(len(buf) // 2 * 2)
        finally:
            for q in queues[part:]:
                q.put_nowait(None)

    encoders = [asyncio.ensure_future(encode_part(q)) for q in queues]
    try:
        async with asyncio.timeout(timeout_s):
            _, _, err = await asyncio.gather(feed(), pump(), stderr.read())
            await proc.wait()
            parts = await asyncio.gather(*encoders)
    except TimeoutError as e:
        raise FfmpegError(what, f"no result within {timeout_s:.0f} s") from e
    finally:
        for task in encoders:
            task.cancel()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        text = err.decode("utf-8", "replace")
        tail = text.strip().splitlines()[-3:]
        raise FfmpegError(what, f"exit {proc.returncode}: {' | '.join(tail)}", text)
    return b"".join(parts)


def lame_mp3(pcm: bytes, sample_rate: int, options: EncodeOptions) -> bytes:
    """Encode 16-bit mono PCM at ``sample_rate`` to headerless CBR MP3 (``options.mp3_rate``,
    ``mp3_bitrate_k``, ``mp3_quality``) with LAME in-process. Blocking (≈1 ms a second of speech; the GIL is
    released): call it through ``asyncio.to_thread``. No ID3 or Xing frame, so outputs made with the same
    options concatenate into one valid stream, as the ffmpeg path's do. Empty input gives empty output."""
    enc = _lame_encoder(sample_rate, options)
    if not pcm:
        return b""
    head = bytes(enc.encode(pcm[: len(pcm) // 2 * 2]))
    return head + bytes(enc.flush())
