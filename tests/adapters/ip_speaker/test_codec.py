"""The IP loudspeaker wire format: its CRC-32/MPEG-2 against an independent bitwise one, every business
payload, frames and the resynchronising stream decoder (packed BCD itself: tests/adapters/wire)."""

from __future__ import annotations

import random
import struct

import pytest

from adapters.ip_speaker.codec import (
    DecodeError,
    DecodeErrorKind,
    Frame,
    FrameDecoder,
    HeaderVariant,
    PacketType,
    SignatureTrailer,
    encode_frame,
)
from adapters.ip_speaker.params import Query, QueryReply
from adapters.ip_speaker.payload_fields import AUX_URL, BusinessType, PayloadError
from adapters.ip_speaker.payloads import (
    AuxItem,
    BroadcastResult,
    FaultReport,
    Heartbeat,
    Reply,
    StartBroadcast,
    StopBroadcast,
    TaskSwitch,
    UnsupportedBusiness,
    decode_business,
)
from adapters.wire.bcd import encode_bcd
from adapters.wire.crc import crc32_mpeg2

PLATFORM = "45301810000000101010101"
TERMINAL = "65301810010010314010401"
RNG_SEED = 20261101


def _bitwise_crc(data: bytes) -> int:
    """An independent, slow CRC-32/MPEG-2 to check the table-driven one."""
    crc = 0xFFFFFFFF
    for byte in data:
        for bit in range(7, -1, -1):
            top = ((crc >> 31) & 1) ^ ((byte >> bit) & 1)
            crc = (crc << 1) & 0xFFFFFFFF
            if top:
                crc ^= 0x04C11DB7
    return crc


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def test_crc_check_value() -> None:
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7
    assert _bitwise_crc(b"123456789") == 0x0376E6E7
    rng = random.Random(RNG_SEED)
    for n in (0, 1, 7, 64, 300):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert crc32_mpeg2(data) == _bitwise_crc(data)


def _payloads(rng: random.Random) -> list[object]:
    ebm = _digits(rng, 35)
    url = "http://127.0.0.1:8080/audio/" + _digits(rng, rng.randrange(1, 40)) + ".mp3"
    return [
        StartBroadcast(
            ebm,
            rng.randrange(1, 6),
            rng.randrange(0, 5),
            rng.choice(["11B03", "11111", "12G00"]),
            rng.choice([0, 1, 50, 100, 0xFF]),
            rng.randrange(2**32),
            rng.randrange(2**32),
            tuple(AuxItem(rng.choice([AUX_URL, 1, 2]), url.encode()) for _ in range(rng.randrange(0, 4))),
        ),
        StopBroadcast(ebm),
        Reply(rng.choice([0, 13, 15, 31, 54, 59]), rng.choice(["", "终端忙", "x" * 300])),
        Heartbeat(rng.randrange(1, 4), rng.random() < 0.5, _digits(rng, rng.randrange(0, 20)).encode()),
        Query(tuple(rng.randrange(1, 0x13) for _ in range(rng.randrange(0, 6)))),
        QueryReply.build(
            volume=rng.randrange(101),
            resource_code=_digits(rng, 23),
            physical_address=b"3C6A2D0F14B7",
            work_state=rng.randrange(1, 4),
            sw_version="v" + _digits(rng, 3),
        ),
        FaultReport(
            rng.randrange(1, 3), rng.randrange(1, 6), rng.choice(["", "功放输出过低"]), rng.randrange(2**32)
        ),
        TaskSwitch(rng.randrange(1, 3), rng.randrange(1, 8), ebm, rng.randrange(2**32)),
        BroadcastResult(
            ebm,
            rng.randrange(2),
            rng.choice(["播发成功", "音频获取失败", ""]),
            rng.randrange(2**31),
            rng.randrange(2**31, 2**32),
            rng.randrange(256),
            rng.randrange(2**32),
        ),
    ]


def test_every_payload_round_trips() -> None:
    rng = random.Random(RNG_SEED)
    for _ in range(40):
        for payload in _payloads(rng):
            data = payload.encode()  # type: ignore[attr-defined]
            assert type(payload).decode(data) == payload  # type: ignore[attr-defined]
            btype = getattr(payload, "BUSINESS_TYPE", BusinessType.QUERY)
            response = isinstance(payload, Reply | QueryReply)
            if not isinstance(payload, Reply) or btype != BusinessType.QUERY:
                assert decode_business(btype, response, data) == payload


