"""UECP (EBU SPB 490 / IEC 62106 "Universal Encoder Communication Protocol") codec for RDS encoders.

Owns the bytes on the wire between the FM adapter and an RDS encoder, for both directions:
frame layout, byte stuffing, CRC, a streaming decoder that resynchronises after garbage, and the
message elements this product uses. Pure: never does I/O, never reads the clock, never retries.

Frame (checked against the public implementations chrko/python-uecp and bkram/uecprds)::

    STA 0xFE | ADD (2 B) | SQC (1 B) | MFL (1 B) | MSG (MFL bytes) | CRC (2 B, big-endian) | STP 0xFF

* ADD = site address (10 bits) << 6 | encoder address (6 bits); 0 means "all sites/encoders".
* SQC = sequence counter 1..255 (0 = not used); answers echo the SQC of the frame they answer.
* CRC = CRC-16 with polynomial 0x1021 (CCITT), init 0xFFFF, no reflection, final XOR 0xFFFF
  (catalogued as CRC-16/GENIBUS; check value for b"123456789" is 0xD64E), over ADD..MSG before stuffing.
* Stuffing applies to everything between STA and STP:
  - ``StuffingVariant.STANDARD`` (SPB 490): 0xFD -> FD 00, 0xFE -> FD 01, 0xFF -> FD 02.
  - ``StuffingVariant.TRAILING_FD`` (seen on real encoders, documented by bkram/uecprds): a data
    byte 0xFE or 0xFF is followed by 0xFD; 0xFD itself is sent as is. The decoder uses MFL to know
    where the frame ends, so a lone 0xFF after a complete frame is STP without look-ahead.

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
from enum import Enum, IntEnum

STA = 0xFE
STP = 0xFF
ESC = 0xFD
MAX_MFL = 255
_HEADER = 4  # ADD(2) SQC(1) MFL(1)


class StuffingVariant(Enum):
    STANDARD = "standard"
    TRAILING_FD = "trailing_fd"


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


def crc16(data: bytes) -> int:
    """CRC-16 of UECP: poly 0x1021, init 0xFFFF, not reflected, final XOR 0xFFFF."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc ^ 0xFFFF


def stuff(data: bytes, variant: StuffingVariant) -> bytes:
    out = bytearray()
    for b in data:
        if variant is StuffingVariant.STANDARD:
            if b >= ESC:
                out += bytes((ESC, b - ESC))
            else:
                out.append(b)
        else:
            out.append(b)
            if b in (STA, STP):
                out.append(ESC)
    return bytes(out)


@dataclass(frozen=True)
class Frame:
    """A UECP frame before stuffing. ``msg`` is the raw MSG field (MEC + data, possibly several)."""

    site: int
    encoder: int
    sqc: int
    msg: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.site <= 0x3FF:
            raise ValueError(f"UECP site address {self.site} outside 0..1023")
        if not 0 <= self.encoder <= 0x3F:
            raise ValueError(f"UECP encoder address {self.encoder} outside 0..63")
        if not 0 <= self.sqc <= 0xFF:
            raise ValueError(f"UECP sequence counter {self.sqc} outside 0..255")
        if len(self.msg) > MAX_MFL:
            raise ValueError(f"UECP message field of {len(self.msg)} bytes exceeds {MAX_MFL}")

    @classmethod
    def of(cls, site: int, encoder: int, sqc: int, *elements: Element) -> Frame:
        return cls(site, encoder, sqc, b"".join(encode_element(e) for e in elements))

    @property
    def address(self) -> int:
        return self.site << 6 | self.encoder

    def elements(self) -> tuple[Element, ...]:
        return decode_elements(self.msg)

    def body(self) -> bytes:
        """ADD..MSG followed by the CRC: the part that is stuffed."""
        head = self.address.to_bytes(2, "big") + bytes((self.sqc, len(self.msg))) + self.msg
        return head + crc16(head).to_bytes(2, "big")

    def encode(self, variant: StuffingVariant = StuffingVariant.STANDARD) -> bytes:
        return bytes((STA,)) + stuff(self.body(), variant) + bytes((STP,))


@dataclass(frozen=True)
class Rejected:
    """A frame that started but could not be accepted. ``sqc``/address are None when unreadable."""

    code: AckCode
    detail: str
    site: int | None = None
    encoder: int | None = None
    sqc: int | None = None


