"""CRC-32/MPEG-2, the checksum of the IP loudspeaker frames (eb-protocols §4.1), the cable-TV private
sections (§4.2) and the head-end inserter link: poly 0x04C11DB7, init 0xFFFFFFFF, no reflection,
xorout 0, check value 0x0376E6E7 (``field-conformance.md``).

Owns the one implementation of the product. Pure; never does I/O and never imports the product.
"""

from __future__ import annotations

import zlib

_BITREV8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _bitrev32(v: int) -> int:
    return int.from_bytes(v.to_bytes(4, "little").translate(_BITREV8), "big")


def crc32_mpeg2(data: bytes, crc: int = 0xFFFFFFFF) -> int:
    """CRC-32/MPEG-2 of ``data``, continuing from ``crc`` (chaining: ``crc32_mpeg2(b, crc32_mpeg2(a))``
    equals ``crc32_mpeg2(a + b)``).

    Computed with zlib's (reflected) CRC-32 in C: the same polynomial, so feeding it bit-reversed
    bytes and bit-reversing the register gives the non-reflected result — about 50× faster than a
    table loop in Python, which matters at tens of thousands of heartbeats a second.
    """
    reflected = zlib.crc32(data.translate(_BITREV8), _bitrev32(crc) ^ 0xFFFFFFFF) ^ 0xFFFFFFFF
    return _bitrev32(reflected)
