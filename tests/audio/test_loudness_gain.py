"""The fast loudness method (measured gain + limiter) levels speech like loudnorm, and is keyed apart."""

from __future__ import annotations

from pathlib import Path

from broadcast.audio.cache import AudioCache
from broadcast.audio.encode_options import EncodeOptions, Loudness
from broadcast.audio.espeak import EspeakEngine
from broadcast.audio.render import AudioRenderer, Layout
from tests.audio.helpers import SENTENCE, decode


async def test_gain_levels_quiet_and_loud_voices_alike(tmp_path: Path) -> None:
    levels: dict[tuple[int, Loudness], tuple[float, float]] = {}
    for volume in (10, 100):
        for method in (Loudness.GAIN, Loudness.LOUDNORM):
            r = AudioRenderer(AudioCache(tmp_path), [EspeakEngine(volume=volume)],
                              options=EncodeOptions(loudness=method))
            seg = decode((await r.render("", SENTENCE, layout=Layout.SPEECH)).path)
            levels[(volume, method)] = (seg.dBFS, seg.max_dBFS)
    quiet, loud = levels[(10, Loudness.GAIN)], levels[(100, Loudness.GAIN)]
    assert abs(quiet[0] - loud[0]) < 1.5
    assert abs(quiet[0] - levels[(10, Loudness.LOUDNORM)][0]) < 2.5  # same level as the default method
    assert quiet[1] < -0.5 and loud[1] < -0.5  # the limiter kept the peaks under the ceiling


async def test_gain_renders_are_cached_apart_from_loudnorm(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path)
    a = await AudioRenderer(cache, options=EncodeOptions(loudness=Loudness.GAIN)).render("", SENTENCE)
    b = await AudioRenderer(cache, options=EncodeOptions(loudness=Loudness.LOUDNORM)).render("", SENTENCE)
    assert not b.from_cache and a.ref.digest != b.ref.digest
    c = await AudioRenderer(cache).render("", SENTENCE)  # the default method is GAIN
    assert c.from_cache and c.ref == a.ref
