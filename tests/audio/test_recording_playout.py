"""An operator's uploaded recording played tone-first: chimes around it, once, as supplied."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from broadcast.audio.ffmpeg import run_ffmpeg
from broadcast.audio.playout import LiveState, PlayoutError, PlayoutFailure
from broadcast.audio.tone import OPENING_NOTES_HZ
from broadcast.audio.upload import validate_upload
from tests.audio.helpers import decode, samples, tone_fraction
from tests.audio.live_helpers import T0, ebm, make_live

END = T0 + timedelta(hours=1)


async def test_uploaded_recording_plays_between_the_chimes(tmp_path: Path) -> None:
    live, engine, _ = await make_live(tmp_path)
    rec, _ = await run_ffmpeg(["-f", "lavfi", "-i", "sine=frequency=300:duration=4", "-c:a", "libmp3lame",
                               "-b:a", "64k", "-f", "mp3", "pipe:1"], b"", what="make recording")
    ok = await validate_upload(rec, "录音.mp3", max_bytes=1 << 20, max_duration_s=60,
                               cache=live.renderer.cache, options=live.renderer.options)
    assert ok.ref is not None
    calls = list(engine.calls)  # the fallback notice rendered at warm-up
    prog = await live.start_recording(ebm(40), ok.ref.digest, expires_at=END)
    ref = await prog.result()
    assert prog.state is LiveState.READY and ref.engine == "upload" and engine.calls == calls  # no TTS
    chimes = await live.renderer.chime_segments()
    whole = prog.full_bytes()
    assert whole is not None and whole.startswith(chimes.opening) and whole.endswith(chimes.closing)
    (tmp_path / "whole.mp3").write_bytes(whole)
    seg = decode(tmp_path / "whole.mp3")
    assert seg.duration_seconds == pytest.approx(ref.duration_s, abs=0.03)
    assert ref.duration_s == pytest.approx(chimes.opening_s + 4.0 + chimes.closing_s, abs=0.15)  # said once
    xs, rate = samples(seg), seg.frame_rate
    assert tone_fraction(xs[int(0.05 * rate) : int(0.6 * rate)], rate, OPENING_NOTES_HZ[0]) > 0.7
    middle = xs[int((chimes.opening_s + 1) * rate) : int((chimes.opening_s + 3) * rate)]
    assert tone_fraction(middle, rate, 300.0) > 0.7  # the recording itself


async def test_missing_recording_fails_like_a_failed_render(tmp_path: Path) -> None:
    live, _, _ = await make_live(tmp_path)
    prog = await live.start_recording(ebm(41), "0" * 64, expires_at=END)
    with pytest.raises(PlayoutError) as info:
        await prog.result()
    assert info.value.failure is PlayoutFailure.RENDER_FAILED and "重新上传" in str(info.value)
    assert prog.state is LiveState.FAILED
