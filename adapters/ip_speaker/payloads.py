"""Business payloads of the IP loudspeaker protocol (eb-protocols §4.1): frozen dataclasses with
``encode()`` / ``decode()``, plus the protocol's enums (business types, result codes, states).

Pure: bytes in, values out. Never does I/O, never reads the clock, never imports the core.

Choices where the field notes leave room (documented here once):
- Times are u32 Unix seconds, UTC.
- Text fields are UTF-8. Reply/QueryReply descriptions carry a u16 length; the FaultReport and
  BroadcastResult descriptions carry a u8 length (at most 255 bytes, matching the "desc 255 B" note).
- Heartbeat physical address: length u8 + bytes; the product uses the ASCII bytes of
  ``TerminalRef.physical_address``.
- Return address (query/set tag 0x03): type u8; type 1 = IPv4 4 B + port u16; type 2 = domain length u8
  + ASCII domain + port u16; type 3 = number length u8 + ASCII SMS number.
- Set resource code (tag 0x04): either the 12 B BCD code, or (Lootom) physical-address length u8 +
  address + the 12 B BCD code, so only the device with that address takes it.
- Broadcast records (0x16): front-end code 12 B BCD; count u8; each record: channel u16, state u8
  (BrdStateCode), EBM id 18 B BCD, task type u8, broadcast type u8, level u8, event type 5 ASCII, start
  u32, end u32, volume u8, coverage count u8 + 12 B BCD resource codes.
- Heartbeat work state 4 (xyd "offline") is only ever sent by a front-end about a terminal behind it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self

from adapters.ip_speaker.bcd import (
    EBM_ID_BYTES,
    EBM_ID_DIGITS,
    RESOURCE_CODE_BYTES,
    RESOURCE_CODE_DIGITS,
    decode_bcd,
    encode_bcd,
)


class BusinessType(IntEnum):
    START_BROADCAST = 0x01
    STOP_BROADCAST = 0x02
    HEARTBEAT = 0x10
    QUERY = 0x11
    SET_PARAMS = 0x12
    FAULT_REPORT = 0x13
    TASK_SWITCH = 0x14
    BROADCAST_RESULT = 0x15
    BROADCAST_RECORDS = 0x16


class ResultCode(IntEnum):
    """Result of a request, carried in every Reply (legacy header table)."""

    OK = 0
    UNKNOWN_PROTOCOL = 10
    TIMEOUT = 11
    VERSION_MISMATCH = 12
    PARSE_ERROR = 13
    MISSING_PARAMETER = 14
    CRC_ERROR = 15
    UNKNOWN_SYSTEM_TYPE = 30
    BUSY = 31
    NO_STORAGE = 32
    FILE_READ_FAILED = 33
    FILE_WRITE_FAILED = 34
    UKEY_MISSING = 35
    UKEY_ILLEGAL = 36
    BAD_CREDENTIALS = 51
    CERT_ILLEGAL = 52
    PARAM_ILLEGAL = 54
    UNSUPPORTED = 55
    RESOURCE_CODE_INVALID = 59
    TERMINAL_ERROR = 60
    UNKNOWN_TERMINAL_TYPE = 70
    TERMINAL_INVALID = 71
    TERMINAL_OFFLINE = 72
    TERMINAL_BUSY = 73


BUSY_RESULTS = frozenset({ResultCode.BUSY, ResultCode.TERMINAL_BUSY})


class BroadcastType(IntEnum):
    SYSTEM_DRILL = 1
    SIMULATED_DRILL = 2
    ACTUAL_DRILL = 3
    EMERGENCY = 4
    DAILY = 5


class WorkState(IntEnum):
    IDLE = 1
    BROADCASTING = 2
    FAULT = 3
    OFFLINE = 4  # xyd-derived: a front-end reports a terminal behind it that dropped its link


class RecordState(IntEnum):
    """BrdStateCode of a 0x16 broadcast record (eb-protocols §3)."""

    NOT_PROCESSED = 0
    WAITING = 1
    BROADCASTING = 2
    SUCCESS = 3
    FAILED = 4
    CANCELLED = 5


class FaultFlag(IntEnum):
    FAULT = 1
    RECOVERED = 2


class TaskFlag(IntEnum):
    START = 1
    END = 2


class TaskType(IntEnum):
    EMERGENCY_SOURCE = 1
    DAILY_SOURCE = 2
    PHONE = 3
    SMS = 4
    MIXER = 5
    USB = 6
    OTHER_WIRELESS = 7


class QueryTag(IntEnum):
    VOLUME = 0x01
    NETWORK = 0x02
    RETURN_ADDRESS = 0x03
    RESOURCE_CODE = 0x04
    PHYSICAL_ADDRESS = 0x05
    WORK_STATE = 0x06
    FAULT_CODE = 0x07
    DEVICE_TYPE = 0x08
    HW_VERSION = 0x09
    SW_VERSION = 0x0A


class SetTag(IntEnum):
    VOLUME = 0x01
    NETWORK = 0x02
    RETURN_ADDRESS = 0x03
    RESOURCE_CODE = 0x04


class AddressType(IntEnum):
    IPV4 = 1
    DOMAIN = 2
    SMS = 3


AUX_URL = 0x3D  # aux item carrying a URL (http://, rtp://, fm://<freq>, ...)


class PayloadError(ValueError):
    """Business data that does not decode; ``truncated`` when it ended early."""

    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


class _Reader:
    __slots__ = ("_data", "_name", "_pos")

    def __init__(self, data: bytes, name: str) -> None:
        self._data = data
        self._pos = 0
        self._name = name

    def take(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise PayloadError(
                f"{self._name}: needs {end} bytes, business data has {len(self._data)}", truncated=True
            )
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        value: int = struct.unpack(">H", self.take(2))[0]
        return value

    def u32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def bcd(self, size: int, digits: int) -> str:
        try:
            return decode_bcd(self.take(size), digits)
        except PayloadError:
            raise
        except ValueError as exc:
            raise PayloadError(f"{self._name}: {exc}") from exc

    def text(self, n: int) -> str:
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError(f"{self._name}: text is not UTF-8") from exc

    def end(self) -> None:
        if self._pos != len(self._data):
            raise PayloadError(f"{self._name}: {len(self._data) - self._pos} unexpected trailing bytes")


def _u8(value: int, name: str) -> bytes:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must fit in one byte, got {value}")
    return bytes((value,))


def _short_text(text: str, name: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFF:
        raise ValueError(f"{name} is {len(raw)} UTF-8 bytes; at most 255 fit")
    return bytes((len(raw),)) + raw


def _long_text(text: str, name: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError(f"{name} is too long ({len(raw)} bytes)")
    return struct.pack(">H", len(raw)) + raw


def _ebm(ebm_id: str) -> bytes:
    if len(ebm_id) != EBM_ID_DIGITS:
        raise ValueError(f"EBM id must be {EBM_ID_DIGITS} digits, got {ebm_id!r}")
    return encode_bcd(ebm_id, EBM_ID_BYTES)


@dataclass(frozen=True)
class AuxItem:
    aux_type: int
    data: bytes


@dataclass(frozen=True)
class StartBroadcast:
    BUSINESS_TYPE: ClassVar[BusinessType] = BusinessType.START_BROADCAST

    ebm_id: str
    broadcast_type: int
    level: int
    event_type: str
    volume: int
    start: int
    end: int
    aux: tuple[AuxItem, ...] = ()

    @property
    def url(self) -> str | None:
        """The first aux 0x3D URL, if any."""
        for item in self.aux:
            if item.aux_type == AUX_URL:
                return item.data.decode("utf-8", errors="replace")
        return None

    def encode(self) -> bytes:
        event = self.event_type.encode("ascii")
        if len(event) != 5:
            raise ValueError(f"event type must be 5 ASCII characters, got {self.event_type!r}")
        if len(self.aux) > 0xFF:
            raise ValueError("too many aux items")
        parts = [
            _ebm(self.ebm_id),
            _u8(self.broadcast_type, "broadcast type"),
            _u8(self.level, "level"),
            event,
            _u8(self.volume, "volume"),
            struct.pack(">IIB", self.start, self.end, len(self.aux)),
        ]
        for item in self.aux:
            parts.append(struct.pack(">BH", item.aux_type, len(item.data)) + item.data)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(data, "start broadcast")
        ebm_id = r.bcd(EBM_ID_BYTES, EBM_ID_DIGITS)
        btype, level = r.u8(), r.u8()
        try:
            event = r.take(5).decode("ascii")
        except UnicodeDecodeError as exc:
            raise PayloadError("start broadcast: event type is not ASCII") from exc
        volume, start, end, count = r.u8(), r.u32(), r.u32(), r.u8()
        aux = []
        for _ in range(count):
            atype, alen = r.u8(), r.u16()
            aux.append(AuxItem(atype, r.take(alen)))
        r.end()
        return cls(ebm_id, btype, level, event, volume, start, end, tuple(aux))


@dataclass(frozen=True)
class StopBroadcast:
    BUSINESS_TYPE: ClassVar[BusinessType] = BusinessType.STOP_BROADCAST

    ebm_id: str

    def encode(self) -> bytes:
        return _ebm(self.ebm_id)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(data, "stop broadcast")
        ebm_id = r.bcd(EBM_ID_BYTES, EBM_ID_DIGITS)
        r.end()
        return cls(ebm_id)


@dataclass(frozen=True)
class Reply:
    """The response body to any request: result u8, desc len u16, desc."""

    result: int
    desc: str = ""

    @property
    def ok(self) -> bool:
        return self.result == ResultCode.OK

    def encode(self) -> bytes:
        return _u8(self.result, "result") + _long_text(self.desc, "reply description")

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(data, "reply")
        result = r.u8()
        desc = r.text(r.u16())
        r.end()
        return cls(result, desc)


@dataclass(frozen=True)
class Heartbeat:
    BUSINESS_TYPE: ClassVar[BusinessType] = BusinessType.HEARTBEAT

    work_state: int
    first_registration: bool
    physical_address: bytes

    def encode(self) -> bytes:
        if len(self.physical_address) > 0xFF:
            raise ValueError("physical address longer than 255 bytes")
        return (
            _u8(self.work_state, "work state")
            + bytes((1 if self.first_registration else 2, len(self.physical_address)))
            + self.physical_address
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(data, "heartbeat")
        state, first = r.u8(), r.u8()
        if first not in (1, 2):
            raise PayloadError(f"heartbeat: first-registration flag must be 1 or 2, got {first}")
        addr = r.take(r.u8())
        r.end()
        return cls(state, first == 1, addr)


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
        r = _Reader(data, "query")
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
        parts = [_u8(self.result, "result"), _long_text(self.desc, "query reply description")]
        parts.append(_u8(len(self.items), "query item count"))
        for tag, value in self.items:
            if len(value) > 0xFF:
                raise ValueError(f"query tag {tag:#04x} value longer than 255 bytes")
            parts.append(bytes((tag, len(value))) + value)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(data, "query reply")
        result = r.u8()
        desc = r.text(r.u16())
        items = []
        for _ in range(r.u8()):
            tag, n = r.u8(), r.u8()
            items.append((tag, r.take(n)))
        r.end()
        return cls(result, desc, tuple(items))


@dataclass(frozen=True)
class FaultReport:
    BUSINESS_TYPE: ClassVar[BusinessType] = BusinessType.FAULT_REPORT

    flag: int  # FaultFlag
    fault_type: int
    desc: str
    time: int

    def encode(self) -> bytes:
        return (
            _u8(self.flag, "fault flag")
            + _u8(self.fault_type, "fault type")
            + _short_text(self.desc, "fault description")
            + struct.pack(">I", self.time)
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(data, "fault report")
        flag, ftype = r.u8(), r.u8()
        desc = r.text(r.u8())
        time = r.u32()
        r.end()
        return cls(flag, ftype, desc, time)


@dataclass(frozen=True)
class TaskSwitch:
    BUSINESS_TYPE: ClassVar[BusinessType] = BusinessType.TASK_SWITCH

    flag: int  # TaskFlag
    task_type: int  # TaskType
    ebm_id: str
    time: int

    def encode(self) -> bytes:
        return (
            _u8(self.flag, "task flag")
            + _u8(self.task_type, "task type")
            + _ebm(self.ebm_id)
            + struct.pack(">I", self.time)
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(data, "task switch")
        flag, ttype = r.u8(), r.u8()
        ebm_id = r.bcd(EBM_ID_BYTES, EBM_ID_DIGITS)
        time = r.u32()
        r.end()
        return cls(flag, ttype, ebm_id, time)


@dataclass(frozen=True)
class BroadcastResult:
    BUSINESS_TYPE: ClassVar[BusinessType] = BusinessType.BROADCAST_RESULT

    ebm_id: str
    result: int  # 0 fail, 1 success
    desc: str
    start: int
    end: int
    play_count: int
    report_time: int

    def encode(self) -> bytes:
        return (
            _ebm(self.ebm_id)
            + _u8(self.result, "broadcast result")
            + _short_text(self.desc, "broadcast result description")
            + struct.pack(">II", self.start, self.end)
            + _u8(self.play_count, "play count")
            + struct.pack(">I", self.report_time)
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(data, "broadcast result")
        ebm_id = r.bcd(EBM_ID_BYTES, EBM_ID_DIGITS)
        result = r.u8()
        desc = r.text(r.u8())
        start, end, count, report = r.u32(), r.u32(), r.u8(), r.u32()
        r.end()
        return cls(ebm_id, result, desc, start, end, count, report)


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
        r = _Reader(data, "return address")
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
            items.append((SetTag.VOLUME, _u8(volume, "volume")))
        if return_address is not None:
            items.append((SetTag.RETURN_ADDRESS, return_address.encode()))
        if resource_code is not None:
            code = encode_bcd(resource_code, RESOURCE_CODE_BYTES)
            if physical_address is not None:
                code = _u8(len(physical_address), "physical address length") + physical_address + code
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
        r = _Reader(v, "set resource code")
        addr = r.take(r.u8())
        code = r.bcd(RESOURCE_CODE_BYTES, RESOURCE_CODE_DIGITS)
        r.end()
        return code, addr

    def encode(self) -> bytes:
        parts = [_u8(len(self.items), "set item count")]
        for tag, value in self.items:
            if len(value) > 0xFF:
                raise ValueError(f"set tag {tag:#04x} value longer than 255 bytes")
            parts.append(bytes((tag, len(value))) + value)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(data, "set params")
        items = []
        for _ in range(r.u8()):
            tag, n = r.u8(), r.u8()
            items.append((tag, r.take(n)))
        r.end()
        return cls(tuple(items))


@dataclass(frozen=True)
class BroadcastRecord:
    """One entry of a 0x16 report: what one channel did with one broadcast."""

    channel: int
    state: int  # RecordState
    ebm_id: str
    task_type: int
    broadcast_type: int
    level: int
    event_type: str
    start: int
    end: int
    volume: int
    coverage: tuple[str, ...] = ()

    def encode(self) -> bytes:
        event = self.event_type.encode("ascii")
        if len(event) != 5:
            raise ValueError(f"event type must be 5 ASCII characters, got {self.event_type!r}")
        return b"".join(
            (
                struct.pack(">H", self.channel),
                _u8(self.state, "record state"),
                _ebm(self.ebm_id),
                _u8(self.task_type, "task type"),
                _u8(self.broadcast_type, "broadcast type"),
                _u8(self.level, "level"),
                event,
                struct.pack(">II", self.start, self.end),
                _u8(self.volume, "volume"),
                _u8(len(self.coverage), "coverage count"),
                *(encode_bcd(c, RESOURCE_CODE_BYTES) for c in self.coverage),
            )
        )

    @classmethod
    def read(cls, r: _Reader) -> Self:
        channel, state = r.u16(), r.u8()
        ebm_id = r.bcd(EBM_ID_BYTES, EBM_ID_DIGITS)
        task, btype, level = r.u8(), r.u8(), r.u8()
        try:
            event = r.take(5).decode("ascii")
        except UnicodeDecodeError as exc:
            raise PayloadError("broadcast record: event type is not ASCII") from exc
        start, end, volume = r.u32(), r.u32(), r.u8()
        coverage = tuple(r.bcd(RESOURCE_CODE_BYTES, RESOURCE_CODE_DIGITS) for _ in range(r.u8()))
        return cls(channel, state, ebm_id, task, btype, level, event, start, end, volume, coverage)


@dataclass(frozen=True)
class BroadcastRecords:
    BUSINESS_TYPE: ClassVar[BusinessType] = BusinessType.BROADCAST_RECORDS

    front_end: str  # 23-digit code of the reporting front-end (a terminal puts its own code)
    records: tuple[BroadcastRecord, ...]

    def encode(self) -> bytes:
        if len(self.records) > 0xFF:
            raise ValueError("at most 255 broadcast records per report")
        return (
            encode_bcd(self.front_end, RESOURCE_CODE_BYTES)
            + _u8(len(self.records), "record count")
            + b"".join(rec.encode() for rec in self.records)
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _Reader(data, "broadcast records")
        code = r.bcd(RESOURCE_CODE_BYTES, RESOURCE_CODE_DIGITS)
        records = tuple(BroadcastRecord.read(r) for _ in range(r.u8()))
        r.end()
        return cls(code, records)


RequestPayload = (
    StartBroadcast
    | StopBroadcast
    | Heartbeat
    | Query
    | SetParams
    | FaultReport
    | TaskSwitch
    | BroadcastResult
    | BroadcastRecords
)
Payload = RequestPayload | Reply | QueryReply

REQUEST_TYPES: dict[int, type[RequestPayload]] = {
    BusinessType.START_BROADCAST: StartBroadcast,
    BusinessType.STOP_BROADCAST: StopBroadcast,
    BusinessType.HEARTBEAT: Heartbeat,
    BusinessType.QUERY: Query,
    BusinessType.SET_PARAMS: SetParams,
    BusinessType.BROADCAST_RECORDS: BroadcastRecords,
    BusinessType.FAULT_REPORT: FaultReport,
    BusinessType.TASK_SWITCH: TaskSwitch,
    BusinessType.BROADCAST_RESULT: BroadcastResult,
}


class UnsupportedBusiness(PayloadError):
    """A business type this product does not implement (answer with result 55)."""


def decode_business(business_type: int, is_response: bool, data: bytes) -> Payload:
    """Decode business data: a response is a Reply (QueryReply for 0x11), a request by its type."""
    if is_response:
        if business_type == BusinessType.QUERY:
            return QueryReply.decode(data)
        return Reply.decode(data)
    kind = REQUEST_TYPES.get(business_type)
    if kind is None:
        raise UnsupportedBusiness(f"business type {business_type:#04x} is not supported")
    return kind.decode(data)
