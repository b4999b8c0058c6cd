"""MPEG audio duration by walking frame headers, so a simulated terminal "plays" for as long as the
real audio lasts. Skips an ID3v2 tag (and its footer), a Xing/Info/VBRI header frame, garbage between
frames and an ID3v1 trailer.

Pure: bytes in, seconds out. Never does I/O and never decodes audio samples.
"""

from __future__ import annotations

# Bitrates in kbit/s indexed by [version_is_mpeg1][layer][index]; layer keys are 1, 2, 3.
_BITRATES_V1 = {
    1: (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    2: (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
}
_BITRATES_V2 = {
    1: (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    3: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_LAYERS = {3: 1, 2: 2, 1: 3}  # header bits → layer number


class NotMpegAudio(ValueError):
    """The bytes hold no MPEG audio frames."""


def _frame_info(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(frame length, samples, sample rate) for a valid header at ``pos``, else None."""
    if pos + 4 > len(data):
        return None
    b1, b2, b3 = data[pos + 1], data[pos + 2], data[pos + 3]
    if data[pos] != 0xFF or (b1 & 0xE0) != 0xE0:
        return None
    version_bits = (b1 >> 3) & 0x03  # 3 MPEG-1, 2 MPEG-2, 0 MPEG-2.5, 1 reserved
    layer = _LAYERS.get((b1 >> 1) & 0x03)
    bitrate_index = b2 >> 4
    rate_index = (b2 >> 2) & 0x03
    if version_bits == 1 or layer is None or bitrate_index in (0, 15) or rate_index == 3:
        return None
    del b3
    mpeg1 = version_bits == 3
    bitrate = (_BITRATES_V1 if mpeg1 else _BITRATES_V2)[layer][bitrate_index] * 1000
    rate = _SAMPLE_RATES[version_bits][rate_index]
    padding = (b2 >> 1) & 0x01
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4, 384, rate
    samples = 1152 if (layer == 2 or mpeg1) else 576
    return samples // 8 * bitrate // rate + padding, samples, rate


def _skip_id3v2(data: bytes) -> int:
    pos = 0
    # Several tags may be stacked; each is 10 bytes + syncsafe size (+ 10-byte footer if flagged).
    while data[pos : pos + 3] == b"ID3" and pos + 10 <= len(data):
        size_bytes = data[pos + 6 : pos + 10]
        size = 0
        for b in size_bytes:
            size = (size << 7) | (b & 0x7F)
        footer = 10 if data[pos + 5] & 0x10 else 0
        pos += 10 + size + footer
    return pos


def _is_vbr_header(data: bytes, pos: int, length: int) -> bool:
    frame = data[pos : pos + length]
    return b"Xing" in frame or b"Info" in frame or b"VBRI" in frame


def mpeg_duration(data: bytes) -> float:
    """Seconds of audio in MPEG-1/2/2.5 Layer I/II/III ``data``; raises ``NotMpegAudio`` if none."""
    pos = _skip_id3v2(data)
    seconds = 0.0
    frames = 0
    end = len(data)
    if end - pos >= 128 and data[end - 128 : end - 125] == b"TAG":
        end -= 128
    synced = False
    while pos < end:
        info = _frame_info(data, pos)
        # Out of sync, require the following header to be valid too (or the end), so a stray 0xFFE
        # in garbage or tag data is not taken for a frame.
        if info is not None and (
            synced or pos + info[0] >= end or _frame_info(data, pos + info[0]) is not None
        ):
            length, samples, rate = info
            if not (frames == 0 and _is_vbr_header(data, pos, length)):
                seconds += samples / rate
            frames += 1
            pos += length
            synced = True
        else:
            synced = False
            pos += 1
    if frames == 0:
        raise NotMpegAudio("no MPEG audio frame headers found")
    return seconds
