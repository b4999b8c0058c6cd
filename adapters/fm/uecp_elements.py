"""UECP message elements (EBU SPB 490 / IEC 62106) this product uses: the element dataclasses, their MEC
and acknowledgement codes, and ``encode_element`` / ``decode_elements`` for the MSG field of a frame.

Owns the bytes of the MSG field only. Must never frame, stuff, CRC or resynchronise (adapters.fm.uecp does),
do I/O, read the clock, or retry.

Message elements (MEC + data; DSN = data set number, PSN = programme service number):
0x01 PI (DSN PSN PI16), 0x02 PS (DSN PSN 8 chars), 0x03 TA/TP (DSN PSN flags: bit1 TP, bit0 TA),
0x07 PTY (DSN PSN pty), 0x0A RadioText (DSN PSN MEL [flags text]; flags: bits 6-5 buffer
configuration, bits 4-1 number of transmissions, bit 0 A/B toggle; MEL 0 clears), 0x0D real-time
clock (YY MM DD hh mm ss cs offset, UTC), 0x18 message acknowledgement (code [SQC]),
0x2D manufacturer-specific command (MEL, then data; see adapters.fm.device for ours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum


class Mec(IntEnum):
    PI = 0x01
    PS = 0x02
    TA_TP = 0x03
    PTY = 0x07
    RADIOTEXT = 0x0A
    CLOCK = 0x0D
    ACK = 0x18
    MANUFACTURER_SPECIFIC = 0x2D


class AckCode(IntEnum):
    """Codes of the message acknowledgement (MEC 0x18)."""

    OK = 0
    CRC_ERROR = 1
    MSG_NOT_RECEIVED = 2
    MSG_UNKNOWN = 3
    DSN_ERROR = 4
    PSN_ERROR = 5
    PARAM_OUT_OF_RANGE = 6
    MSG_ELEMENT_LENGTH_ERROR = 7
    MSG_FIELD_LENGTH_ERROR = 8
    MSG_NOT_ACCEPTABLE = 9
    END_MSG_MISSING = 10
    BUFFER_OVERFLOW = 11
    BAD_STUFFING = 12
    UNEXPECTED_END_OF_MSG = 13

    @property
    def transient(self) -> bool:
        """Errors of the line itself (noise): retransmitting the same frame may succeed."""
        return self in _TRANSIENT_ACK


_TRANSIENT_ACK = frozenset(
    {
        AckCode.CRC_ERROR,
        AckCode.MSG_NOT_RECEIVED,
        AckCode.END_MSG_MISSING,
        AckCode.BUFFER_OVERFLOW,
        AckCode.BAD_STUFFING,
        AckCode.UNEXPECTED_END_OF_MSG,
    }
)


class RtBuffer(IntEnum):
    """RadioText buffer configuration (flags bits 6-5)."""

    REPLACE = 0b00
    APPEND = 0b10


class UecpError(ValueError):
    """A frame or element that cannot be accepted; ``code`` is what an encoder would NACK with."""

    def __init__(self, code: AckCode, detail: str) -> None:
        super().__init__(f"UECP {code.name}: {detail}")
        self.code = code
        self.detail = detail


# ---------------------------------------------------------------------------------------------
# Message elements


@dataclass(frozen=True)
class PiSet:
    pi: int
    dsn: int = 0
    psn: int = 0


@dataclass(frozen=True)
class PsSet:
    ps: str
    dsn: int = 0
    psn: int = 0


@dataclass(frozen=True)
class TaTpSet:
    ta: bool
    tp: bool
    dsn: int = 0
    psn: int = 0


@dataclass(frozen=True)
class PtySet:
    pty: int
    dsn: int = 0
    psn: int = 0


@dataclass(frozen=True)
class RadioTextSet:
    text: str
    transmissions: int = 0  # 0 = repeat indefinitely
    ab_flag: bool = False
    buffer: RtBuffer = RtBuffer.REPLACE
    dsn: int = 0
    psn: int = 0


@dataclass(frozen=True)
class ClockSet:
    at: datetime  # aware; sent as UTC with the local offset in half hours


@dataclass(frozen=True)
class Ack:
    code: AckCode
    sqc: int = 0  # SQC of the frame concerned (sent only with non-OK codes)


@dataclass(frozen=True)
class ManufacturerSpecific:
    data: bytes


Element = PiSet | PsSet | TaTpSet | PtySet | RadioTextSet | ClockSet | Ack | ManufacturerSpecific


def _text_bytes(text: str, max_len: int, what: str) -> bytes:
    if len(text) > max_len:
        raise UecpError(AckCode.PARAM_OUT_OF_RANGE, f"{what} longer than {max_len} characters: {text!r}")
    # RDS uses the EBU Latin character set; the printable ASCII range is common to it.
    if any(not (0x20 <= ord(c) < 0x7F) for c in text):
        raise UecpError(AckCode.PARAM_OUT_OF_RANGE, f"{what} must be printable ASCII: {text!r}")
    return text.encode("ascii")


def _check_range(value: int, low: int, high: int, what: str) -> None:
    if not low <= value <= high:
        raise UecpError(AckCode.PARAM_OUT_OF_RANGE, f"{what} {value} outside {low}..{high}")


def _dsn_psn(dsn: int, psn: int) -> bytes:
    _check_range(dsn, 0, 255, "DSN")
    _check_range(psn, 0, 255, "PSN")
    return bytes((dsn, psn))


def encode_element(el: Element) -> bytes:
    """MEC + data of one message element."""
    if isinstance(el, PiSet):
        _check_range(el.pi, 0, 0xFFFF, "PI")
        return bytes((Mec.PI,)) + _dsn_psn(el.dsn, el.psn) + el.pi.to_bytes(2, "big")
    if isinstance(el, PsSet):
        return bytes((Mec.PS,)) + _dsn_psn(el.dsn, el.psn) + _text_bytes(el.ps, 8, "PS").ljust(8, b" ")
    if isinstance(el, TaTpSet):
        return bytes((Mec.TA_TP,)) + _dsn_psn(el.dsn, el.psn) + bytes((int(el.tp) << 1 | int(el.ta),))
    if isinstance(el, PtySet):
        _check_range(el.pty, 0, 31, "PTY")
        return bytes((Mec.PTY,)) + _dsn_psn(el.dsn, el.psn) + bytes((el.pty,))
    if isinstance(el, RadioTextSet):
        _check_range(el.transmissions, 0, 15, "RT transmissions")
        head = bytes((Mec.RADIOTEXT,)) + _dsn_psn(el.dsn, el.psn)
        text = _text_bytes(el.text, 64, "RadioText")
        if not text and el.buffer is RtBuffer.REPLACE:
            return head + b"\x00"
        flags = int(el.buffer) << 5 | el.transmissions << 1 | int(el.ab_flag)
        return head + bytes((1 + len(text), flags)) + text
    if isinstance(el, ClockSet):
        if el.at.tzinfo is None:
            raise UecpError(AckCode.PARAM_OUT_OF_RANGE, "clock time must be timezone-aware")
        offset = el.at.utcoffset() or timedelta()
        half_hours = round(abs(offset.total_seconds()) / 1800)
        t = el.at.astimezone(UTC)
        off = (0x20 if offset.total_seconds() < 0 else 0) | (half_hours & 0x1F)
        cs = t.microsecond // 10_000
        return bytes((Mec.CLOCK, t.year % 100, t.month, t.day, t.hour, t.minute, t.second, cs, off))
    if isinstance(el, Ack):
        if el.code is AckCode.OK:
            return bytes((Mec.ACK, 0))
        return bytes((Mec.ACK, int(el.code), el.sqc))
    if isinstance(el, ManufacturerSpecific):
        if len(el.data) > 253:
            raise UecpError(AckCode.MSG_ELEMENT_LENGTH_ERROR, "manufacturer-specific data too long")
        return bytes((Mec.MANUFACTURER_SPECIFIC, len(el.data))) + el.data
    raise TypeError(f"not a UECP element: {el!r}")


def _need(msg: bytes, pos: int, n: int, mec: int) -> bytes:
    if pos + n > len(msg):
        raise UecpError(AckCode.MSG_ELEMENT_LENGTH_ERROR, f"MEC 0x{mec:02X} needs {n} bytes at offset {pos}")
    return msg[pos : pos + n]


def _ascii(raw: bytes, what: str) -> str:
    if any(not 0x20 <= b < 0x7F for b in raw):
        raise UecpError(AckCode.PARAM_OUT_OF_RANGE, f"{what} holds non-printable bytes")
    return raw.decode("ascii")


def _decode_one(msg: bytes, pos: int) -> tuple[Element, int]:
    mec = msg[pos]
    p = pos + 1
    if mec == Mec.PI:
        d = _need(msg, p, 4, mec)
        return PiSet(int.from_bytes(d[2:4], "big"), d[0], d[1]), p + 4
    if mec == Mec.PS:
        d = _need(msg, p, 10, mec)
        return PsSet(_ascii(d[2:10], "PS").rstrip(" "), d[0], d[1]), p + 10
    if mec == Mec.TA_TP:
        d = _need(msg, p, 3, mec)
        if d[2] & ~0x03:
            raise UecpError(AckCode.PARAM_OUT_OF_RANGE, f"TA/TP flags 0x{d[2]:02X}")
        return TaTpSet(bool(d[2] & 1), bool(d[2] & 2), d[0], d[1]), p + 3
    if mec == Mec.PTY:
        d = _need(msg, p, 3, mec)
        _check_range(d[2], 0, 31, "PTY")
        return PtySet(d[2], d[0], d[1]), p + 3
    if mec == Mec.RADIOTEXT:
        d = _need(msg, p, 3, mec)
        mel = d[2]
        if mel == 0:
            return RadioTextSet("", dsn=d[0], psn=d[1]), p + 3
        if mel > 65:
            raise UecpError(AckCode.MSG_ELEMENT_LENGTH_ERROR, f"RadioText MEL {mel} > 65")
        body = _need(msg, p + 3, mel, mec)
        flags = body[0]
        buf = (flags >> 5) & 0b11
        if buf not in (RtBuffer.REPLACE, RtBuffer.APPEND) or flags & 0x80:
            raise UecpError(AckCode.PARAM_OUT_OF_RANGE, f"RadioText flags 0x{flags:02X}")
        text = _ascii(body[1:], "RadioText")
        el = RadioTextSet(text, (flags >> 1) & 0x0F, bool(flags & 1), RtBuffer(buf), d[0], d[1])
        return el, p + 3 + mel
    if mec == Mec.CLOCK:
        d = _need(msg, p, 8, mec)
        try:
            sign = -1 if d[7] & 0x20 else 1
            base = datetime(2000 + d[0], d[1], d[2], d[3], d[4], d[5], d[6] * 10_000, tzinfo=UTC)
        except ValueError as exc:
            raise UecpError(AckCode.PARAM_OUT_OF_RANGE, f"clock: {exc}") from exc
        local = timedelta(minutes=30 * sign * (d[7] & 0x1F))
        return ClockSet(base.astimezone(timezone(local))), p + 8
    if mec == Mec.ACK:
        d = _need(msg, p, 1, mec)
        try:
            code = AckCode(d[0])
        except ValueError as exc:
            raise UecpError(AckCode.PARAM_OUT_OF_RANGE, f"unknown ack code {d[0]}") from exc
        if code is AckCode.OK:
            return Ack(code), p + 1
        d = _need(msg, p, 2, mec)
        return Ack(code, d[1]), p + 2
    if mec == Mec.MANUFACTURER_SPECIFIC:
        mel = _need(msg, p, 1, mec)[0]
        return ManufacturerSpecific(_need(msg, p + 1, mel, mec)), p + 1 + mel
    raise UecpError(AckCode.MSG_UNKNOWN, f"unknown MEC 0x{mec:02X}")


def decode_elements(msg: bytes) -> tuple[Element, ...]:
    """All message elements of a MSG field; raises UecpError with the code an encoder would NACK."""
    out: list[Element] = []
    pos = 0
    while pos < len(msg):
        el, pos = _decode_one(msg, pos)
        out.append(el)
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# CRC, stuffing, frames
