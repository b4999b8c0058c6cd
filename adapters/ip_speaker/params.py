"""Query (0x11) and set-parameters (0x12) payloads of the IP loudspeaker protocol, with their tag/length/value
items and the return address (tag 0x03) they carry.

Choices where the field notes leave room:
- Return address (query/set tag 0x03): type u8; type 1 = IPv4 4 B + port u16; type 2 = domain length u8
  + ASCII domain + port u16; type 3 = number length u8 + ASCII SMS number.
- Set resource code (tag 0x04): either the 12 B BCD code, or (Lootom) physical-address length u8 +
  address + the 12 B BCD code, so only the device with that address takes it.

Owns: the TLV item layout of query/set and the return-address encoding.
Never: does I/O, reads the clock, imports the core, or knows about any other business payload.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from adapters.ip_speaker.payload_fields import (
    AddressType,
    BusinessType,
    PayloadError,
    QueryTag,
    Reader,
    ResultCode,
    SetTag,
    long_text,
    pack_u8,
)
from adapters.wire.bcd import RESOURCE_CODE_BYTES, RESOURCE_CODE_DIGITS, decode_bcd, encode_bcd


@dataclass(frozen=True)
class Query:
    BUSINESS_TYPE: ClassVar[BusinessType] = BusinessType.QUERY

    tags: tuple[int, ...]

    def encode(self) -> bytes:
        if len(self.tags) > 0xFF:
            raise ValueError("too many query tags")
        return bytes((len(self.tags), *self.tags))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, "query")
        tags = tuple(r.take(r.u8()))
        r.end()
        return cls(tags)


@dataclass(frozen=True)
class QueryReply:
    """Reply to 0x11: result, desc, then count u8 of (tag u8, len u8, value)."""

    result: int
    desc: str
    items: tuple[tuple[int, bytes], ...]

    def value(self, tag: int) -> bytes | None:
        for t, v in self.items:
            if t == tag:
                return v
        return None

    @property
    def volume(self) -> int | None:
        v = self.value(QueryTag.VOLUME)
        return v[0] if v else None

    @property
    def resource_code(self) -> str | None:
        v = self.value(QueryTag.RESOURCE_CODE)
        return decode_bcd(v, RESOURCE_CODE_DIGITS) if v else None

    @property
    def physical_address(self) -> bytes | None:
        return self.value(QueryTag.PHYSICAL_ADDRESS)

    @property
    def return_address(self) -> ReturnAddress | None:
        v = self.value(QueryTag.RETURN_ADDRESS)
        return ReturnAddress.decode(v) if v else None

    @property
    def work_state(self) -> int | None:
        v = self.value(QueryTag.WORK_STATE)
        return v[0] if v else None

    @property
    def sw_version(self) -> str | None:
        v = self.value(QueryTag.SW_VERSION)
        return v.decode("utf-8", errors="replace") if v is not None else None

    @classmethod
    def build(
        cls,
        *,
        volume: int,
        resource_code: str,
        physical_address: bytes,
        work_state: int,
        sw_version: str,
        only: tuple[int, ...] = (),
        return_address: ReturnAddress | None = None,
    ) -> Self:
        """A successful reply carrying the standard tags (all, or those listed in ``only``)."""
        everything: dict[int, bytes] = {
            QueryTag.VOLUME: bytes((volume,)),
            **({QueryTag.RETURN_ADDRESS: return_address.encode()} if return_address else {}),
            QueryTag.RESOURCE_CODE: encode_bcd(resource_code, RESOURCE_CODE_BYTES),
            QueryTag.PHYSICAL_ADDRESS: physical_address,
            QueryTag.WORK_STATE: bytes((work_state,)),
            QueryTag.SW_VERSION: sw_version.encode("utf-8"),
        }
        wanted = only or tuple(everything)
        return cls(ResultCode.OK, "", tuple((t, everything[t]) for t in wanted if t in everything))

    def encode(self) -> bytes:
        parts = [pack_u8(self.result, "result"), long_text(self.desc, "query reply description")]
        parts.append(pack_u8(len(self.items), "query item count"))
        for tag, value in self.items:
            if len(value) > 0xFF:
                raise ValueError(f"query tag {tag:#04x} value longer than 255 bytes")
            parts.append(bytes((tag, len(value))) + value)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, "query reply")
        result = r.u8()
        desc = r.text(r.u16())
        items = []
        for _ in range(r.u8()):
            tag, n = r.u8(), r.u8()
            items.append((tag, r.take(n)))
        r.end()
        return cls(result, desc, tuple(items))


@dataclass(frozen=True)
class ReturnAddress:
    """Where a terminal reports to (tag 0x03): IPv4 + port, domain + port, or an SMS number."""

    kind: int  # AddressType
    host: str
    port: int = 0

    def encode(self) -> bytes:
        if self.kind == AddressType.IPV4:
            parts = self.host.split(".")
            if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
                raise ValueError(f"return address {self.host!r} is not an IPv4 address")
            return bytes((self.kind, *(int(p) for p in parts))) + struct.pack(">H", self.port)
        raw = self.host.encode("ascii")
        if len(raw) > 0xFF:
            raise ValueError("return address longer than 255 bytes")
        tail = struct.pack(">H", self.port) if self.kind == AddressType.DOMAIN else b""
        if self.kind not in (AddressType.DOMAIN, AddressType.SMS):
            raise ValueError(f"return address type {self.kind} is not 1, 2 or 3")
        return bytes((self.kind, len(raw))) + raw + tail

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, "return address")
        kind = r.u8()
        if kind == AddressType.IPV4:
            host = ".".join(str(b) for b in r.take(4))
            port = r.u16()
        elif kind in (AddressType.DOMAIN, AddressType.SMS):
            try:
                host = r.take(r.u8()).decode("ascii")
            except UnicodeDecodeError as exc:
                raise PayloadError("return address: not ASCII") from exc
            port = r.u16() if kind == AddressType.DOMAIN else 0
        else:
            raise PayloadError(f"return address: unknown type {kind}")
        r.end()
        return cls(kind, host, port)


@dataclass(frozen=True)
class SetParams:
    """0x12: count u8 + (tag u8, len u8, value); see the module docstring for tag 0x04."""

    BUSINESS_TYPE: ClassVar[BusinessType] = BusinessType.SET_PARAMS

    items: tuple[tuple[int, bytes], ...]

    @classmethod
    def build(
        cls,
        *,
        volume: int | None = None,
        return_address: ReturnAddress | None = None,
        resource_code: str | None = None,
        physical_address: bytes | None = None,
    ) -> Self:
        """Items for the given parameters; ``physical_address`` guards a resource-code change."""
        items: list[tuple[int, bytes]] = []
        if volume is not None:
            items.append((SetTag.VOLUME, pack_u8(volume, "volume")))
        if return_address is not None:
            items.append((SetTag.RETURN_ADDRESS, return_address.encode()))
        if resource_code is not None:
            code = encode_bcd(resource_code, RESOURCE_CODE_BYTES)
            if physical_address is not None:
                code = pack_u8(len(physical_address), "physical address length") + physical_address + code
            items.append((SetTag.RESOURCE_CODE, code))
        if not items:
            raise ValueError("set params: nothing to set")
        return cls(tuple(items))

    def value(self, tag: int) -> bytes | None:
        for t, v in self.items:
            if t == tag:
                return v
        return None

    @property
    def volume(self) -> int | None:
        v = self.value(SetTag.VOLUME)
        return v[0] if v else None

    @property
    def return_address(self) -> ReturnAddress | None:
        v = self.value(SetTag.RETURN_ADDRESS)
        return ReturnAddress.decode(v) if v else None

    @property
    def resource_code(self) -> tuple[str, bytes | None] | None:
        """(new code, the physical address it is meant for or None)."""
        v = self.value(SetTag.RESOURCE_CODE)
        if not v:
            return None
        if len(v) == RESOURCE_CODE_BYTES:
            return decode_bcd(v, RESOURCE_CODE_DIGITS), None
        r = Reader(v, "set resource code")
        addr = r.take(r.u8())
        code = r.bcd(RESOURCE_CODE_BYTES, RESOURCE_CODE_DIGITS)
        r.end()
        return code, addr

    def encode(self) -> bytes:
        parts = [pack_u8(len(self.items), "set item count")]
        for tag, value in self.items:
            if len(value) > 0xFF:
                raise ValueError(f"set tag {tag:#04x} value longer than 255 bytes")
            parts.append(bytes((tag, len(value))) + value)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, "set params")
        items = []
        for _ in range(r.u8()):
            tag, n = r.u8(), r.u8()
            items.append((tag, r.take(n)))
        r.end()
        return cls(tuple(items))
