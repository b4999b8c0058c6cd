"""Packed BCD (压缩 BCD), the binary form of resource codes, EBM ids, certificate numbers and clock
digits on the §4.1 and §4.2 wires: digits two per byte, high nibble first, left-padded with 0 nibbles
when the field has more nibbles than digits (a 23-digit resource code → 12 bytes, a 35-digit EBM id →
18 bytes; eb-protocols §1: "first nibble reserved/0").

Decoding is strict: every nibble must be 0-9 and every pad nibble must be 0 — a field that breaks
either is not the code it claims to be, so it is refused (``BcdError``, a ``ValueError``, with a
``BcdFault``) instead of being read as some other code. Everything ``encode_bcd`` produces decodes.

Owns the one packed-BCD codec of the product. Pure; never does I/O and never imports the product.
"""

from __future__ import annotations

from enum import StrEnum

RESOURCE_CODE_BYTES = 12
RESOURCE_CODE_DIGITS = 23
EBM_ID_BYTES = 18
EBM_ID_DIGITS = 35
CERT_NO_BYTES = 6
CERT_NO_DIGITS = 12


class BcdFault(StrEnum):
    NOT_DIGITS = "not_digits"  # encoding: the text is not ASCII decimal digits
    TOO_LONG = "too_long"  # encoding: more digits than the field holds
    NOT_BCD = "not_bcd"  # decoding: a nibble above 9
    TOO_SHORT = "too_short"  # decoding: fewer nibbles than the digits asked for
    PAD_NOT_ZERO = "pad_not_zero"  # decoding: a left pad nibble is not 0


class BcdError(ValueError):
    def __init__(self, fault: BcdFault, message: str) -> None:
        super().__init__(message)
        self.fault = fault


def encode_bcd(digits: str, size: int) -> bytes:
    """Pack a decimal string into ``size`` bytes, left-padding with zero nibbles."""
    if not digits.isascii() or not digits.isdigit():
        raise BcdError(BcdFault.NOT_DIGITS, f"BCD field must be decimal digits, got {digits!r}")
    if len(digits) > size * 2:
        raise BcdError(BcdFault.TOO_LONG, f"{len(digits)} digits do not fit in {size} BCD bytes: {digits!r}")
    return bytes.fromhex(digits.rjust(size * 2, "0"))


def decode_bcd(data: bytes, digits: int) -> str:
    """Unpack BCD bytes into exactly ``digits`` decimal digits; the dropped pad nibbles must be 0."""
    text = data.hex()
    if not text.isdigit():
        raise BcdError(BcdFault.NOT_BCD, f"not packed BCD: {data.hex()}")
    pad = len(text) - digits
    if pad < 0:
        raise BcdError(BcdFault.TOO_SHORT, f"{len(data)} BCD bytes cannot hold {digits} digits")
    if pad and set(text[:pad]) != {"0"}:
        raise BcdError(BcdFault.PAD_NOT_ZERO, f"BCD pad nibbles must be 0: {data.hex()}")
    return text[pad:]
