"""The product's one CRC-32/MPEG-2 (adapters.wire.crc, zlib-based) equals two independent reference
implementations written here — a table-driven one and the bit-by-bit definition — on every input and
initial value, and chains."""

from __future__ import annotations

import random

from adapters.wire.crc import crc32_mpeg2

POLY = 0x04C11DB7


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ POLY) if crc & 0x80000000 else (crc << 1)
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


TABLE = _table()


def reference_table(data: bytes, crc: int = 0xFFFFFFFF) -> int:
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ TABLE[((crc >> 24) ^ b) & 0xFF]
    return crc


def reference_bitwise(data: bytes, crc: int = 0xFFFFFFFF) -> int:
    for byte in data:
        for bit in range(7, -1, -1):
            top = ((crc >> 31) & 1) ^ ((byte >> bit) & 1)
            crc = (crc << 1) & 0xFFFFFFFF
            if top:
                crc ^= POLY
    return crc


def test_check_value() -> None:
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7
    assert reference_table(b"123456789") == reference_bitwise(b"123456789") == 0x0376E6E7
    assert crc32_mpeg2(b"") == 0xFFFFFFFF


def test_matches_reference_for_random_data_and_chaining() -> None:
    rng = random.Random(530181)
    for _ in range(3000):
        data = rng.randbytes(rng.randint(0, 400))
        init = rng.getrandbits(32)
        assert crc32_mpeg2(data, init) == reference_table(data, init)
        cut = rng.randint(0, len(data))
        assert crc32_mpeg2(data[cut:], crc32_mpeg2(data[:cut])) == crc32_mpeg2(data)
    for _ in range(200):
        data = rng.randbytes(rng.randint(0, 64))
        assert crc32_mpeg2(data) == reference_bitwise(data)
