"""In-process MP3 encoding (lameenc): the stream format, joining with the pre-encoded chimes, loudness,
and the ffmpeg fallback when lameenc cannot be imported."""

from __future__ import annotations

import re

import pytest

from broadcast.audio import encode as encode_mod
from broadcast.audio import encode_options
from broadcast.audio.encode import encode, in_process_mp3, level_filter, rms_dbfs
from broadcast.audio.encode_options import WORK_RATE, EncodeOptions, OutputFormat
from broadcast.audio.ffmpeg import run_ffmpeg
from broadcast.audio.mp3parts import encode_mp3, mp3_duration_s
from broadcast.audio.tone import chime_pcm, silence_pcm
from tests.audio.helpers import decode_mp3_pcm, mp3_frames_ok, speechlike

OPTS = EncodeOptions()


def _decoded_rate_and_channels(err: str) -> tuple[int, int]:
    m = re.search(r"Audio: mp3.*?, (\d+) Hz, (mono|stereo)", err)
    assert m, err
    return int(m.group(1)), 1 if m.group(2) == "mono" else 2


def test_lameenc_is_installed_and_used() -> None:
    assert in_process_mp3()


async def test_lame_output_concatenates_with_chimes_into_one_valid_mp3() -> None:
    opening_pcm = chime_pcm(WORK_RATE) + silence_pcm(WORK_RATE, 0.5)
    closing_pcm = silence_pcm(WORK_RATE, 0.5) + chime_pcm(WORK_RATE, closing=True)
    opening = await encode(opening_pcm, OutputFormat.MP3, OPTS)
    closing = await encode(closing_pcm, OutputFormat.MP3, OPTS)
    speech_pcm = speechlike(20.0)
    speech = await encode_mp3(speech_pcm, OPTS, audio_filter=level_filter(OPTS, [speech_pcm]))
    whole = opening + speech + closing
    assert b"Xing" not in whole and b"Info" not in whole and b"ID3" not in whole  # no header frame mid-stream
    frames = mp3_frames_ok(whole)
    assert frames == sum(mp3_frames_ok(p) for p in (opening, speech, closing))

    # ffmpeg decodes the joined stream without one error, as mono 24 kHz, for as long as its size says.
    pcm, err = await run_ffmpeg(
        ["-f", "mp3", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "pipe:1"], whole, what="decode joined mp3"
    )
    assert _decoded_rate_and_channels(err) == (24_000, 1)
    _, errors = await decode_mp3_pcm(whole)
    assert errors.strip() == ""
    decoded_s = len(pcm) / 2 / 24_000
    assert decoded_s == pytest.approx(mp3_duration_s(whole, OPTS), abs=0.01)
    source_s = (len(opening_pcm) + len(speech_pcm) + len(closing_pcm)) / 2 / WORK_RATE
    assert source_s < decoded_s < source_s + 0.5  # encoder delay + padding per part, nothing lost


async def test_lame_and_ffmpeg_parts_join(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cached part encoded by the ffmpeg path still joins with parts LAME encodes in-process."""
    chime = await encode(chime_pcm(WORK_RATE), OutputFormat.MP3, OPTS)
    monkeypatch.setattr(encode_options, "lameenc", None)
    assert not in_process_mp3()
    old = await encode(speechlike(3.0), OutputFormat.MP3, OPTS)
    whole = chime + old + chime
    mp3_frames_ok(whole)
    pcm, errors = await decode_mp3_pcm(whole)
    assert errors.strip() == ""
    assert len(pcm) / 2 / 24_000 == pytest.approx(mp3_duration_s(whole, OPTS), abs=0.01)


async def test_levelled_loudness_matches_the_ffmpeg_path(monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = speechlike(6.0, amplitude=800)
    audio_filter = level_filter(OPTS, [quiet])
    assert audio_filter is not None
    lame = await encode(quiet, OutputFormat.MP3, OPTS, audio_filter=audio_filter)
    monkeypatch.setattr(encode_options, "lameenc", None)
    ffmpeg = await encode(quiet, OutputFormat.MP3, OPTS, audio_filter=audio_filter)
    lame_pcm, _ = await decode_mp3_pcm(lame)
    ffmpeg_pcm, _ = await decode_mp3_pcm(ffmpeg)
    lame_db, ffmpeg_db = rms_dbfs([lame_pcm], stride=1), rms_dbfs([ffmpeg_pcm], stride=1)
    assert lame_db > rms_dbfs([quiet], stride=1) + 10  # the gain was applied
    assert lame_db == pytest.approx(ffmpeg_db, abs=0.3)


async def test_lame_output_is_deterministic_and_empty_stays_empty() -> None:
    pcm = speechlike(2.0)
    first = await encode(pcm, OutputFormat.MP3, OPTS)
    assert first == await encode(pcm, OutputFormat.MP3, OPTS)
    assert await encode(b"", OutputFormat.MP3, OPTS) == b""


async def test_wav_output_does_not_go_through_lame() -> None:
    wav = await encode(speechlike(1.0), OutputFormat.WAV, OPTS)
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"


async def test_streamed_encode_equals_encoding_the_levelled_pcm_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Levelling in ffmpeg while LAME encodes its output as it arrives gives the very bytes of levelling
    first and encoding the whole result in one call (chunking must not change the stream)."""
    monkeypatch.setattr(encode_options, "numpy", None)  # the ffmpeg levelling path (numpy missing)
    pcm = speechlike(12.0, amplitude=900)
    audio_filter = level_filter(OPTS, [pcm])
    assert audio_filter is not None
    streamed = await encode(pcm, OutputFormat.MP3, OPTS, audio_filter=audio_filter)
    levelled = await encode_mod.filter_pcm(pcm, audio_filter, sample_rate=OPTS.mp3_rate)
    assert streamed == encode_mod.lame_mp3(levelled, OPTS.mp3_rate, OPTS)


async def test_short_levelled_speech_is_not_lost() -> None:
    pcm = speechlike(0.05)
    data = await encode(pcm, OutputFormat.MP3, OPTS, audio_filter="volume=2dB")
    mp3_frames_ok(data)
    decoded, _ = await decode_mp3_pcm(data)
    assert len(decoded) / 2 / 24_000 >= 0.05


async def test_a_failing_filter_raises_ffmpeg_error() -> None:
    from broadcast.audio.ffmpeg import FfmpegError

    with pytest.raises(FfmpegError, match="level speech for mp3"):
        await encode(speechlike(0.5), OutputFormat.MP3, OPTS, audio_filter="nosuchfilter=1")


async def test_split_speech_is_levelled_once_and_its_pieces_encoded_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long speech: one levelling pass over all of it, cut at the pause, each piece its own LAME stream."""
    from broadcast.audio.mp3parts import split_at_pauses

    monkeypatch.setattr(encode_options, "numpy", None)  # the ffmpeg levelling path (numpy missing)

    pcm = speechlike(20.0, amplitude=900)
    pieces = split_at_pauses(pcm, OPTS.encode_jobs)
    assert len(pieces) == 2
    audio_filter = level_filter(OPTS, [pcm])
    assert audio_filter is not None
    data = await encode_mp3(pcm, OPTS, audio_filter=audio_filter)
    levelled = await encode_mod.filter_pcm(pcm, audio_filter, sample_rate=OPTS.mp3_rate)
    cut = len(pieces[0]) // 2 * OPTS.mp3_rate // WORK_RATE * 2
    expected = b"".join(encode_mod.lame_mp3(p, OPTS.mp3_rate, OPTS) for p in (levelled[:cut], levelled[cut:]))
    assert data == expected
