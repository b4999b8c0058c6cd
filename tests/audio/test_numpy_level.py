"""In-process GAIN levelling (numpy gain + peak limiter, fed straight to LAME): the ceiling holds, the
gain matches ffmpeg's, split speech is levelled once, and no process is started."""

from __future__ import annotations

import array
import asyncio
import math

import pytest

from broadcast.audio import encode_options
from broadcast.audio.encode import encode, filter_pcm, in_process_level, level_filter, rms_dbfs
from broadcast.audio.encode_level import level_pcm
from broadcast.audio.encode_options import (
    LIMIT_MARGIN_DB,
    WORK_RATE,
    EncodeOptions,
    GainLevel,
    OutputFormat,
    parse_gain_filter,
)
from broadcast.audio.mp3parts import encode_mp3, split_at_pauses
from tests.audio.helpers import decode_mp3_pcm, mp3_frames_ok, speechlike

OPTS = EncodeOptions()


def _peak(pcm: bytes) -> int:
    return max((abs(x) for x in array.array("h", pcm)), default=0)


def test_gain_filter_is_read_back_and_other_chains_are_not() -> None:
    chain = level_filter(OPTS, [speechlike(1.0, amplitude=800)])
    level = parse_gain_filter(chain)
    assert level is not None
    assert level.limit == pytest.approx(10 ** (OPTS.true_peak / 20), abs=1e-4)
    assert parse_gain_filter("volume=2dB") is None
    assert parse_gain_filter("loudnorm=I=-16:TP=-1.5:LRA=11") is None
    assert parse_gain_filter(None) is None


def test_limiter_holds_the_ceiling_and_keeps_silence_silent() -> None:
    # A loud burst after a quiet stretch and a pause: +20 dB would clip it many times over.
    quiet = speechlike(1.0, amplitude=500)
    burst = speechlike(0.5, amplitude=20_000)
    pause = bytes(2 * WORK_RATE // 10)
    pcm = quiet + pause + burst
    level = GainLevel(gain_db=20.0, limit=10 ** (-1.5 / 20))
    out = level_pcm(pcm, level)
    assert len(out) == len(pcm)
    ceiling = level.limit * 10 ** (-LIMIT_MARGIN_DB / 20) * 32767
    assert _peak(out) <= math.ceil(ceiling)
    start = len(quiet)
    assert out[start : start + len(pause)] == pause  # digital silence stays zero (split points survive)
    # Far from the burst the quiet speech got the full gain (the limiter does not pump the whole clip).
    head = out[: len(quiet) // 2]
    assert rms_dbfs([head], stride=1) == pytest.approx(rms_dbfs([quiet[: len(quiet) // 2]], stride=1) + 20, abs=0.2)
    assert out == level_pcm(pcm, level)  # deterministic
    resampled = level_pcm(pcm, level, WORK_RATE, 24_000)
    assert len(resampled) // 2 == len(pcm) // 2 * 24_000 // WORK_RATE
    assert _peak(resampled) <= _peak(out)  # interpolation never lifts a peak


async def test_numpy_path_starts_no_process_and_matches_ffmpeg_loudness(monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = speechlike(6.0, amplitude=800)
    chain = level_filter(OPTS, [quiet])
    assert in_process_level(chain) is not None

    calls: list[object] = []

    async def no_process(*args: object, **kwargs: object) -> object:
        calls.append(args)
        raise AssertionError("the GAIN path must not start a process")

    with monkeypatch.context() as m:
        m.setattr(asyncio, "create_subprocess_exec", no_process)
        fast = await encode(quiet, OutputFormat.MP3, OPTS, audio_filter=chain)
    assert calls == []
    mp3_frames_ok(fast)
    monkeypatch.setattr(encode_options, "numpy", None)
    assert in_process_level(chain) is None
    slow = await encode(quiet, OutputFormat.MP3, OPTS, audio_filter=chain)
    fast_pcm, errors = await decode_mp3_pcm(fast)
    slow_pcm, _ = await decode_mp3_pcm(slow)
    assert errors.strip() == ""
    assert rms_dbfs([fast_pcm], stride=1) == pytest.approx(rms_dbfs([slow_pcm], stride=1), abs=0.5)
    assert _peak(fast_pcm) <= 32767 * 10 ** (OPTS.true_peak / 20) * 10 ** (0.5 / 20)


async def test_split_speech_is_levelled_once_then_encoded_in_pieces() -> None:
    from broadcast.audio.encode import lame_mp3

    pcm = speechlike(20.0, amplitude=900)
    pieces = split_at_pauses(pcm, OPTS.encode_jobs)
    assert len(pieces) == 2
    chain = level_filter(OPTS, [pcm])
    level = parse_gain_filter(chain)
    assert level is not None
    data = await encode_mp3(pcm, OPTS, audio_filter=chain)
    levelled = level_pcm(pcm, level, WORK_RATE, OPTS.mp3_rate)
    assert len(levelled) // 2 == len(pcm) // 2 * OPTS.mp3_rate // WORK_RATE
    cut = len(pieces[0]) // 2 * OPTS.mp3_rate // WORK_RATE * 2
    assert levelled[cut - 20 : cut + 20] == bytes(40)  # the resampled cut still lies in the pause
    expected = b"".join(lame_mp3(p, OPTS.mp3_rate, OPTS) for p in (levelled[:cut], levelled[cut:]))
    assert data == expected
    mp3_frames_ok(data)


async def test_wav_levelling_uses_numpy_too() -> None:
    pcm = speechlike(1.0, amplitude=800)
    chain = level_filter(OPTS, [pcm])
    assert chain is not None
    level = parse_gain_filter(chain)
    assert level is not None
    assert await filter_pcm(pcm, chain) == level_pcm(pcm, level)
