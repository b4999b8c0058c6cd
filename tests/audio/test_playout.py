"""Tone-first playout: the opening chime is available before any speech exists, the parts join into one
valid MP3, failures and timeouts end the stream, ended messages are forgotten."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from broadcast.audio.cache import AudioCache
from broadcast.audio.playout import LiveProgrammes, LiveState, PlayoutError, PlayoutFailure
from broadcast.audio.render import AudioRenderer, Layout
from broadcast.audio.tone import CLOSING_NOTES_HZ, OPENING_NOTES_HZ
from broadcast.clock import ManualClock
from tests.audio.helpers import SENTENCE, decode, samples, tone_fraction
from tests.audio.live_helpers import T0, decode_mp3, ebm, make_live
from tests.helpers.poll import until

END = T0 + timedelta(hours=1)


async def test_opening_comes_first_and_the_parts_make_one_mp3(tmp_path: Path) -> None:
    live, engine, _ = await make_live(tmp_path)
    prog = await live.start(ebm(1), "暴雨预警", SENTENCE, expires_at=END)
    stream = prog.stream()
    first = await anext(stream)
    assert first == prog.opening and first[:2] == b"\xff\xf3"  # MPEG-2 layer III frame, no ID3 tag
    await until(lambda: engine.waiting == 1)
    assert prog.state.value == "rendering" and not prog.settled  # nothing has been synthesised yet

    engine.gate.set()
    rest = [chunk async for chunk in stream]
    whole = first + b"".join(rest)
    assert prog.state is LiveState.READY and whole == prog.full_bytes()

    seconds, complaints = decode_mp3(whole, tmp_path)
    assert complaints == ""
    ref = await prog.result()
    assert ref.digest == hashlib.sha256(whole).hexdigest() and ref.format == "mp3"
    assert ref.engine == "gated-espeak"
    assert live.renderer.cache.path_for(ref.digest, "mp3") is not None
    # The recorded duration is of the encoded parts, joins (encoder delay and padding) included.
    assert ref.duration_s == pytest.approx(seconds, abs=0.03)
    assert ref.duration_s > 3.0 + 0.1 * len(SENTENCE)

    (tmp_path / "whole.mp3").write_bytes(whole)
    seg = decode(tmp_path / "whole.mp3")
    xs, rate = samples(seg), seg.frame_rate
    assert tone_fraction(xs[int(0.05 * rate) : int(0.6 * rate)], rate, OPENING_NOTES_HZ[0]) > 0.7
    assert tone_fraction(xs[int(2.2 * rate) : int(4.0 * rate)], rate, OPENING_NOTES_HZ[0]) < 0.3  # speech
    end = len(xs) - int(0.8 * rate)
    assert tone_fraction(xs[end + int(0.05 * rate) : end + int(0.6 * rate)], rate, CLOSING_NOTES_HZ[1]) > 0.7


async def test_same_layout_as_a_full_render(tmp_path: Path) -> None:
    live, engine, _ = await make_live(tmp_path)
    engine.gate.set()
    prog = await live.start(ebm(2), "", SENTENCE, expires_at=END, repeats=2)
    ref = await prog.result()
    full = await live.renderer.render("", SENTENCE, repeats=2)
    assert ref.duration_s == pytest.approx(full.ref.duration_s, abs=0.1)  # espeak varies by a few ms
    assert ref.digest != full.ref.digest  # separately encoded parts, but the same programme


async def test_late_joiners_get_identical_bytes_in_one_go(tmp_path: Path) -> None:
    live, engine, _ = await make_live(tmp_path)
    prog = await live.start(ebm(3), "", SENTENCE, expires_at=END)
    early = prog.stream()
    head = await anext(early)
    engine.gate.set()
    streamed = head + b"".join([c async for c in early])
    late = [c async for c in prog.stream()]
    assert b"".join(late) == streamed
    assert late[0] != prog.opening  # a settled programme is sent whole, not opening-first
    again = await live.start(ebm(3), "", SENTENCE, expires_at=END)
    assert again is prog and engine.calls == [SENTENCE]


async def test_failed_render_ends_with_the_fallback_notice_and_closing_chime(tmp_path: Path) -> None:
    live, engine, _ = await make_live(tmp_path)
    fallback = await live.renderer.render("", "语音暂时无法播放", layout=Layout.SPEECH)
    chimes = await live.renderer.chime_segments()
    engine.fail = True
    prog = await live.start(ebm(4), "", SENTENCE, expires_at=END)
    stream = prog.stream()
    assert await anext(stream) == chimes.opening
    engine.gate.set()
    rest = b"".join([c async for c in stream])
    assert rest == fallback.path.read_bytes() + chimes.closing
    assert prog.state is LiveState.FAILED
    with pytest.raises(PlayoutError) as info:
        await prog.result()
    assert info.value.ebm_id == ebm(4) and info.value.failure is PlayoutFailure.RENDER_FAILED
    assert "语音" in str(info.value)
    _, complaints = decode_mp3(chimes.opening + rest, tmp_path)
    assert complaints == ""


async def test_without_a_fallback_a_failure_is_just_the_two_chimes(tmp_path: Path) -> None:
    live, engine, _ = await make_live(tmp_path, fallback=None)
    chimes = await live.renderer.chime_segments()
    engine.fail = True
    engine.gate.set()
    prog = await live.start(ebm(5), "", SENTENCE, expires_at=END)
    body = b"".join([c async for c in prog.stream()])
    assert body == chimes.opening + chimes.closing


async def test_a_slow_render_never_holds_a_client_past_the_bounded_wait(tmp_path: Path) -> None:
    live, engine, _ = await make_live(tmp_path, speech_wait_s=0.05, fallback=None)
    chimes = await live.renderer.chime_segments()
    prog = await live.start(ebm(6), "", SENTENCE, expires_at=END)
    body = b"".join([c async for c in prog.stream()])  # the gate stays shut
    assert body == chimes.opening + chimes.closing
    assert prog.waits_timed_out == 1 and prog.state is LiveState.RENDERING
    engine.gate.set()  # the speech still arrives for whoever asks later
    await prog.result()
    late = b"".join([c async for c in prog.stream()])
    assert len(late) > len(body) and late.startswith(chimes.opening) and late.endswith(chimes.closing)


async def test_ended_messages_are_forgotten_and_their_render_cancelled(tmp_path: Path) -> None:
    live, _engine, clock = await make_live(tmp_path)
    prog = await live.start(ebm(7), "", SENTENCE, expires_at=T0 + timedelta(seconds=30))
    assert live.get(ebm(7)) is prog
    clock.advance(29)
    assert live.get(ebm(7)) is prog
    clock.advance(1)
    assert live.get(ebm(7)) is None and len(live) == 0
    with pytest.raises(PlayoutError) as info:
        await prog.result()
    assert info.value.failure is PlayoutFailure.EXPIRED
    assert prog.settled  # a stream still running gets its ending instead of hanging


async def test_open_before_warm_is_refused_with_a_hint(tmp_path: Path) -> None:
    live = LiveProgrammes(AudioRenderer(AudioCache(tmp_path)), ManualClock(T0))
    with pytest.raises(PlayoutError) as info:
        live.open(ebm(8), END)
    assert info.value.failure is PlayoutFailure.NOT_WARMED and "warm" in str(info.value)


async def test_speech_layout_is_mp3_only_and_keyed_apart(tmp_path: Path) -> None:
    live, engine, _ = await make_live(tmp_path)
    engine.gate.set()
    with pytest.raises(ValueError):
        await live.renderer.render("", SENTENCE, fmt="wav", layout=Layout.SPEECH)
    speech = await live.renderer.render("", SENTENCE, layout=Layout.SPEECH)
    full = await live.renderer.render("", SENTENCE)
    assert not full.from_cache and speech.ref.digest != full.ref.digest
    chimes = await live.renderer.chime_segments()
    assert chimes.opening_s == pytest.approx(1.8, abs=0.1) and chimes.closing_s == pytest.approx(2.0, abs=0.1)
    # durations are of the encoded pieces, so the parts add up exactly (espeak varies by a few ms)
    assert speech.ref.duration_s == pytest.approx(full.ref.duration_s - chimes.opening_s - chimes.closing_s,
                                                  abs=0.03)
    assert engine.calls == [SENTENCE, SENTENCE]

