"""Frames of the IP loudspeaker protocol (eb-protocols §4.1): encode, and a streaming decoder that
resynchronises on the next 0xFEFD tag after garbage, so one corrupted frame never kills a connection.

Shared by the controller-side adapter and the simulated terminals. Pure: never does I/O, never reads
the clock, never verifies signatures (it parses the trailer; a signer may be injected to emit one).

Layout (big-endian): header ‖ body ‖ [signature trailer] ‖ CRC-32/MPEG-2 over everything before it.
- Header, standard 12 B: tag 0xFEFD, version 0x0100, session id u32, packet type u8, sign flag u8,
  total length u16. Return-channel variant 11 B: the same without the sign flag (never signed).
- ``total length`` counts the whole packet: header, body, trailer and the 4-byte CRC.
- Body: source resource code 12 B BCD; target count u16; targets 12 B each; business type u8;
  business length u16; business data.
- Signature trailer: sig length u16 (length of the signature bytes only), time u32, cert no 6 B BCD
  (12 digits), signature.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from adapters.ip_speaker.payloads import Payload, decode_business
from adapters.wire.bcd import (
    CERT_NO_BYTES,
    CERT_NO_DIGITS,
    RESOURCE_CODE_BYTES,
    RESOURCE_CODE_DIGITS,
    decode_bcd,
    encode_bcd,
)
from adapters.wire.crc import crc32_mpeg2

TAG = b"\xfe\xfd"
VERSION = 0x0100
CRC_BYTES = 4
# source code + target count + business type + business length
MIN_BODY = RESOURCE_CODE_BYTES + 2 + 1 + 2
SIG_FIXED = 2 + 4 + CERT_NO_BYTES
MAX_FRAME = 0xFFFF


class HeaderVariant(StrEnum):
    STANDARD = "standard"  # 12-byte header with sign flag
    RETURN_CHANNEL = "return_channel"  # 11-byte header, no sign flag (terminal → platform)

    @property
    def header_size(self) -> int:
        return 12 if self is HeaderVariant.STANDARD else 11


class PacketType(IntEnum):
    REQUEST = 1  # return channel: active report
    RESPONSE = 2  # return channel: passive reply


@dataclass(frozen=True)
class SignatureTrailer:
    time: int
    cert_no: str  # 12 digits
    signature: bytes


Signer = Callable[[bytes], SignatureTrailer]
"""Signs header+body (with the final sign flag and total length) and returns the trailer."""


@dataclass(frozen=True)
class Frame:
    session_id: int
    packet_type: int  # PacketType; kept as int so odd values survive decoding
    source: str  # 23-digit resource code
    targets: tuple[str, ...]
    business_type: int
    business_data: bytes
    signature: SignatureTrailer | None = None
    version: int = VERSION

    @property
    def is_response(self) -> bool:
        return self.packet_type == PacketType.RESPONSE

    def payload(self) -> Payload:
        """Decode the business data (raises ``PayloadError``)."""
        return decode_business(self.business_type, self.is_response, self.business_data)


class DecodeErrorKind(StrEnum):
    BAD_TAG = "bad_tag"  # bytes that are not a frame start were skipped
    BAD_VERSION = "bad_version"
    BAD_LENGTH = "bad_length"  # total length impossible or inconsistent with the body fields
    TRUNCATED = "truncated"  # business data / signature runs past the declared total length
    BAD_CRC = "bad_crc"
    BAD_FIELD = "bad_field"  # CRC-valid frame with an undecodable field (e.g. non-BCD code)


@dataclass(frozen=True)
class DecodeError:
    kind: DecodeErrorKind
    detail: str
    skipped: int = 0  # bytes discarded
    session_id: int | None = None


def encode_frame(
    frame: Frame,
    variant: HeaderVariant = HeaderVariant.STANDARD,
    signer: Signer | None = None,
    signature_length: int = 64,
) -> bytes:
    """Serialise ``frame``; with ``signer`` (standard header only) a signature trailer is added."""
    if signer is not None and variant is HeaderVariant.RETURN_CHANNEL:
        raise ValueError("the 11-byte return-channel header has no sign flag; it cannot be signed")
    if len(frame.targets) > 0xFFFF:
        raise ValueError("too many targets for one frame")
    if len(frame.business_data) > 0xFFFF:
        raise ValueError("business data longer than 65535 bytes")
    body = b"".join(
        (
            encode_bcd(frame.source, RESOURCE_CODE_BYTES),
            struct.pack(">H", len(frame.targets)),
            *(encode_bcd(t, RESOURCE_CODE_BYTES) for t in frame.targets),
            struct.pack(">BH", frame.business_type, len(frame.business_data)),
            frame.business_data,
        )
    )
    trailer_len = SIG_FIXED + signature_length if signer is not None else 0
    total = variant.header_size + len(body) + trailer_len + CRC_BYTES
    if total > MAX_FRAME:
        raise ValueError(f"frame of {total} bytes exceeds the 65535-byte limit")
    if variant is HeaderVariant.STANDARD:
        header = struct.pack(
            ">2sHIBBH",
            TAG,
            frame.version,
            frame.session_id,
            frame.packet_type,
            int(signer is not None),
            total,
        )
    else:
        header = struct.pack(">2sHIBH", TAG, frame.version, frame.session_id, frame.packet_type, total)
    packet = header + body
    if signer is not None:
        sig = signer(packet)
        if len(sig.signature) != signature_length:
            raise ValueError(f"signer returned {len(sig.signature)} bytes, expected {signature_length}")
        packet += (
            struct.pack(">HI", len(sig.signature), sig.time)
            + encode_bcd(sig.cert_no, CERT_NO_BYTES)
            + sig.signature
        )
    return packet + struct.pack(">I", crc32_mpeg2(packet))


class FrameDecoder:
    """Streaming decoder: ``feed(bytes)`` returns the frames and decode errors found so far.

    After any error it drops one byte and searches for the next tag, so the next good frame is found
    even when a length field was corrupted. Structural consistency (the declared total length versus
    target count and business length) is checked as soon as those bytes arrive, so a corrupted length
    does not make the decoder wait for bytes that will never come.
    """

    def __init__(self, variant: HeaderVariant = HeaderVariant.STANDARD, max_frame: int = MAX_FRAME) -> None:
        self.variant = variant
        self.max_frame = max_frame
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame | DecodeError]:
        self._buf += data
        out: list[Frame | DecodeError] = []
        while self._step(out):
            pass
        return out

    def _skip(
        self,
        n: int,
        out: list[Frame | DecodeError],
        kind: DecodeErrorKind,
        detail: str,
        session_id: int | None = None,
    ) -> bool:
        del self._buf[:n]
        out.append(DecodeError(kind, detail, n, session_id))
        return True

    def _step(self, out: list[Frame | DecodeError]) -> bool:
        """Consume at most one frame or error; False when more bytes are needed."""
        buf = self._buf
        i = buf.find(TAG)
        if i < 0:
            keep = 1 if buf and buf[-1] == TAG[0] else 0
            if len(buf) > keep:
                self._skip(len(buf) - keep, out, DecodeErrorKind.BAD_TAG, "no frame tag 0xFEFD in bytes")
            return False
        if i > 0:
            return self._skip(i, out, DecodeErrorKind.BAD_TAG, f"{i} bytes before frame tag")
        hsize = self.variant.header_size
        if len(buf) < hsize:
            return False
        if self.variant is HeaderVariant.STANDARD:
            _, version, session, _ptype, signed, total = struct.unpack_from(">2sHIBBH", buf)
        else:
            _, version, session, _ptype, total = struct.unpack_from(">2sHIBH", buf)
            signed = 0
        if version != VERSION:
            return self._skip(1, out, DecodeErrorKind.BAD_VERSION, f"version {version:#06x}")
        if signed not in (0, 1):
            return self._skip(1, out, DecodeErrorKind.BAD_LENGTH, f"sign flag {signed}")
        if total < hsize + MIN_BODY + CRC_BYTES or total > self.max_frame:
            return self._skip(1, out, DecodeErrorKind.BAD_LENGTH, f"total length {total}")
        # Structural checks as soon as the fields are buffered.
        pos_count = hsize + RESOURCE_CODE_BYTES
        if len(buf) >= pos_count + 2:
            (count,) = struct.unpack_from(">H", buf, pos_count)
            pos_blen = pos_count + 2 + RESOURCE_CODE_BYTES * count + 1
            if pos_blen + 2 + CRC_BYTES > total:
                return self._skip(
                    1, out, DecodeErrorKind.BAD_LENGTH, f"{count} targets do not fit in {total}"
                )
            if len(buf) >= pos_blen + 2:
                (blen,) = struct.unpack_from(">H", buf, pos_blen)
                end_body = pos_blen + 2 + blen
                if not signed and end_body + CRC_BYTES != total:
                    kind = (
                        DecodeErrorKind.TRUNCATED
                        if end_body + CRC_BYTES > total
                        else DecodeErrorKind.BAD_LENGTH
                    )
                    return self._skip(1, out, kind, f"business length {blen} disagrees with total {total}")
                if signed and end_body + SIG_FIXED + CRC_BYTES > total:
                    return self._skip(1, out, DecodeErrorKind.TRUNCATED, "no room for the signature trailer")
        if len(buf) < total:
            return False
        (crc,) = struct.unpack_from(">I", buf, total - CRC_BYTES)
        if crc32_mpeg2(bytes(buf[: total - CRC_BYTES])) != crc:
            return self._skip(1, out, DecodeErrorKind.BAD_CRC, f"CRC mismatch in session {session}", session)
        try:
            frame = self._parse(bytes(buf[:total]), hsize, bool(signed))
        except ValueError as exc:
            return self._skip(total, out, DecodeErrorKind.BAD_FIELD, f"session {session}: {exc}", session)
        del buf[:total]
        out.append(frame)
        return True

    def _parse(self, raw: bytes, hsize: int, signed: bool) -> Frame:
        _, version, session, ptype = struct.unpack_from(">2sHIB", raw)
        pos = hsize
        source = decode_bcd(raw[pos : pos + RESOURCE_CODE_BYTES], RESOURCE_CODE_DIGITS)
        pos += RESOURCE_CODE_BYTES
        (count,) = struct.unpack_from(">H", raw, pos)
        pos += 2
        targets = []
        for _ in range(count):
            targets.append(decode_bcd(raw[pos : pos + RESOURCE_CODE_BYTES], RESOURCE_CODE_DIGITS))
            pos += RESOURCE_CODE_BYTES
        btype, blen = struct.unpack_from(">BH", raw, pos)
        pos += 3
        data = raw[pos : pos + blen]
        pos += blen
        signature = None
        if signed:
            slen, stime = struct.unpack_from(">HI", raw, pos)
            pos += 6
            cert = decode_bcd(raw[pos : pos + CERT_NO_BYTES], CERT_NO_DIGITS)
            pos += CERT_NO_BYTES
            if pos + slen + CRC_BYTES != len(raw):
                raise ValueError(f"signature length {slen} disagrees with the frame length")
            signature = SignatureTrailer(stime, cert, raw[pos : pos + slen])
        return Frame(session, ptype, source, tuple(targets), btype, data, signature, version)
