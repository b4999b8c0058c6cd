"""In-process levelling of work PCM with numpy: gain, a peak limiter without look-ahead, and linear
resampling. Called by broadcast/audio/encode.py only when numpy is importable (``encode_options.numpy``);
must never start a process and never import encode.py.
"""

from __future__ import annotations

from broadcast.audio import encode_options
from broadcast.audio.encode_options import LIMIT_HOLD_S, LIMIT_MARGIN_DB, WORK_RATE, GainLevel


def level_pcm(
    pcm: bytes, level: GainLevel, sample_rate: int = WORK_RATE, out_rate: int | None = None
) -> bytes:
    """Apply ``level`` to 16-bit mono PCM in-process: the gain, then a peak limiter that keeps every sample
    ≤ ``level.limit`` lowered by ``LIMIT_MARGIN_DB``. Blocking (≈10 ms a minute of speech); deterministic.

    The limiter needs no look-ahead (the whole clip is here): the gain each sample needs is eroded with a
    running minimum over ±2 × ``LIMIT_HOLD_S`` (in blocks) and then smoothed with a moving average over
    ±``LIMIT_HOLD_S`` — an average of values each ≤ the need at the centre, so the ceiling holds exactly,
    and the gain changes smoothly (no clicks). Digital silence stays digital silence.

    ``out_rate`` (default: ``sample_rate``) resamples the result by linear interpolation — far cheaper
    than LAME's resampler, never above the limited peaks, and its images fall above LAME's low-pass at
    the MP3 rates used here."""
    np = encode_options.numpy
    if np is None:
        raise RuntimeError("numpy is not installed: levelling goes through ffmpeg (filter_pcm())")
    n = len(pcm) // 2
    if n == 0:
        return b""
    x = np.frombuffer(pcm, dtype="<i2", count=n).astype(np.float64)
    x *= 10 ** (level.gain_db / 20)
    ceiling = level.limit * 10 ** (-LIMIT_MARGIN_DB / 20) * 32767
    mag = np.abs(x)
    if float(mag.max()) > ceiling:
        need = np.minimum(1.0, ceiling / np.maximum(mag, 1e-9))
        block = max(1, int(LIMIT_HOLD_S * sample_rate))
        blocks = -(-n // block)
        padded = np.ones(blocks * block)
        padded[:n] = need
        per_block = padded.reshape(blocks, block).min(axis=1)
        held = per_block.copy()
        held[1:] = np.minimum(held[1:], per_block[:-1])
        held[:-1] = np.minimum(held[:-1], per_block[1:])
        gain = np.repeat(held, block)[:n]
        # Moving average over 2·block+1 samples (edges padded with the edge value).
        r = block
        ext = np.concatenate((np.full(r, gain[0]), gain, np.full(r, gain[-1])))
        csum = np.concatenate(([0.0], np.cumsum(ext)))
        smooth = (csum[2 * r + 1 :] - csum[: -2 * r - 1]) / (2 * r + 1)
        x *= np.minimum(smooth, need)  # rounding in the cumulative sum must not lift a peak
    if out_rate is not None and out_rate != sample_rate:
        m = n * out_rate // sample_rate
        x = np.interp(np.arange(m, dtype=np.float64) * (sample_rate / out_rate), np.arange(n), x)
    out = np.clip(np.rint(x), -32768, 32767).astype("<i2")
    return bytes(out.tobytes())
