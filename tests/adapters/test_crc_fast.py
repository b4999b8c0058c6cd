"""The zlib-based CRC-32/MPEG-2 equals the table-driven reference on every input and init."""

from __future__ import annotations

import random

from adapters.ip_speaker.bcd import _crc32_mpeg2_table, crc32_mpeg2


def test_check_value() -> None:
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7
    assert crc32_mpeg2(b"") == 0xFFFFFFFF


def test_matches_reference_for_random_data_and_chaining() -> None:
    rng = random.Random(530181)
    for _ in range(3000):
        data = rng.randbytes(rng.randint(0, 400))
        init = rng.getrandbits(32)
        assert crc32_mpeg2(data, init) == _crc32_mpeg2_table(data, init)
        cut = rng.randint(0, len(data))
        assert crc32_mpeg2(data[cut:], crc32_mpeg2(data[:cut])) == crc32_mpeg2(data)
