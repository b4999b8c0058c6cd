"""Decoding what the renderer produced: duration, integrated loudness and peak (ffmpeg ebur128), chime and
speech segments by energy, the repeat count; and the parallel encoder's split points."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from broadcast.audio.cache import AudioCache
from broadcast.audio.encode_options import WORK_RATE, EncodeOptions, Loudness
from broadcast.audio.espeak import EspeakEngine
from broadcast.audio.ffmpeg import run_ffmpeg
from broadcast.audio.mp3parts import encode_mp3, split_at_pauses
from broadcast.audio.render import AudioRenderer, Layout
from broadcast.audio.tone import CLOSING_NOTES_HZ, OPENING_NOTES_HZ, silence_pcm
from tests.audio.helpers import SENTENCE, decode, samples, tone_fraction

WARNING = (
    "安宁市气象台发布暴雨红色预警信号：过去三小时全市降雨量已达一百毫米以上，且降雨将持续，请立即停止户外活动，"
    "远离河道、山洪沟和地质灾害隐患点，低洼地区群众请迅速转移到安全地带。学校、幼儿园停课，在校学生由学校妥善安置。"
    "请相互转告，听从村组干部指挥，不要涉水过河，不要靠近危房和陡坡。如遇险情请拨打一一零或一一九求助。"
)


async def loudness(path: Path) -> tuple[float, float, float]:
    """(integrated LUFS, sample peak dBFS, true peak dBFS) from ffmpeg's EBU R128 meter."""
    _, err = await run_ffmpeg(
        ["-i", str(path), "-af", "ebur128=peak=sample+true", "-f", "null", "-"], b"", what="measure"
    )
    summary = err[err.rindex("Summary:"):]
    integrated = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peaks = re.findall(r"Peak:\s+(-?[\d.]+) dBFS", summary)
    assert integrated is not None and len(peaks) == 2, summary
    return float(integrated.group(1)), float(peaks[0]), float(peaks[1])


def loud_runs(xs: list[int], rate: int, *, block_s: float = 0.05, min_gap_s: float = 1.5) -> list[tuple[float, float]]:
    """(start, end) seconds of sounding stretches separated by at least ``min_gap_s`` of quiet (by block RMS)."""
    n = int(block_s * rate)
    levels = [math.sqrt(sum(x * x for x in xs[i : i + n]) / n) for i in range(0, len(xs) - n + 1, n)]
    floor = max(levels) * 10 ** (-40 / 20)
    runs: list[tuple[float, float]] = []
    for i, level in enumerate(levels):
        if level <= floor:
            continue
        t = i * block_s
        if runs and t - runs[-1][1] < min_gap_s:
            runs[-1] = (runs[-1][0], t + block_s)
        else:
            runs.append((t, t + block_s))
    return runs


@pytest.mark.parametrize("volume", [15, 100])
async def test_speech_meets_the_loudness_target_and_peak_ceiling(tmp_path: Path, volume: int) -> None:
    r = AudioRenderer(AudioCache(tmp_path), [EspeakEngine(volume=volume)])
    assert r.options.loudness is Loudness.GAIN  # the default method is the one held to the target
    out = await r.render("", WARNING, layout=Layout.SPEECH)
    integrated, sample_peak, true_peak = await loudness(out.path)
    assert -17.0 <= integrated <= -15.0  # -16 LUFS ± 1
    assert sample_peak <= -1.0 and true_peak <= -1.0
    full = await r.render("暴雨红色预警", WARNING, repeats=2)
    integrated, sample_peak, true_peak = await loudness(full.path)
    assert -17.0 <= integrated <= -15.0 and true_peak <= -1.0  # the chimes sit below the speech


async def test_full_programme_layout_by_energy_and_repeat_count(tmp_path: Path) -> None:
    r = AudioRenderer(AudioCache(tmp_path), [EspeakEngine()])
    once = await r.render("", SENTENCE, layout=Layout.SPEECH)
    out = await r.render("", SENTENCE, repeats=3, gap_s=2.0)
    seg = decode(out.path)
    assert seg.duration_seconds == pytest.approx(out.ref.duration_s, abs=0.03)
    xs, rate = samples(seg), seg.frame_rate
    runs = loud_runs(xs, rate)
    assert len(runs) == 3  # three sayings, each set apart by the 2 s gap
    lengths = [b - a for a, b in runs]
    # the chimes ride on the first and last saying; the middle one is the speech alone
    assert lengths[1] == pytest.approx(once.ref.duration_s, abs=0.3)
    assert lengths[0] > lengths[1] + 1.5 and lengths[2] > lengths[1] + 1.5
    assert runs[0][0] < 0.1  # sound from the first moment: the chime
    assert tone_fraction(xs[int(0.05 * rate) : int(0.6 * rate)], rate, OPENING_NOTES_HZ[0]) > 0.7
    end = len(xs) - int(0.8 * rate)
    assert tone_fraction(xs[end + int(0.05 * rate) : end + int(0.6 * rate)], rate, CLOSING_NOTES_HZ[1]) > 0.7
    mid = xs[int(runs[1][0] * rate) : int(runs[1][1] * rate)]
    assert tone_fraction(mid, rate, OPENING_NOTES_HZ[0]) < 0.3  # speech, not the chime
    speech_level = math.sqrt(sum(x * x for x in mid) / len(mid))
    gap = xs[int((runs[1][1] + 0.3) * rate) : int((runs[2][0] - 0.3) * rate)]
    assert len(gap) > 0.8 * rate and max(abs(x) for x in gap) < speech_level / 100  # the gap is silent


def test_split_only_in_pauses_and_lossless() -> None:
    tone = b"".join(int(8000 * math.sin(i / 3)).to_bytes(2, "little", signed=True) for i in range(WORK_RATE))
    pcm = (tone * 9 + silence_pcm(WORK_RATE, 0.3)) * 2 + tone * 3  # 21 s, one pause after 9 s and 18 s
    parts = split_at_pauses(pcm, 2)
    assert b"".join(parts) == pcm and len(parts) == 2
    cut = len(parts[0])
    assert cut % 2 == 0 and pcm[cut - 200 : cut + 200] == bytes(400)  # in the middle of a pause
    assert split_at_pauses(tone * 30, 2) == [tone * 30]  # no pause, no split
    assert split_at_pauses(pcm, 1) == [pcm] and split_at_pauses(tone * 3 + pcm[:100], 4) == [tone * 3 + pcm[:100]]


async def test_parallel_parts_join_into_one_clean_stream(tmp_path: Path) -> None:
    speech = (await EspeakEngine().synth(WARNING)).data
    one = await encode_mp3(speech, EncodeOptions(encode_jobs=1))
    two = await encode_mp3(speech, EncodeOptions(encode_jobs=2))
    assert len(split_at_pauses(speech, 2)) == 2
    (tmp_path / "two.mp3").write_bytes(two)
    _, err = await run_ffmpeg(["-v", "error", "-i", str(tmp_path / "two.mp3"), "-f", "null", "-"], b"", what="check")
    assert err.strip() == ""  # no decoder complaint at the join
    # one join adds the encoder delay and padding of one part: well under 0.1 s
    assert 0 <= (len(two) - len(one)) * 8 / 48_000 < 0.1