def test_start_broadcast_exposes_url_and_query_reply_values() -> None:
    sb = StartBroadcast(
        "1" * 35, 4, 1, "11B03", 80, 1, 2, (AuxItem(1, b"x"), AuxItem(AUX_URL, b"http://a/b.mp3"))
    )
    assert sb.url == "http://a/b.mp3"
    qr = QueryReply.decode(
        QueryReply.build(
            volume=70, resource_code=TERMINAL, physical_address=b"AB", work_state=2, sw_version="1.2"
        ).encode()
    )
    assert (qr.volume, qr.resource_code, qr.physical_address, qr.work_state, qr.sw_version) == (
        70,
        TERMINAL,
        b"AB",
        2,
        "1.2",
    )


def test_truncated_and_bad_payloads() -> None:
    with pytest.raises(PayloadError) as info:
        Reply.decode(b"\x00\x00\x05ab")
    assert info.value.truncated
    with pytest.raises(PayloadError):
        Heartbeat.decode(b"\x01\x03\x00")  # first-registration flag must be 1 or 2
    with pytest.raises(PayloadError):
        StopBroadcast.decode(encode_bcd("1" * 35, 18) + b"\x00")  # trailing byte
    with pytest.raises(UnsupportedBusiness):
        decode_business(0x77, False, b"")
    with pytest.raises(ValueError):
        StartBroadcast("1" * 34, 4, 1, "11B03", 80, 1, 2).encode()


def test_hand_built_heartbeat_frame() -> None:
    # Built by hand from eb-protocols §4.1, byte by byte.
    business = bytes([0x01, 0x01, 0x04]) + b"AB12"  # idle, first registration, 4-byte address
    body = (
        bytes.fromhex("065301810010010314010401")  # source resource code: pad nibble + 23 digits
        + bytes.fromhex("0001")  # one target
        + bytes.fromhex("045301810000000101010101")  # target: the platform
        + bytes([0x10])  # heartbeat
        + struct.pack(">H", len(business))
        + business
    )
    total = 12 + len(body) + 4
    header = bytes.fromhex("FEFD01000000002A0100") + struct.pack(">H", total)
    expected = header + body + struct.pack(">I", _bitwise_crc(header + body))
    assert total == 52

    frame = Frame(42, PacketType.REQUEST, TERMINAL, (PLATFORM,), BusinessType.HEARTBEAT, business)
    assert encode_frame(frame) == expected
    (decoded,) = FrameDecoder().feed(expected)
    assert decoded == frame
    assert isinstance(decoded, Frame)
    assert decoded.payload() == Heartbeat(1, True, b"AB12")


def _frames(rng: random.Random, n: int) -> list[Frame]:
    out = []
    for i in range(n):
        payload = _payloads(rng)[i % 9]
        targets = tuple(_digits(rng, 23) for _ in range(rng.randrange(0, 4)))
        out.append(
            Frame(
                rng.randrange(2**32),
                rng.choice([1, 2]),
                _digits(rng, 23),
                targets,
                rng.choice(list(BusinessType)),
                payload.encode(),  # type: ignore[attr-defined]
            )
        )
    return out


@pytest.mark.parametrize("variant", list(HeaderVariant))
def test_frames_round_trip_in_any_split(variant: HeaderVariant) -> None:
    rng = random.Random(RNG_SEED)
    frames = _frames(rng, 30)
    stream = b"".join(encode_frame(f, variant) for f in frames)
    for _ in range(20):
        decoder = FrameDecoder(variant)
        got: list[Frame | DecodeError] = []
        pos = 0
        while pos < len(stream):
            step = rng.randrange(1, 60)
            got += decoder.feed(stream[pos : pos + step])
            pos += step
        assert got == frames
        assert decoder.buffered == 0


