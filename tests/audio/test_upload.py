"""Operator uploads: real files made here with ffmpeg/wave are decoded, checked, normalised and stored."""

from __future__ import annotations

import hashlib
import io
import math
import wave
from pathlib import Path

import pytest

from broadcast.audio.cache import AudioCache
from broadcast.audio.ffmpeg import run_ffmpeg
from broadcast.audio.tone import chime_pcm
from broadcast.audio.upload import UploadProblem, UploadRejected, validate_upload
from tests.audio.helpers import decode

DATA = Path(__file__).parent.parent / "data" / "audio"
MiB = 1024 * 1024


def wav_file(seconds: float, rate: int = 16_000, *, silent: bool = False, channels: int = 1) -> bytes:
    n = int(seconds * rate)
    frames = bytearray()
    for i in range(n):
        v = 0 if silent else int(8000 * math.sin(2 * math.pi * 440 * i / rate))
        frames += v.to_bytes(2, "little", signed=True) * channels
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return buf.getvalue()


async def mp3_file(seconds: float, rate: int = 44_100) -> bytes:
    pcm = (chime_pcm(22_050) * 4)[: int(seconds * 22_050) * 2]
    out, _ = await run_ffmpeg(
        ["-f", "s16le", "-ar", "22050", "-ac", "1", "-i", "pipe:0", "-ac", "2", "-ar", str(rate),
         "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3", "pipe:1"],
        pcm, what="make test mp3",
    )
    return out


async def test_mp3_recording_is_accepted_normalised_and_stored(tmp_path: Path) -> None:
    data = await mp3_file(3.0)
    cache = AudioCache(tmp_path)
    ok = await validate_upload(data, "村委会通知.mp3", max_bytes=MiB, max_duration_s=60, cache=cache)
    assert (ok.codec, ok.sample_rate, ok.channels) == ("mp3", 44_100, 2)
    assert ok.duration_s == pytest.approx(3.0, abs=0.1)
    assert ok.size_bytes == len(data)
    assert ok.ref is not None and ok.path is not None
    stored = ok.path.read_bytes()
    assert ok.ref.digest == hashlib.sha256(stored).hexdigest() != hashlib.sha256(data).hexdigest()
    assert cache.path_for(ok.ref.digest, "mp3") == ok.path
    assert (ok.ref.format, ok.ref.engine) == ("mp3", "upload")
    seg = decode(ok.path)
    assert seg.channels == 1 and seg.frame_rate == 24_000
    assert abs(seg.duration_seconds - 3.0) < 0.2


async def test_wav_recording_can_be_stored_as_wav_for_fm(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path)
    ok = await validate_upload(
        wav_file(1.5), "recording.wav", max_bytes=MiB, max_duration_s=60, cache=cache, fmt="wav"
    )
    assert (ok.codec, ok.sample_rate, ok.channels) == ("pcm_s16le", 16_000, 1)
    assert ok.path is not None and ok.path.suffix == ".wav"
    with wave.open(str(ok.path)) as w:
        assert (w.getsampwidth(), w.getnchannels()) == (2, 1)
        assert w.getnframes() / w.getframerate() == pytest.approx(1.5, abs=0.05)


async def test_without_a_cache_nothing_is_stored(tmp_path: Path) -> None:
    ok = await validate_upload(wav_file(1.0), "a.wav", max_bytes=MiB, max_duration_s=60)
    assert ok.ref is None and ok.path is None and ok.duration_s == pytest.approx(1.0, abs=0.01)


async def rejected(data: bytes, name: str = "x.mp3", **kw: float) -> UploadRejected:
    limits: dict[str, float] = {"max_bytes": MiB, "max_duration_s": 60.0, **kw}
    with pytest.raises(UploadRejected) as info:
        await validate_upload(data, name, max_bytes=int(limits["max_bytes"]),
                              max_duration_s=limits["max_duration_s"])
    err = info.value
    assert err.filename == name and name in str(err)
    assert any("\u4e00" <= c <= "\u9fff" for c in err.message_zh)  # the operator reads Chinese
    return err


async def test_text_renamed_to_mp3_is_not_audio() -> None:
    data = (DATA / "notice-text-renamed.mp3").read_bytes()
    err = await rejected(data, "notice.mp3")
    assert err.problem is UploadProblem.NOT_AUDIO and "MP3" in err.message_zh


async def test_random_bytes_are_not_audio() -> None:
    err = await rejected(bytes(range(256)) * 40, "noise.wav")
    assert err.problem is UploadProblem.NOT_AUDIO


async def test_empty_and_too_big_are_refused_before_decoding() -> None:
    assert (await rejected(b"")).problem is UploadProblem.EMPTY
    err = await rejected(wav_file(1.0), "big.wav", max_bytes=1000)
    assert err.problem is UploadProblem.TOO_BIG and "MB" in err.message_zh


async def test_too_long_too_short_and_silent() -> None:
    data = await mp3_file(3.0)
    assert (await rejected(data, max_duration_s=2.0)).problem is UploadProblem.TOO_LONG
    assert (await rejected(wav_file(0.2), "short.wav")).problem is UploadProblem.TOO_SHORT
    assert (await rejected(wav_file(1.0, silent=True), "quiet.wav")).problem is UploadProblem.SILENT


@pytest.mark.parametrize("rate", [7_000, 96_000])
async def test_odd_sample_rates_are_refused(rate: int) -> None:
    err = await rejected(wav_file(0.8, rate), "odd.wav")
    assert err.problem is UploadProblem.BAD_SAMPLE_RATE and str(rate) in err.message_zh
