"""UECP (EBU SPB 490 / IEC 62106 "Universal Encoder Communication Protocol") codec for RDS encoders.

Owns the bytes on the wire between the FM adapter and an RDS encoder, for both directions:
frame layout, byte stuffing, CRC and a streaming decoder that resynchronises after garbage.
Pure: never does I/O, never reads the clock, never retries.

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

The message elements (MEC + data) live in adapters.fm.uecp_elements; callers import them from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from adapters.fm.uecp_elements import (
    AckCode,
    Element,
    decode_elements,
    encode_element,
)

STA = 0xFE
STP = 0xFF
ESC = 0xFD
MAX_MFL = 255
_HEADER = 4  # ADD(2) SQC(1) MFL(1)


class StuffingVariant(Enum):
    STANDARD = "standard"
    TRAILING_FD = "trailing_fd"


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