def test_signed_frame_round_trip_and_unsigned_variant_refuses_signer() -> None:
    signed_over: list[bytes] = []

    def signer(data: bytes) -> SignatureTrailer:
        signed_over.append(data)
        return SignatureTrailer(1_700_000_000, "000000000042", bytes(range(64)))

    frame = Frame(9, 1, PLATFORM, (TERMINAL,), BusinessType.STOP_BROADCAST, StopBroadcast("2" * 35).encode())
    raw = encode_frame(frame, signer=signer)
    assert raw[9] == 1  # sign flag
    assert signed_over == [raw[: len(signed_over[0])]]
    (decoded,) = FrameDecoder().feed(raw)
    assert isinstance(decoded, Frame)
    assert decoded.signature == SignatureTrailer(1_700_000_000, "000000000042", bytes(range(64)))
    with pytest.raises(ValueError):
        encode_frame(frame, HeaderVariant.RETURN_CHANNEL, signer=signer)


def test_garbage_between_frames_is_skipped() -> None:
    rng = random.Random(RNG_SEED)
    a, b = _frames(rng, 2)
    junk = bytes([0x00, 0xFE, 0x13, 0xFD, 0xFE]) + b"noise\xfe"
    got = FrameDecoder().feed(junk + encode_frame(a) + junk + encode_frame(b))
    frames = [x for x in got if isinstance(x, Frame)]
    errors = [x for x in got if isinstance(x, DecodeError)]
    assert frames == [a, b]
    assert errors and all(e.kind is DecodeErrorKind.BAD_TAG for e in errors)
    assert sum(e.skipped for e in errors) == 2 * len(junk)


def test_every_single_byte_corruption_is_dropped_and_the_next_frame_survives() -> None:
    rng = random.Random(RNG_SEED)
    bad_src, good = _frames(rng, 2)
    raw = encode_frame(bad_src)
    good_raw = encode_frame(good)
    for pos in range(len(raw)):
        corrupted = bytearray(raw)
        corrupted[pos] ^= 0xFF
        for chunks in ([bytes(corrupted) + good_raw], [bytes(corrupted), good_raw]):
            decoder = FrameDecoder()
            got: list[Frame | DecodeError] = []
            for chunk in chunks:
                got += decoder.feed(chunk)
            frames = [x for x in got if isinstance(x, Frame)]
            assert frames == [good], f"corrupting byte {pos} broke the stream: {got}"
            assert any(isinstance(x, DecodeError) for x in got)


def test_bad_crc_is_reported_as_such() -> None:
    raw = bytearray(encode_frame(_frames(random.Random(1), 1)[0]))
    raw[-1] ^= 0x01
    (err,) = FrameDecoder().feed(bytes(raw))[:1]
    assert isinstance(err, DecodeError) and err.kind is DecodeErrorKind.BAD_CRC


def test_business_length_beyond_frame_is_truncated() -> None:
    frame = Frame(1, 1, TERMINAL, (), BusinessType.HEARTBEAT, Heartbeat(1, True, b"AB").encode())
    raw = bytearray(encode_frame(frame))
    blen_pos = 12 + 12 + 2 + 1
    raw[blen_pos : blen_pos + 2] = struct.pack(">H", 40)  # claims more than the frame holds
    raw[-4:] = struct.pack(">I", crc32_mpeg2(bytes(raw[:-4])))
    got = FrameDecoder().feed(bytes(raw))
    assert got and isinstance(got[0], DecodeError) and got[0].kind is DecodeErrorKind.TRUNCATED
    assert not any(isinstance(x, Frame) for x in got)


def test_version_and_length_limits() -> None:
    frame = Frame(1, 1, TERMINAL, (), BusinessType.HEARTBEAT, Heartbeat(1, True, b"AB").encode())
    raw = bytearray(encode_frame(frame))
    raw[2:4] = b"\x02\x00"
    got = FrameDecoder().feed(bytes(raw))
    assert isinstance(got[0], DecodeError) and got[0].kind is DecodeErrorKind.BAD_VERSION
    big = Frame(1, 1, TERMINAL, (), BusinessType.HEARTBEAT, Heartbeat(1, True, b"AB" * 10).encode())
    got = FrameDecoder(max_frame=50).feed(encode_frame(big))
    assert isinstance(got[0], DecodeError) and got[0].kind is DecodeErrorKind.BAD_LENGTH
