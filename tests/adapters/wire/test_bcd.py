"""Packed BCD (adapters.wire.bcd), the one codec of resource codes and EBM ids on the §4.1 and §4.2
wires: left padding, round trips, and strict refusal of bad nibbles — a nibble above 9 anywhere, a
non-zero pad nibble, too few bytes — each with its fault kind."""

from __future__ import annotations

import random

import pytest

from adapters.wire.bcd import (
    EBM_ID_BYTES,
    EBM_ID_DIGITS,
    RESOURCE_CODE_BYTES,
    RESOURCE_CODE_DIGITS,
    BcdError,
    BcdFault,
    decode_bcd,
    encode_bcd,
)

TERMINAL = "65301810010010314010401"
EBM = "43415230000000101010101202611150001"


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def test_codes_pack_left_padded_with_one_zero_nibble() -> None:
    assert encode_bcd(TERMINAL, RESOURCE_CODE_BYTES) == bytes.fromhex("065301810010010314010401")
    assert encode_bcd(EBM, EBM_ID_BYTES).hex() == "0" + EBM
    assert decode_bcd(bytes.fromhex("065301810010010314010401"), RESOURCE_CODE_DIGITS) == TERMINAL
    assert encode_bcd("123456", 3) == bytes.fromhex("123456")  # even digit count: no pad
    assert encode_bcd("7", 2) == bytes.fromhex("0007")


def test_everything_encoded_decodes() -> None:
    rng = random.Random(20261101)
    for _ in range(200):
        size = rng.randrange(1, 19)
        digits = _digits(rng, rng.randrange(1, 2 * size + 1))
        assert decode_bcd(encode_bcd(digits, size), len(digits)) == digits
    for _ in range(50):
        digits = _digits(rng, EBM_ID_DIGITS)
        assert decode_bcd(encode_bcd(digits, EBM_ID_BYTES), EBM_ID_DIGITS) == digits
    # zero pad nibbles are dropped, however many
    assert decode_bcd(bytes.fromhex("000012"), 2) == "12"


def test_encoding_refuses_what_is_not_a_code() -> None:
    for bad, fault in (("12a", BcdFault.NOT_DIGITS), ("", BcdFault.NOT_DIGITS), ("١٢", BcdFault.NOT_DIGITS)):
        with pytest.raises(BcdError) as err:
            encode_bcd(bad, 2)
        assert err.value.fault is fault
    with pytest.raises(BcdError) as err:
        encode_bcd("12345", 2)
    assert err.value.fault is BcdFault.TOO_LONG


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("1a", 2),  # low nibble above 9
        ("a1", 2),  # high nibble above 9
        ("0f", 1),  # an F filler where a digit is read
        ("f1", 1),  # an F filler as the pad nibble: not a zero, not a digit
        ("065301810010010314010a01", RESOURCE_CODE_DIGITS),  # one bad nibble deep inside a code
    ],
)
def test_a_nibble_above_9_is_refused(raw: str, digits: int) -> None:
    with pytest.raises(BcdError) as err:
        decode_bcd(bytes.fromhex(raw), digits)
    assert err.value.fault is BcdFault.NOT_BCD
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("1234", 3),  # the pad nibble is 1
        ("165301810010010314010401", RESOURCE_CODE_DIGITS),  # a resource code with a non-zero pad
        ("0100", 2),  # two pad nibbles, the second one not zero
        ("9" + EBM, EBM_ID_DIGITS),  # an EBM id whose reserved nibble is 9
    ],
)
def test_a_non_zero_pad_nibble_is_refused(raw: str, digits: int) -> None:
    """The dropped nibbles must be 0 (eb-protocols §1 "first nibble reserved/0"): reading past a
    non-zero one would turn one code silently into another."""
    with pytest.raises(BcdError) as err:
        decode_bcd(bytes.fromhex(raw), digits)
    assert err.value.fault is BcdFault.PAD_NOT_ZERO


def test_too_few_bytes_are_refused() -> None:
    with pytest.raises(BcdError) as err:
        decode_bcd(bytes.fromhex("0123"), 5)
    assert err.value.fault is BcdFault.TOO_SHORT
