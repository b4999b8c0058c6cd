"""UECP codec: round trips, stuffing of every special byte, CRC vector, both stuffing variants, resync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from adapters.fm.uecp import Frame, FrameDecoder, Rejected, StuffingVariant, crc16, stuff
from adapters.fm.uecp_elements import (
    Ack,
    AckCode,
    ClockSet,
    Element,
    ManufacturerSpecific,
    PiSet,
    PsSet,
    PtySet,
    RadioTextSet,
    RtBuffer,
    TaTpSet,
    UecpError,
    decode_elements,
    encode_element,
)

VARIANTS = list(StuffingVariant)

ELEMENTS: list[Element] = [
    PiSet(0xC201, dsn=1, psn=2),
    PsSet("ANNING"),
    TaTpSet(ta=True, tp=True),
    TaTpSet(ta=False, tp=True),
    PtySet(31),
    RadioTextSet("EMERGENCY ALERT 11B03 RED 202611150001", transmissions=3, ab_flag=True),
    RadioTextSet("", buffer=RtBuffer.REPLACE),
    RadioTextSet("more", buffer=RtBuffer.APPEND),
    ClockSet(datetime(2026, 11, 15, 8, 30, 5, 120000, tzinfo=timezone(timedelta(hours=8)))),
    Ack(AckCode.OK),
    Ack(AckCode.CRC_ERROR, 7),
    ManufacturerSpecific(b"EB\x01\x01"),
]


def test_crc_check_value() -> None:
    # CRC-16/GENIBUS (poly 0x1021, init 0xFFFF, xorout 0xFFFF): catalogue check value.
    assert crc16(b"123456789") == 0xD64E


def test_crc_matches_independent_bitwise_definition() -> None:
    data = bytes(range(0, 256, 7))
    reg = 0xFFFF
    for bit in "".join(f"{b:08b}" for b in data):
        top = (reg >> 15) & 1
        reg = (reg << 1) & 0xFFFF
        if top ^ int(bit):
            reg ^= 0x1021
    assert crc16(data) == reg ^ 0xFFFF


@pytest.mark.parametrize("element", ELEMENTS, ids=lambda e: type(e).__name__)
def test_element_round_trip(element: Element) -> None:
    decoded = decode_elements(encode_element(element))
    if isinstance(element, ClockSet):
        assert isinstance(decoded[0], ClockSet)
        assert decoded[0].at == element.at
        assert decoded[0].at.utcoffset() == timedelta(hours=8)
    else:
        assert decoded == (element,)


def test_radiotext_field_layout() -> None:
    raw = encode_element(RadioTextSet("AB", transmissions=5, ab_flag=True, dsn=3, psn=4))
    # MEC, DSN, PSN, MEL = 1 + text, flags = buffer<<5 | NT<<1 | A/B, text
    assert raw == bytes([0x0A, 3, 4, 3, (5 << 1) | 1]) + b"AB"
    assert encode_element(RadioTextSet("")) == bytes([0x0A, 0, 0, 0])


def test_ta_tp_and_pi_layout() -> None:
    assert encode_element(TaTpSet(ta=True, tp=False)) == bytes([0x03, 0, 0, 0b01])
    assert encode_element(TaTpSet(ta=False, tp=True)) == bytes([0x03, 0, 0, 0b10])
    assert encode_element(PiSet(0xC201)) == bytes([0x01, 0, 0, 0xC2, 0x01])


def test_ack_layout() -> None:
    assert encode_element(Ack(AckCode.OK)) == bytes([0x18, 0])
    assert encode_element(Ack(AckCode.PARAM_OUT_OF_RANGE, 9)) == bytes([0x18, 6, 9])


def test_several_elements_in_one_frame() -> None:
    frame = Frame.of(5, 2, 9, PtySet(31), TaTpSet(True, True))
    (got,) = FrameDecoder().feed(frame.encode())
    assert isinstance(got, Frame)
    assert got.elements() == (PtySet(31), TaTpSet(True, True))


def test_invalid_values_are_refused_with_the_nack_code() -> None:
    with pytest.raises(UecpError) as e1:
        encode_element(PtySet(32))
    assert e1.value.code is AckCode.PARAM_OUT_OF_RANGE
    with pytest.raises(UecpError) as e2:
        encode_element(RadioTextSet("应急"))
    assert e2.value.code is AckCode.PARAM_OUT_OF_RANGE
    with pytest.raises(UecpError) as e3:
        decode_elements(bytes([0x02, 0, 0]) + b"SHORT")
    assert e3.value.code is AckCode.MSG_ELEMENT_LENGTH_ERROR
    with pytest.raises(UecpError) as e4:
        decode_elements(bytes([0x7C, 1, 2]))
    assert e4.value.code is AckCode.MSG_UNKNOWN


def test_standard_stuffing_of_each_special_byte() -> None:
    v = StuffingVariant.STANDARD
    assert stuff(b"\xfd", v) == b"\xfd\x00"
    assert stuff(b"\xfe", v) == b"\xfd\x01"
    assert stuff(b"\xff", v) == b"\xfd\x02"
    assert stuff(b"\x00\xfc", v) == b"\x00\xfc"


def test_trailing_fd_stuffing_of_each_special_byte() -> None:
    v = StuffingVariant.TRAILING_FD
    assert stuff(b"\xfe", v) == b"\xfe\xfd"
    assert stuff(b"\xff", v) == b"\xff\xfd"
    assert stuff(b"\xfd", v) == b"\xfd"


def _special_frame() -> Frame:
    # Address, SQC, data and (by search) CRC full of 0xFD/0xFE/0xFF.
    for sqc in range(1, 256):
        frame = Frame(0x3FF, 0x3F, sqc, bytes([0x2D, 6]) + b"\xfd\xfe\xff\xff\xfe\xfd")
        crc = frame.body()[-2:]
        if any(b >= 0xFD for b in crc):
            return frame
    raise AssertionError("no frame with a special CRC byte")


@pytest.mark.parametrize("variant", VARIANTS)
def test_frame_round_trip_with_special_bytes_everywhere(variant: StuffingVariant) -> None:
    frame = _special_frame()
    wire = frame.encode(variant)
    assert wire[0] == 0xFE and wire[-1] == 0xFF
    if variant is StuffingVariant.STANDARD:
        assert 0xFE not in wire[1:-1] and 0xFF not in wire[1:-1]
    assert FrameDecoder(variant).feed(wire) == [frame]


@pytest.mark.parametrize("variant", VARIANTS)
def test_frame_round_trip_byte_by_byte(variant: StuffingVariant) -> None:
    frames = [Frame.of(1, 2, i, e) for i, e in enumerate(ELEMENTS, start=1)]
    dec = FrameDecoder(variant)
    out: list[Frame | Rejected] = []
    for wire in (f.encode(variant) for f in frames):
        for b in wire:
            out += dec.feed(bytes([b]))
    assert out == frames


@pytest.mark.parametrize("variant", VARIANTS)
def test_resynchronises_after_garbage(variant: StuffingVariant) -> None:
    good = Frame.of(0, 1, 3, PtySet(31))
    dec = FrameDecoder(variant)
    noise = b"\x00\x13\xfd\x42"
    # garbage, a truncated frame, then a good frame
    stream = noise + good.encode(variant)[:5] + good.encode(variant) + noise + good.encode(variant)
    out = dec.feed(stream)
    frames = [x for x in out if isinstance(x, Frame)]
    rejected = [x for x in out if isinstance(x, Rejected)]
    assert frames == [good, good]
    assert len(rejected) == 1 and rejected[0].code is AckCode.UNEXPECTED_END_OF_MSG
    assert dec.garbage == 2 * len(noise)


@pytest.mark.parametrize("variant", VARIANTS)
def test_crc_error_is_reported_with_sqc(variant: StuffingVariant) -> None:
    wire = bytearray(Frame.of(0, 1, 42, PsSet("RADIO")).encode(variant))
    wire[8] ^= 0x01  # inside the PS text
    (rej,) = FrameDecoder(variant).feed(bytes(wire))
    assert isinstance(rej, Rejected)
    assert rej.code is AckCode.CRC_ERROR and rej.sqc == 42 and rej.encoder == 1


def test_bad_stuffing_is_rejected() -> None:
    wire = b"\xfe\x00\x01\x05\xfd\x07\xff"
    (rej,) = FrameDecoder().feed(wire)
    assert isinstance(rej, Rejected) and rej.code is AckCode.BAD_STUFFING


def test_wrong_mfl_is_rejected() -> None:
    body = bytes([0x00, 0x01, 0x05, 0x09]) + bytes([0x07, 0, 0, 31])  # MFL says 9, 4 given
    wire = b"\xfe" + body + crc16(body).to_bytes(2, "big") + b"\xff"
    (rej,) = FrameDecoder().feed(wire)
    assert isinstance(rej, Rejected) and rej.code is AckCode.UNEXPECTED_END_OF_MSG


def test_standard_decoder_does_not_accept_trailing_variant_with_special_bytes() -> None:
    wire = _special_frame().encode(StuffingVariant.TRAILING_FD)
    assert _special_frame() not in FrameDecoder(StuffingVariant.STANDARD).feed(wire)


def test_address_and_sequence_limits() -> None:
    with pytest.raises(ValueError):
        Frame(1024, 0, 0, b"")
    with pytest.raises(ValueError):
        Frame(0, 64, 0, b"")
    assert Frame(0x3FF, 0x3F, 0, b"").address == 0xFFFF


def test_clock_is_sent_in_utc() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    raw = encode_element(ClockSet(at))
    assert raw[:7] == bytes([0x0D, 26, 1, 2, 3, 4, 5])
