"""Cable DTV emergency-broadcast tables as MPEG-2 private sections (eb-protocols §4.2): the EB index
table EBIT (table_id 0xFD) and the EB content table (table_id 0xFE) — building and parsing.

Pure codec: never does I/O, never reads the clock. Signing (the standard signs these tables) is not
done here; a signer would append its data before the head-end carries the sections.

Section (long form)::

    table_id u8 | SSI=1 private=1 '11' section_length(12) | table_id_extension u16 |
    '11' version(5) current_next=1 | section_number u8 | last_section_number u8 | payload | CRC_32

CRC_32 is CRC-32/MPEG-2 (poly 0x04C11DB7, init 0xFFFFFFFF, no reflection, no final XOR;
``adapters.wire.crc``); BCD fields are ``adapters.wire.bcd`` (strict: a non-zero pad nibble is refused);
a section is at most 4096 bytes. table_id_extension: EBIT = original_network_id; content table = the
EBM's daily sequence (last 4 digits of the EBM id) [I].

EBIT payload: entry_count u8, then per entry: EBM_id 18 B BCD (pad nibble + 35 digits) |
original_network_id u16 | start_time 5 B | end_time 5 B (MJD u16 + hh mm ss BCD, UTC as in DVB [I]) |
EBM_type 5 ASCII (event code) | class(4) level(4) | resource_code_count u8 + 12 B BCD each (pad nibble +
23 digits) | details_channel_indicator u8 [+ transport_stream_id u16, program_number u16,
'111' PCR_PID(13)].

Content payload: EBM_id 18 B BCD | entry_count u8, then per language: language_code 3 ASCII |
code_character_set u8 (0 GB2312, 1 GB18030, 2 GB13000 sent as UCS-2 BE [I]) | text_length u16 + text |
agency_name_length u8 + agency name (same charset) | aux_count u8 + per item: auxiliary_type u8 |
desc_length u8 + desc (UTF-8: file name or URL) | size u32 | digest_length u8 + digest.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum, StrEnum

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
from adapters.wire.crc import crc32_mpeg2

TABLE_EBIT = 0xFD
TABLE_CONTENT = 0xFE
MAX_SECTION = 4096
_HEADER = 8
_CRC = 4
_MJD_EPOCH = date(1858, 11, 17)


class Charset(IntEnum):
    GB2312 = 0
    GB18030 = 1
    GB13000 = 2
    GB21669 = 3
    GB16959 = 4


_PY_CODEC = {Charset.GB2312: "gb2312", Charset.GB18030: "gb18030", Charset.GB13000: "utf-16-be"}


class SectionFault(StrEnum):
    TOO_SHORT = "too_short"
    SYNTAX = "syntax"
    LENGTH = "length"
    CRC = "crc"
    TABLE_ID = "table_id"
    PAYLOAD = "payload"
    TOO_LARGE = "too_large"


class SectionError(ValueError):
    def __init__(self, fault: SectionFault, detail: str) -> None:
        super().__init__(f"section {fault}: {detail}")
        self.fault = fault
        self.detail = detail


def decode_bcd_field(raw: bytes, ndigits: int) -> str:
    """A packed-BCD field of a section or link payload (``adapters.wire.bcd``, strict); a refusal is a
    ``SectionError`` (PAYLOAD), so a receiver answers it as a bad section."""
    try:
        return decode_bcd(raw, ndigits)
    except BcdError as exc:
        detail = f"not BCD: {raw.hex()}" if exc.fault is BcdFault.NOT_BCD else str(exc)
        raise SectionError(SectionFault.PAYLOAD, detail) from exc


def encode_time(at: datetime) -> bytes:
    """5-byte MJD + BCD hh mm ss, in UTC."""
    if at.tzinfo is None:
        raise ValueError("section times must be timezone-aware")
    t = at.astimezone(UTC)
    mjd = (t.date() - _MJD_EPOCH).days
    return mjd.to_bytes(2, "big") + encode_bcd(f"{t.hour:02d}{t.minute:02d}{t.second:02d}", 3)


def decode_time(raw: bytes) -> datetime:
    mjd = int.from_bytes(raw[0:2], "big")
    hms = decode_bcd_field(raw[2:5], 6)
    day = _MJD_EPOCH + timedelta(days=mjd)
    try:
        return datetime(day.year, day.month, day.day, int(hms[0:2]), int(hms[2:4]), int(hms[4:6]), tzinfo=UTC)
    except ValueError as exc:
        raise SectionError(SectionFault.PAYLOAD, f"bad time {raw.hex()}") from exc


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    table_id: int
    table_id_extension: int
    version: int
    section_number: int
    last_section_number: int
    payload: bytes

    def encode(self) -> bytes:
        length = 5 + len(self.payload) + _CRC  # bytes after section_length
        if 3 + length > MAX_SECTION:
            raise SectionError(SectionFault.TOO_LARGE, f"section of {3 + length} bytes > {MAX_SECTION}")
        head = bytes((self.table_id, 0xF0 | (length >> 8), length & 0xFF))
        head += self.table_id_extension.to_bytes(2, "big")
        head += bytes((0xC0 | (self.version & 0x1F) << 1 | 1, self.section_number, self.last_section_number))
        body = head + self.payload
        return body + crc32_mpeg2(body).to_bytes(4, "big")

    @classmethod
    def parse(cls, raw: bytes) -> Section:
        if len(raw) < _HEADER + _CRC:
            raise SectionError(SectionFault.TOO_SHORT, f"{len(raw)} bytes")
        if not raw[1] & 0x80:
            raise SectionError(SectionFault.SYNTAX, "section_syntax_indicator is 0")
        length = (raw[1] & 0x0F) << 8 | raw[2]
        if 3 + length != len(raw):
            raise SectionError(SectionFault.LENGTH, f"section_length {length} but {len(raw) - 3} bytes")
        if crc32_mpeg2(raw[:-4]) != int.from_bytes(raw[-4:], "big"):
            raise SectionError(SectionFault.CRC, f"CRC_32 mismatch in table 0x{raw[0]:02X}")
        return cls(
            table_id=raw[0],
            table_id_extension=int.from_bytes(raw[3:5], "big"),
            version=(raw[5] >> 1) & 0x1F,
            section_number=raw[6],
            last_section_number=raw[7],
            payload=bytes(raw[8:-4]),
        )


def split_sections(data: bytes) -> list[bytes]:
    """Cut concatenated sections apart by their section_length."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 3:
            raise SectionError(SectionFault.TOO_SHORT, "trailing bytes after the last section")
        end = pos + 3 + ((data[pos + 1] & 0x0F) << 8 | data[pos + 2])
        if end > len(data):
            raise SectionError(SectionFault.LENGTH, "section runs past the end of the data")
        out.append(data[pos:end])
        pos = end
    return out