class FrameDecoder:
    """Streaming decoder: feed bytes as they arrive; get whole frames or rejections back.

    Bytes outside a frame are skipped (counted in ``garbage``). A new STA inside a frame abandons the
    partial frame (reported as UNEXPECTED_END_OF_MSG) and starts over, so the decoder always
    resynchronises on the next STA.
    """

    def __init__(self, variant: StuffingVariant = StuffingVariant.STANDARD) -> None:
        self.variant = variant
        self.garbage = 0
        self._in_frame = False
        self._buf = bytearray()
        self._escape = False
        self._pending: int | None = None  # TRAILING_FD: a 0xFE/0xFF waiting for its 0xFD

    def feed(self, data: bytes) -> list[Frame | Rejected]:
        out: list[Frame | Rejected] = []
        for b in data:
            self._byte(b, out)
        return out

    def _expected(self) -> int | None:
        if len(self._buf) < _HEADER:
            return None
        return _HEADER + self._buf[3] + 2

    def _start(self) -> None:
        self._in_frame = True
        self._buf.clear()
        self._escape = False
        self._pending = None

    def _reject(self, code: AckCode, detail: str, out: list[Frame | Rejected]) -> None:
        buf = self._buf
        site = encoder = sqc = None
        if len(buf) >= 2:
            addr = int.from_bytes(buf[0:2], "big")
            site, encoder = addr >> 6, addr & 0x3F
        if len(buf) >= 3:
            sqc = buf[2]
        out.append(Rejected(code, detail, site, encoder, sqc))
        self._in_frame = False
        self._buf = bytearray()
        self._escape = False
        self._pending = None

    def _append(self, b: int, out: list[Frame | Rejected]) -> None:
        self._buf.append(b)
        if len(self._buf) > _HEADER + MAX_MFL + 2:
            self._reject(AckCode.BUFFER_OVERFLOW, "frame longer than the largest UECP frame", out)

    def _finish(self, out: list[Frame | Rejected]) -> None:
        buf = bytes(self._buf)
        expected = self._expected()
        if expected is None or len(buf) < expected:
            self._reject(AckCode.UNEXPECTED_END_OF_MSG, f"frame ended after {len(buf)} bytes", out)
            return
        if len(buf) > expected:
            self._reject(AckCode.MSG_FIELD_LENGTH_ERROR, f"MFL {buf[3]} but {len(buf) - 6} bytes", out)
            return
        body, crc = buf[:-2], int.from_bytes(buf[-2:], "big")
        if crc16(body) != crc:
            self._reject(AckCode.CRC_ERROR, f"CRC 0x{crc:04X} != 0x{crc16(body):04X}", out)
            return
        addr = int.from_bytes(body[0:2], "big")
        out.append(Frame(addr >> 6, addr & 0x3F, body[2], body[4:]))
        self._in_frame = False
        self._buf = bytearray()

    def _byte(self, b: int, out: list[Frame | Rejected]) -> None:
        if not self._in_frame:
            if b == STA:
                self._start()
            else:
                self.garbage += 1
            return
        if self.variant is StuffingVariant.STANDARD:
            self._byte_standard(b, out)
        else:
            self._byte_trailing(b, out)

    def _byte_standard(self, b: int, out: list[Frame | Rejected]) -> None:
        if b == STA:
            self._reject(AckCode.UNEXPECTED_END_OF_MSG, "new STA inside a frame", out)
            self._start()
        elif b == STP:
            if self._escape:
                self._reject(AckCode.BAD_STUFFING, "STP right after an escape byte", out)
            else:
                self._finish(out)
        elif self._escape:
            self._escape = False
            if b > 2:
                self._reject(AckCode.BAD_STUFFING, f"escape followed by 0x{b:02X}", out)
            else:
                self._append(ESC + b, out)
        elif b == ESC:
            self._escape = True
        else:
            self._append(b, out)

    def _byte_trailing(self, b: int, out: list[Frame | Rejected]) -> None:
        pending = self._pending
        if pending is not None:
            self._pending = None
            if b == ESC:
                self._append(pending, out)
                return
            if pending == STA:
                self._reject(AckCode.UNEXPECTED_END_OF_MSG, "new STA inside a frame", out)
                self._start()
                self._byte_trailing(b, out)
                return
            self._finish(out)  # a lone 0xFF before the frame was complete: ends it (with an error)
            self._byte(b, out)
            return
        expected = self._expected()
        if b == STP and expected is not None and len(self._buf) >= expected:
            self._finish(out)
        elif b in (STA, STP):
            self._pending = b
        else:
            self._append(b, out)
