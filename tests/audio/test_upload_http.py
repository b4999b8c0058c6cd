"""Uploads: a truncated MP3, a 2-hour file and a renamed text file are refused with Chinese errors, directly
and over HTTP (``POST /api/audio`` in a real aiohttp app on 127.0.0.1); a good recording is stored."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from broadcast.audio.cache import AudioCache
from broadcast.audio.ffmpeg import run_ffmpeg
from broadcast.audio.render import AudioRenderer
from broadcast.audio.truncation import mp3_truncated, wav_truncated
from broadcast.audio.upload import UploadProblem, UploadRejected, validate_upload
from broadcast.web.audio_routes import add_audio_routes
from tests.audio.helpers import decode

DATA = Path(__file__).parent.parent / "data" / "audio"
MiB = 1024 * 1024


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


async def sine_mp3(seconds: float, *, rate: int = 44_100, bitrate_k: int = 128, headers: bool = True) -> bytes:
    extra = [] if headers else ["-id3v2_version", "0", "-write_xing", "0"]
    out, _ = await run_ffmpeg(
        ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-ac", "1", "-ar", str(rate),
         "-c:a", "libmp3lame", "-b:a", f"{bitrate_k}k", *extra, "-f", "mp3", "pipe:1"],
        b"", what="make test mp3",
    )
    return out


async def two_hour_mp3() -> bytes:
    """Two hours of 8 kbit/s MP3, made cheaply: 60 s encoded once, frames repeated 120 times."""
    minute = await sine_mp3(60, rate=8_000, bitrate_k=8, headers=False)
    return minute * 120


async def refused(data: bytes, name: str, **limits: float) -> UploadRejected:
    with pytest.raises(UploadRejected) as info:
        await validate_upload(data, name, max_bytes=int(limits.get("max_bytes", 10 * MiB)),
                              max_duration_s=limits.get("max_duration_s", 600.0))
    assert has_chinese(info.value.message_zh) and name in str(info.value)
    return info.value


async def test_truncated_mp3_is_refused_though_ffmpeg_decodes_it() -> None:
    whole = await sine_mp3(5)
    assert not mp3_truncated(whole)
    ok = await validate_upload(whole, "whole.mp3", max_bytes=MiB, max_duration_s=60)
    assert ok.duration_s == pytest.approx(5.0, abs=0.15)
    for cut in (len(whole) * 6 // 10, len(whole) - 200):
        assert mp3_truncated(whole[:cut])
        err = await refused(whole[:cut], "cut.mp3")
        assert err.problem is UploadProblem.TRUNCATED and "不完整" in err.message_zh


async def test_truncated_wav_is_refused_by_its_declared_length() -> None:
    out, _ = await run_ffmpeg(
        ["-f", "lavfi", "-i", "sine=frequency=440:duration=4", "-ar", "16000", "-c:a", "pcm_s16le",
         "-f", "wav", "-bitexact", "pipe:1"], b"", what="make wav")
    wav = bytearray(out)
    # ffmpeg cannot fill in sizes on a pipe: write the real ones, as a recorder would
    wav[4:8] = (len(wav) - 8).to_bytes(4, "little")
    data_at = wav.index(b"data")
    wav[data_at + 4 : data_at + 8] = (len(wav) - data_at - 8).to_bytes(4, "little")
    ok = await validate_upload(bytes(wav), "ok.wav", max_bytes=MiB, max_duration_s=60)
    assert ok.duration_s == pytest.approx(4.0, abs=0.05)
    assert not wav_truncated(bytes(wav)) and wav_truncated(bytes(wav[: len(wav) // 2]))
    err = await refused(bytes(wav[: len(wav) // 2]), "half.wav")
    assert err.problem is UploadProblem.TRUNCATED and "不完整" in err.message_zh


async def test_two_hour_file_is_refused_without_decoding_it_all() -> None:
    data = await two_hour_mp3()
    assert len(data) < 8 * MiB
    err = await refused(data, "两小时.mp3", max_duration_s=600)
    assert err.problem is UploadProblem.TOO_LONG and "600" in err.message_zh


async def test_renamed_text_file_is_refused() -> None:
    err = await refused((DATA / "notice-text-renamed.mp3").read_bytes(), "通知.mp3")
    assert err.problem is UploadProblem.NOT_AUDIO and "MP3" in err.message_zh


# -- over HTTP ---------------------------------------------------------------------------------------------


@dataclass
class Host:
    audio_cache: AudioCache
    renderer: AudioRenderer


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[str, Host]]:
    cache = AudioCache(tmp_path / "cache")
    host = Host(cache, AudioRenderer(cache))
    app = web.Application()
    add_audio_routes(app, cache=cache, options=host.renderer.options, max_bytes=8 * MiB, max_duration_s=600)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/api/audio", host
    await runner.cleanup()


async def upload(url: str, data: bytes, filename: str, field: str = "file") -> tuple[int, dict[str, object]]:
    form = aiohttp.FormData()
    form.add_field(field, io.BytesIO(data), filename=filename, content_type="audio/mpeg")
    async with aiohttp.ClientSession() as http, http.post(url, data=form) as resp:
        return resp.status, await resp.json()


async def test_good_recording_is_stored_and_described(api: tuple[str, Host], tmp_path: Path) -> None:
    url, host = api
    status, body = await upload(url, await sine_mp3(3), "村委会通知.mp3")
    assert status == 201, body
    digest = str(body["digest"])
    path = host.audio_cache.path_for(digest, "mp3")
    assert path is not None and hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert body["sample_rate"] == 44_100 and body["filename"] == "村委会通知.mp3"
    assert body["duration_s"] == pytest.approx(3.0, abs=0.1)
    assert body["url"] == f"/audio/{digest}.mp3"
    assert abs(decode(path).duration_seconds - 3.0) < 0.2


async def test_bad_uploads_get_clear_chinese_errors_over_http(api: tuple[str, Host]) -> None:
    url, host = api
    text = (DATA / "notice-text-renamed.mp3").read_bytes()
    whole = await sine_mp3(5)
    cases = [
        (text, "notice.mp3", 422, "not_audio"),
        (whole[: len(whole) * 6 // 10], "cut.mp3", 422, "truncated"),
        (await two_hour_mp3(), "long.mp3", 422, "too_long"),
    ]
    for data, name, want_status, want_error in cases:
        status, body = await upload(url, data, name)
        assert (status, body["error"], body["filename"]) == (want_status, want_error, name)
        assert has_chinese(str(body["message"]))
    assert host.audio_cache.digests() == set()  # nothing refused was stored


async def test_too_big_missing_field_and_not_multipart(api: tuple[str, Host]) -> None:
    url, _ = api
    status, body = await upload(url, b"\0" * (8 * MiB + 1), "big.mp3")
    assert status == 413 and body["error"] == "too_big" and "MB" in str(body["message"])
    status, body = await upload(url, b"abc", "x.mp3", field="other")
    assert status == 400 and body["error"] == "missing_file"
    async with aiohttp.ClientSession() as http, http.post(url, data=b"raw bytes") as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "not_multipart"
