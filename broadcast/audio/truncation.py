"""Noticing a cut-off recording (截断的文件) that ffmpeg decodes without complaint.

Owns: for MP3, walking the Layer III frame headers (after an ID3v2 tag) and saying whether the last frame
runs past the end of the data; for WAV, comparing the RIFF ``data`` chunk's declared size with the bytes
present (ffmpeg ignores the declared size and plays what is there).

Must never: decode audio, or call a file truncated when unsure (anything it does not understand — another
layer, a free-format frame, junk or a trailing tag — ends the walk with "not truncated").
"""

from __future__ import annotations

_BITRATES_K = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1 Layer III
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2 Layer III
    0: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2.5 Layer III
}
_RATES = {3: (44_100, 48_000, 32_000), 2: (22_050, 24_000, 16_000), 0: (11_025, 12_000, 8_000)}


def _id3v2_end(data: bytes) -> int:
    if len(data) < 10 or data[:3] != b"ID3":
        return 0
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    footer = 10 if data[5] & 0x10 else 0
    return 10 + size + footer


def _frame_length(header: bytes) -> int | None:
    """Length in bytes of the Layer III frame starting with ``header`` (4 bytes), or None if not one."""
    b1, b2 = header[1], header[2]
    if header[0] != 0xFF or b1 & 0xE0 != 0xE0:
        return None
    version = (b1 >> 3) & 3
    layer = (b1 >> 1) & 3
    if version == 1 or layer != 1:  # reserved version, or not Layer III
        return None
    br_index, sr_index, padding = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
    if br_index in (0, 15) or sr_index == 3:  # free format / bad bitrate / reserved rate
        return None
    bitrate = _BITRATES_K[version][br_index] * 1000
    rate = _RATES[version][sr_index]
    per_frame = 144 if version == 3 else 72
    return per_frame * bitrate // rate + padding


def mp3_truncated(data: bytes) -> bool:
    """True if ``data`` is a Layer III stream whose last frame is cut off."""
    pos = _id3v2_end(data)
    frames = 0
    while pos + 4 <= len(data):
        length = _frame_length(data[pos : pos + 4])
        if length is None:
            return False  # a trailing tag, junk, or something this walk does not understand
        if pos + length > len(data):
            return frames > 0 or pos > 0
        pos += length
        frames += 1
    return frames > 0 and 0 < len(data) - pos < 4


def wav_truncated(data: bytes) -> bool:
    """True if ``data`` is a RIFF/WAVE file whose ``data`` chunk declares more bytes than it holds.

    A size of 0 or 0xFFFFFFFF (written by streaming recorders that never went back) is not a claim."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return False
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk == b"data":
            return size not in (0, 0xFFFFFFFF) and pos + 8 + size > len(data)
        pos += 8 + size + (size & 1)
    return False