def _pack(table_id: int, ext: int, version: int, prefix: bytes, items: list[bytes]) -> list[bytes]:
    """Spread ``items`` over as few sections as fit; each payload = prefix + count u8 + items."""
    room = MAX_SECTION - _HEADER - _CRC - len(prefix) - 1
    groups: list[list[bytes]] = [[]]
    for item in items:
        if len(item) > room:
            raise SectionError(SectionFault.TOO_LARGE, f"one entry of {len(item)} bytes exceeds a section")
        if sum(map(len, groups[-1])) + len(item) > room or len(groups[-1]) == 255:
            groups.append([])
        groups[-1].append(item)
    if len(groups) > 256:
        raise SectionError(SectionFault.TOO_LARGE, "more than 256 sections")
    last = len(groups) - 1
    return [
        Section(table_id, ext, version, n, last, prefix + bytes((len(g),)) + b"".join(g)).encode()
        for n, g in enumerate(groups)
    ]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise SectionError(SectionFault.PAYLOAD, f"payload ends at {len(self.data)}, need {self.pos + n}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def done(self) -> bool:
        return self.pos == len(self.data)


# ---------------------------------------------------------------------------------------------
# EB index table


@dataclass(frozen=True)
class DetailsChannel:
    transport_stream_id: int
    program_number: int
    pcr_pid: int


@dataclass(frozen=True)
class EbitEntry:
    ebm_id: str
    original_network_id: int
    start: datetime
    end: datetime
    event_type: str
    ebm_class: int  # MsgType value (1 actual, 3-5 drills)
    level: int  # Severity value (1 red … 4 blue, 0 unknown, 15 test)
    resource_codes: tuple[str, ...]
    details: DetailsChannel | None = None

    def encode(self) -> bytes:
        if len(self.event_type) != 5 or not self.event_type.isascii():
            raise ValueError(f"EBM_type must be 5 ASCII characters: {self.event_type!r}")
        if not (0 <= self.ebm_class <= 15 and 0 <= self.level <= 15):
            raise ValueError("class and level are 4-bit values")
        if len(self.resource_codes) > 255:
            raise ValueError("at most 255 resource codes per EBIT entry")
        out = encode_bcd(self.ebm_id, EBM_ID_BYTES) + self.original_network_id.to_bytes(2, "big")
        out += encode_time(self.start) + encode_time(self.end) + self.event_type.encode("ascii")
        out += bytes((self.ebm_class << 4 | self.level, len(self.resource_codes)))
        out += b"".join(encode_bcd(code, RESOURCE_CODE_BYTES) for code in self.resource_codes)
        d = self.details
        if d is None:
            return out + b"\x00"
        pid = 0xE000 | d.pcr_pid
        return out + b"\x01" + struct.pack(">HHH", d.transport_stream_id, d.program_number, pid)

    @classmethod
    def read(cls, r: _Reader) -> EbitEntry:
        ebm_id = decode_bcd_field(r.take(EBM_ID_BYTES), EBM_ID_DIGITS)
        onid = r.u16()
        start, end = decode_time(r.take(5)), decode_time(r.take(5))
        event_type = r.take(5).decode("ascii", errors="replace")
        class_level = r.u8()
        codes = tuple(
            decode_bcd_field(r.take(RESOURCE_CODE_BYTES), RESOURCE_CODE_DIGITS) for _ in range(r.u8())
        )
        details = None
        if r.u8():
            ts_id, prog, pid = r.u16(), r.u16(), r.u16() & 0x1FFF
            details = DetailsChannel(ts_id, prog, pid)
        return cls(ebm_id, onid, start, end, event_type, class_level >> 4, class_level & 0xF, codes, details)


def build_ebit(entries: list[EbitEntry], network_id: int, version: int = 0) -> list[bytes]:
    return _pack(TABLE_EBIT, network_id, version, b"", [e.encode() for e in entries])


def parse_ebit(sections: list[Section]) -> list[EbitEntry]:
    out: list[EbitEntry] = []
    for s in sections:
        if s.table_id != TABLE_EBIT:
            raise SectionError(SectionFault.TABLE_ID, f"expected 0xFD, got 0x{s.table_id:02X}")
        r = _Reader(s.payload)
        out += [EbitEntry.read(r) for _ in range(r.u8())]
        if not r.done():
            raise SectionError(SectionFault.PAYLOAD, "bytes left after the EBIT entries")
    return out


# ---------------------------------------------------------------------------------------------
# EB content table


@dataclass(frozen=True)
class AuxItem:
    aux_type: int  # AuxiliaryType: 2 MP3, 61 stream/URL, …
    desc: str
    size: int = 0
    digest: bytes = b""


@dataclass(frozen=True)
class ContentEntry:
    language: str
    charset: Charset
    text: str
    agency: str
    aux: tuple[AuxItem, ...] = ()

    def encode(self) -> bytes:
        codec = _PY_CODEC.get(self.charset)
        if codec is None:
            raise ValueError(f"character set {self.charset.name} is not supported for sending")
        if len(self.language) != 3 or not self.language.isascii():
            raise ValueError(f"language code must be 3 ASCII letters: {self.language!r}")
        text, agency = self.text.encode(codec), self.agency.encode(codec)
        if len(text) > 0xFFFF or len(agency) > 0xFF or len(self.aux) > 0xFF:
            raise ValueError("content text, agency name or aux list too long")
        out = self.language.encode("ascii") + bytes((self.charset,)) + len(text).to_bytes(2, "big") + text
        out += bytes((len(agency),)) + agency + bytes((len(self.aux),))
        for a in self.aux:
            desc = a.desc.encode("utf-8")
            if len(desc) > 0xFF or len(a.digest) > 0xFF:
                raise ValueError("aux description or digest too long")
            out += bytes((a.aux_type, len(desc))) + desc + a.size.to_bytes(4, "big")
            out += bytes((len(a.digest),)) + a.digest
        return out

    @classmethod
    def read(cls, r: _Reader) -> ContentEntry:
        language = r.take(3).decode("ascii", errors="replace")
        try:
            charset = Charset(r.u8())
        except ValueError as exc:
            raise SectionError(SectionFault.PAYLOAD, "unknown code_character_set") from exc
        text_raw = r.take(r.u16())
        agency_raw = r.take(r.u8())
        codec = _PY_CODEC.get(charset)
        if codec is None:
            raise SectionError(SectionFault.PAYLOAD, f"character set {charset.name} cannot be decoded here")
        try:
            text, agency = text_raw.decode(codec), agency_raw.decode(codec)
        except UnicodeDecodeError as exc:
            raise SectionError(SectionFault.PAYLOAD, f"text is not valid {charset.name}") from exc
        aux: list[AuxItem] = []
        for _ in range(r.u8()):
            aux_type = r.u8()
            desc = r.take(r.u8()).decode("utf-8", errors="replace")
            size = r.u32()
            aux.append(AuxItem(aux_type, desc, size, r.take(r.u8())))
        return cls(language, charset, text, agency, tuple(aux))


@dataclass(frozen=True)
class EbContent:
    ebm_id: str
    entries: tuple[ContentEntry, ...]


def build_content(content: EbContent, version: int = 0) -> list[bytes]:
    ext = int(content.ebm_id[-4:])
    prefix = encode_bcd(content.ebm_id, EBM_ID_BYTES)
    return _pack(TABLE_CONTENT, ext, version, prefix, [e.encode() for e in content.entries])


def parse_content(sections: list[Section]) -> EbContent:
    ebm_ids: set[str] = set()
    entries: list[ContentEntry] = []
    for s in sections:
        if s.table_id != TABLE_CONTENT:
            raise SectionError(SectionFault.TABLE_ID, f"expected 0xFE, got 0x{s.table_id:02X}")
        r = _Reader(s.payload)
        ebm_ids.add(decode_bcd_field(r.take(EBM_ID_BYTES), EBM_ID_DIGITS))
        entries += [ContentEntry.read(r) for _ in range(r.u8())]
        if not r.done():
            raise SectionError(SectionFault.PAYLOAD, "bytes left after the content entries")
    if len(ebm_ids) != 1:
        raise SectionError(SectionFault.PAYLOAD, f"content sections name {len(ebm_ids)} EBM ids")
    return EbContent(ebm_ids.pop(), tuple(entries))
