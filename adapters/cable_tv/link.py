"""The framed serial protocol between the cable-TV adapter and the head-end EB inserter (前端插入器).

The real link is vendor-specific (eb-protocols §4.2); this is our design, shared by the adapter and
sim/cable_inserter.py. Pure codec: never does I/O, never retries, never reads the clock.

Frame (all integers big-endian)::

    SYNC 0xEB 0x90 | seq u16 | cmd u8 | length u16 | HCS u8 | payload (length B) | CRC-32/MPEG-2 (4 B)

* HCS = 0xFF - (sum of the 5 bytes seq..length mod 256): lets the receiver trust ``seq`` and
  ``length`` before the payload has arrived, and skip false SYNC patterns quickly.
* CRC-32/MPEG-2 (as for the sections) covers seq..payload.
* No byte stuffing: the decoder hunts for SYNC, checks HCS, waits for ``length`` + 4 bytes, checks the
  CRC. A frame with good HCS but bad CRC is reported with its ``seq`` so the receiver can NACK it.
* Maximum payload 60,000 bytes.

Commands (adapter -> inserter): 0x01 INSERT (EBM id 18 B BCD + concatenated private sections: EBIT
and content table), 0x02 WITHDRAW (EBM id 18 B BCD), 0x03 STATUS (empty).
Replies (inserter -> adapter) carry the seq of the request: 0x80 ACK (empty), 0x81 NACK (reason u8 +
UTF-8 detail), 0x83 STATUS_REPLY (count u8 + EBM ids 18 B BCD each).

Reliability: the adapter retransmits the *same* frame (same seq) when no reply arrives in time or
on a NACK with a transient reason (BAD_CRC, BUSY); the inserter remembers the replies to recent seq
numbers and answers a duplicate with the stored reply without applying the command again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from adapters.cable_tv.sections import decode_bcd_field
from adapters.wire.bcd import EBM_ID_BYTES, EBM_ID_DIGITS, encode_bcd
from adapters.wire.crc import crc32_mpeg2

SYNC = b"\xeb\x90"
_HEAD = 8  # SYNC(2) seq(2) cmd(1) len(2) hcs(1)
MAX_PAYLOAD = 60_000


class Command(IntEnum):
    INSERT = 0x01
    WITHDRAW = 0x02
    STATUS = 0x03
    ACK = 0x80
    NACK = 0x81
    STATUS_REPLY = 0x83


class NackReason(IntEnum):
    BAD_CRC = 1
    BAD_SECTION = 2
    UNKNOWN_COMMAND = 3
    MALFORMED = 4
    BUSY = 5
    REFUSED = 6

    @property
    def transient(self) -> bool:
        return self in (NackReason.BAD_CRC, NackReason.BUSY)


@dataclass(frozen=True)
class LinkFrame:
    seq: int
    command: Command
    payload: bytes = b""

    def encode(self) -> bytes:
        if not 0 <= self.seq <= 0xFFFF:
            raise ValueError(f"link seq {self.seq} outside 0..65535")
        if len(self.payload) > MAX_PAYLOAD:
            raise ValueError(f"link payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")
        head = self.seq.to_bytes(2, "big") + bytes((self.command,)) + len(self.payload).to_bytes(2, "big")
        body = head + self.payload
        return SYNC + head + bytes((_hcs(head),)) + self.payload + crc32_mpeg2(body).to_bytes(4, "big")


@dataclass(frozen=True)
class LinkReject:
    """A frame whose header was sound but whose CRC (or command) was not."""

    seq: int
    reason: NackReason
    detail: str


def _hcs(head: bytes) -> int:
    return 0xFF - (sum(head) & 0xFF)


class LinkDecoder:
    """Streaming decoder; resynchronises on SYNC after garbage. ``garbage`` counts skipped bytes."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.garbage = 0

    def feed(self, data: bytes) -> list[LinkFrame | LinkReject]:
        self._buf += data
        out: list[LinkFrame | LinkReject] = []
        while True:
            start = self._buf.find(SYNC)
            if start < 0:
                keep = 1 if self._buf.endswith(SYNC[:1]) else 0
                self.garbage += len(self._buf) - keep
                del self._buf[: len(self._buf) - keep]
                return out
            if start:
                self.garbage += start
                del self._buf[:start]
            if len(self._buf) < _HEAD:
                return out
            head = bytes(self._buf[2:7])
            length = int.from_bytes(head[3:5], "big")
            if self._buf[7] != _hcs(head) or length > MAX_PAYLOAD:
                self.garbage += 1
                del self._buf[:1]  # a false SYNC: look again one byte further
                continue
            total = _HEAD + length + 4
            if len(self._buf) < total:
                return out
            frame = bytes(self._buf[:total])
            del self._buf[:total]
            seq = int.from_bytes(head[0:2], "big")
            body = head + frame[_HEAD : _HEAD + length]
            if crc32_mpeg2(body) != int.from_bytes(frame[-4:], "big"):
                out.append(LinkReject(seq, NackReason.BAD_CRC, "frame CRC mismatch"))
                continue
            try:
                command = Command(head[2])
            except ValueError:
                out.append(LinkReject(seq, NackReason.UNKNOWN_COMMAND, f"command 0x{head[2]:02X}"))
                continue
            out.append(LinkFrame(seq, command, frame[_HEAD : _HEAD + length]))


# -- payload helpers -----------------------------------------------------------------------------


def insert_payload(ebm_id: str, sections: list[bytes]) -> bytes:
    return encode_bcd(ebm_id, EBM_ID_BYTES) + b"".join(sections)


def split_insert(payload: bytes) -> tuple[str, bytes]:
    if len(payload) < 18:
        raise ValueError("INSERT payload shorter than an EBM id")
    return decode_bcd_field(payload[:EBM_ID_BYTES], EBM_ID_DIGITS), payload[18:]


def ebm_payload(ebm_id: str) -> bytes:
    return encode_bcd(ebm_id, EBM_ID_BYTES)


def parse_ebm_payload(payload: bytes) -> str:
    if len(payload) != 18:
        raise ValueError("EBM id payload must be 18 bytes")
    return decode_bcd_field(payload, EBM_ID_DIGITS)


def nack_payload(reason: NackReason, detail: str) -> bytes:
    return bytes((reason,)) + detail.encode("utf-8")[:200]


def parse_nack(payload: bytes) -> tuple[NackReason, str]:
    try:
        reason = NackReason(payload[0]) if payload else NackReason.MALFORMED
    except ValueError:
        reason = NackReason.MALFORMED
    return reason, payload[1:].decode("utf-8", errors="replace")


def status_payload(ebm_ids: list[str]) -> bytes:
    return bytes((len(ebm_ids),)) + b"".join(encode_bcd(e, EBM_ID_BYTES) for e in ebm_ids)


def parse_status(payload: bytes) -> list[str]:
    if not payload or len(payload) != 1 + 18 * payload[0]:
        raise ValueError("malformed STATUS_REPLY payload")
    return [decode_bcd_field(payload[1 + 18 * i : 19 + 18 * i], EBM_ID_DIGITS) for i in range(payload[0])]
