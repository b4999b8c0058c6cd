"""EBIT / content sections and the inserter link codec: layouts, CRCs, round trips, resync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from adapters.cable_tv.link import (
    Command,
    LinkDecoder,
    LinkFrame,
    LinkReject,
    NackReason,
    insert_payload,
    parse_status,
    split_insert,
    status_payload,
)
from adapters.cable_tv.sections import (
    TABLE_CONTENT,
    TABLE_EBIT,
    AuxItem,
    Charset,
    ContentEntry,
    DetailsChannel,
    EbContent,
    EbitEntry,
    Section,
    SectionError,
    SectionFault,
    build_content,
    build_ebit,
    decode_time,
    encode_time,
    parse_content,
    parse_ebit,
    split_sections,
)
from adapters.wire.bcd import encode_bcd
from adapters.wire.crc import crc32_mpeg2

EBM = "43415230000000101010101202611150001"
CODES = ("43415230000000302010301", "63415231002000301010401")
BJ = timezone(timedelta(hours=8))


def entry(**kw: object) -> EbitEntry:
    base: dict[str, object] = {
        "ebm_id": EBM,
        "original_network_id": 0x1234,
        "start": datetime(2026, 11, 15, 10, 0, 0, tzinfo=BJ),
        "end": datetime(2026, 11, 15, 10, 30, 59, tzinfo=BJ),
        "event_type": "11B03",
        "ebm_class": 1,
        "level": 1,
        "resource_codes": CODES,
    }
    base.update(kw)
    return EbitEntry(**base)  # type: ignore[arg-type]


def test_crc32_mpeg2_check_value() -> None:
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7


def test_time_is_mjd_plus_bcd_utc() -> None:
    # DVB/EN 300 468 annex C example: 1993-10-13 12:45:00 -> C0 79 12 45 00
    raw = encode_time(datetime(1993, 10, 13, 12, 45, 0, tzinfo=UTC))
    assert raw == bytes.fromhex("C079124500")
    at = datetime(2026, 11, 15, 10, 0, 5, tzinfo=BJ)
    assert decode_time(encode_time(at)) == at


def test_bcd_resource_code_is_12_bytes_left_padded() -> None:
    assert encode_bcd(CODES[0], 12).hex() == "0" + CODES[0]
    assert encode_bcd(EBM, 18).hex() == "0" + EBM


def _resealed(raw: bytes, at: int, value: int) -> bytes:
    """``raw`` with byte ``at`` replaced and a fresh CRC_32, so only the payload check can object."""
    body = bytearray(raw[:-4])
    body[at] = value
    return bytes(body) + crc32_mpeg2(bytes(body)).to_bytes(4, "big")


def test_bad_bcd_nibbles_in_a_section_are_refused_as_payload_errors() -> None:
    (raw,) = build_ebit([entry()], network_id=1)
    ebm_at = 8 + 1  # header, entry_count, then the EBM id's first byte (pad nibble + first digit)
    assert raw[ebm_at] == int("0" + EBM[0], 16)
    pad = Section.parse(_resealed(raw, ebm_at, 0x10 | int(EBM[0])))  # pad nibble 1: another code
    with pytest.raises(SectionError) as e:
        parse_ebit([pad])
    assert e.value.fault is SectionFault.PAYLOAD and "pad" in str(e.value)
    nibble = Section.parse(_resealed(raw, ebm_at + 1, 0x3A))  # a nibble above 9 inside the id
    with pytest.raises(SectionError) as e2:
        parse_ebit([nibble])
    assert e2.value.fault is SectionFault.PAYLOAD and "not BCD" in str(e2.value)


def test_bad_bcd_in_a_link_payload_is_a_section_error() -> None:
    """The inserter answers a bad EBM id in an INSERT like a bad section (NACK BAD_SECTION)."""
    good = insert_payload(EBM, [])
    assert split_insert(good) == (EBM, b"")
    for first in (0x14, 0xA4):  # non-zero pad nibble; a nibble above 9
        with pytest.raises(SectionError) as e:
            split_insert(bytes((first,)) + good[1:])
        assert e.value.fault is SectionFault.PAYLOAD


def test_ebit_section_header_fields() -> None:
    (raw,) = build_ebit([entry()], network_id=0x1234, version=7)
    assert raw[0] == TABLE_EBIT
    assert raw[1] & 0x80  # section_syntax_indicator = 1
    assert ((raw[1] & 0x0F) << 8 | raw[2]) == len(raw) - 3
    s = Section.parse(raw)
    assert (s.table_id_extension, s.version, s.section_number, s.last_section_number) == (0x1234, 7, 0, 0)
    assert raw[5] & 1  # current_next_indicator


def test_ebit_round_trip() -> None:
    e1 = entry()
    e2 = entry(ebm_id=EBM[:-1] + "2", level=15, ebm_class=3, details=DetailsChannel(7, 101, 0x1FF))
    (raw,) = build_ebit([e1, e2], network_id=0x1234)
    assert parse_ebit([Section.parse(raw)]) == [e1, e2]


def test_ebit_splits_across_sections_when_large() -> None:
    many = [entry(ebm_id=f"{EBM[:-4]}{i:04d}", resource_codes=CODES * 40) for i in range(1, 6)]
    raws = build_ebit(many, network_id=1)
    assert len(raws) > 1 and all(len(r) <= 4096 for r in raws)
    sections = [Section.parse(r) for r in raws]
    assert {s.last_section_number for s in sections} == {len(raws) - 1}
    assert parse_ebit(sections) == many


def test_content_round_trip_in_gb18030() -> None:
    text = "安宁县气象台发布暴雨红色预警：请立即转移到安全地带。𠮷"  # incl. a 4-byte GB18030 character
    content = EbContent(
        EBM,
        (
            ContentEntry(
                "zho", Charset.GB18030, text, "安宁县应急管理局", (AuxItem(2, "a.mp3", 1234, b"\x01" * 32),)
            ),
            ContentEntry("eng", Charset.GB2312, "Rainstorm red warning", "Anning EMB"),
        ),
    )
    (raw,) = build_content(content)
    assert raw[0] == TABLE_CONTENT
    assert text.encode("gb18030") in raw
    assert parse_content([Section.parse(raw)]) == content


def test_damaged_section_is_refused() -> None:
    (raw,) = build_ebit([entry()], network_id=1)
    bad = bytearray(raw)
    bad[20] ^= 0x40
    with pytest.raises(SectionError) as e:
        Section.parse(bytes(bad))
    assert e.value.fault is SectionFault.CRC
    with pytest.raises(SectionError) as e2:
        Section.parse(raw[:-1])
    assert e2.value.fault is SectionFault.LENGTH


def test_split_sections() -> None:
    a = build_ebit([entry()], network_id=1)
    b = build_content(EbContent(EBM, (ContentEntry("zho", Charset.GB18030, "测试", "局"),)))
    assert split_sections(b"".join(a + b)) == a + b


def test_link_round_trip_and_resync() -> None:
    sections = build_ebit([entry()], network_id=1)
    frames = [
        LinkFrame(1, Command.INSERT, insert_payload(EBM, sections)),
        LinkFrame(2, Command.ACK),
        LinkFrame(0xFFFF, Command.STATUS_REPLY, status_payload([EBM])),
    ]
    stream = b"\x00\xeb\x13" + frames[0].encode() + b"\xeb\x90\x00" + frames[1].encode() + frames[2].encode()
    dec = LinkDecoder()
    out: list[LinkFrame | LinkReject] = []
    for i in range(0, len(stream), 7):  # arrives in small pieces
        out += dec.feed(stream[i : i + 7])
    assert out == frames
    assert dec.garbage == 6
    assert split_insert(frames[0].payload) == (EBM, b"".join(sections))
    assert parse_status(frames[2].payload) == [EBM]


def test_link_crc_error_reports_seq() -> None:
    wire = bytearray(LinkFrame(77, Command.WITHDRAW, encode_bcd(EBM, 18)).encode())
    wire[12] ^= 0x01
    (rej,) = LinkDecoder().feed(bytes(wire))
    assert rej == LinkReject(77, NackReason.BAD_CRC, "frame CRC mismatch")


def test_nack_reason_transience() -> None:
    assert NackReason.BAD_CRC.transient and NackReason.BUSY.transient
    assert not NackReason.BAD_SECTION.transient and not NackReason.REFUSED.transient
