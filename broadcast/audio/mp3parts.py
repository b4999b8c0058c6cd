"""Fast MP3 encoding of long speech: split at pauses, encode the parts at once, join the frames.

Owns: finding pauses (runs of digital silence, as espeak-ng and the renderer's own gaps produce) near
evenly spaced split points, encoding the parts with ``encode`` concurrently (one LAME thread each —
GAIN levelling in-process by numpy, a loudnorm filter by one ffmpeg process for all parts; one ffmpeg
process each without ``lameenc``), and the duration of a headerless CBR MP3 from its size.

Why joining works: every part is a separate LAME encode with no ID3 or Xing header, so it starts
with a frame that owes nothing to an earlier frame (no bit reservoir crosses a join) and ends on a whole
frame; with identical parameters the concatenation is one valid MP3 stream. Each join adds the encoder
delay and the last frame's padding (≈50–70 ms of silence) — which is why splits are made only in pauses.

Must never: split inside speech (no pause found means no split), mix encoding parameters in one stream,
or run more encoders at once than ``EncodeOptions.encode_jobs``.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Iterator

from broadcast.audio.encode import (
    encode,
    in_process_level,
    in_process_mp3,
    lame_levelled_mp3,
    numpy_levelled_mp3,
)
from broadcast.audio.encode_options import WORK_RATE, EncodeOptions, OutputFormat

MIN_CHUNK_S = 8.0  # shorter speech is encoded in one piece: a second process would cost more than it saves
MIN_PAUSE_S = 0.05  # a split point needs at least this much digital silence
SEARCH_S = 6.0  # look this far either side of an ideal split point for a pause

_PAUSE_BYTES = bytes(2 * int(MIN_PAUSE_S * WORK_RATE) + 1)
_NONZERO_RE = re.compile(rb"[^\x00]")


def _pauses(pcm: bytes, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """(start, end) byte offsets of zero runs of at least ``MIN_PAUSE_S`` starting in [lo, hi).

    ``bytes.find`` (C speed, ≈1 ms a minute of speech); a regex over two-byte groups costs ~100 ms."""
    pos = pcm.find(_PAUSE_BYTES, lo, hi)
    while pos >= 0:
        m = _NONZERO_RE.search(pcm, pos + len(_PAUSE_BYTES))
        end = m.start() if m else len(pcm)
        yield pos, end
        pos = pcm.find(_PAUSE_BYTES, end, hi)


def split_at_pauses(pcm: bytes, parts: int, *, min_chunk_s: float = MIN_CHUNK_S) -> list[bytes]:
    """Cut 16-bit work PCM into at most ``parts`` pieces of similar length, only in the middle of pauses.

    The pieces concatenate back to ``pcm`` exactly."""
    n = len(pcm) // 2
    parts = max(1, min(parts, int(n / (min_chunk_s * WORK_RATE))))
    if parts == 1:
        return [pcm]
    window = int(SEARCH_S * WORK_RATE) * 2
    cuts: list[int] = []
    for k in range(1, parts):
        ideal = len(pcm) * k // parts
        best: int | None = None
        lo = max(cuts[-1] if cuts else 0, ideal - window)
        for run_start, run_end in _pauses(pcm, lo, min(len(pcm), ideal + window)):
            middle = (run_start + run_end) // 4 * 2  # sample-aligned
            if middle <= lo or middle >= len(pcm):
                continue
            if best is None or abs(middle - ideal) < abs(best - ideal):
                best = middle
        if best is not None:
            cuts.append(best)
    bounds = [0, *cuts, len(pcm)]
    return [pcm[a:b] for a, b in itertools.pairwise(bounds) if b > a]


async def encode_mp3(
    pcm: bytes, options: EncodeOptions, *, audio_filter: str | None = None, timeout_s: float = 120.0
) -> bytes:
    """Encode work PCM to MP3 using up to ``options.encode_jobs`` encoders at once (split at pauses).

    A GAIN levelling chain (``level_filter``) is applied in-process by numpy and the pieces go straight to
    LAME (``numpy_levelled_mp3``: no process at all). Otherwise (loudnorm, or numpy missing):
    With in-process LAME and a levelling filter one ffmpeg process levels all the speech while one LAME
    thread per piece encodes its share as it arrives (``lame_levelled_mp3``): a further ffmpeg process
    would cost ≈45 ms of CPU just to start."""
    pieces = split_at_pauses(pcm, options.encode_jobs)
    level = in_process_level(audio_filter)
    if level is not None:
        return await numpy_levelled_mp3(pieces, level, options)
    if audio_filter and in_process_mp3():
        return await lame_levelled_mp3(pieces, audio_filter, options, timeout_s=timeout_s)
    encoded = await asyncio.gather(
        *(
            encode(p, OutputFormat.MP3, options, timeout_s=timeout_s, audio_filter=audio_filter)
            for p in pieces
        )
    )
    return b"".join(encoded)


def mp3_duration_s(data: bytes, options: EncodeOptions) -> float:
    """Playing time of a headerless CBR MP3 made with ``options`` (what a decoder outputs, joins included)."""
    return len(data) * 8 / (options.mp3_bitrate_k * 1000)
