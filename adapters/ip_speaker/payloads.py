"""Business payloads of the IP loudspeaker protocol (eb-protocols §4.1): frozen dataclasses with
``encode()`` / ``decode()``, and ``decode_business``. The enums and field primitives live in
``payload_fields``, query/set payloads in ``params``; callers import each name from its own module.

Pure: bytes in, values out. Never does I/O, never reads the clock, never imports the core.

Choices where the field notes leave room (documented here once):
- Times are u32 Unix seconds, UTC.
- Text fields are UTF-8. Reply/QueryReply descriptions carry a u16 length; the FaultReport and
  BroadcastResult descriptions carry a u8 length (at most 255 bytes, matching the "desc 255 B" note).
- Heartbeat physical address: length u8 + bytes; the product uses the ASCII bytes of
  ``TerminalRef.physical_address``.
- Broadcast records (0x16): front-end code 12 B BCD; count u8; each record: channel u16, state u8
  (BrdStateCode), EBM id 18 B BCD, task type u8, broadcast type u8, level u8, event type 5 ASCII, start
  u32, end u32, volume u8, coverage count u8 + 12 B BCD resource codes.
- Heartbeat work state 4 (xyd "offline") is only ever sent by a front-end about a terminal behind it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from adapters.ip_speaker.params import Query, QueryReply, SetParams
from adapters.ip_speaker.payload_fields import (
    AUX_URL,
    BusinessType,
    PayloadError,
    Reader,
    ResultCode,
    long_text,
    pack_ebm,
    pack_u8,
    short_text,
)
from adapters.wire.bcd import (
    EBM_ID_BYTES,
    EBM_ID_DIGITS,
    RESOURCE_CODE_BYTES,
    RESOURCE_CODE_DIGITS,
    encode_bcd,
)


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
            pack_ebm(self.ebm_id),
            pack_u8(self.broadcast_type, "broadcast type"),
            pack_u8(self.level, "level"),
            event,
            pack_u8(self.volume, "volume"),
            struct.pack(">IIB", self.start, self.end, len(self.aux)),
        ]
        for item in self.aux:
            parts.append(struct.pack(">BH", item.aux_type, len(item.data)) + item.data)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, "start broadcast")
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
        return pack_ebm(self.ebm_id)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, "stop broadcast")
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
        return pack_u8(self.result, "result") + long_text(self.desc, "reply description")

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, "reply")
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
            pack_u8(self.work_state, "work state")
            + bytes((1 if self.first_registration else 2, len(self.physical_address)))
            + self.physical_address
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, "heartbeat")
        state, first = r.u8(), r.u8()
        if first not in (1, 2):
            raise PayloadError(f"heartbeat: first-registration flag must be 1 or 2, got {first}")
        addr = r.take(r.u8())
        r.end()
        return cls(state, first == 1, addr)


@dataclass(frozen=True)
class FaultReport:
    BUSINESS_TYPE: ClassVar[BusinessType] = BusinessType.FAULT_REPORT

    flag: int  # FaultFlag
    fault_type: int
    desc: str
    time: int

    def encode(self) -> bytes:
        return (
            pack_u8(self.flag, "fault flag")
            + pack_u8(self.fault_type, "fault type")
            + short_text(self.desc, "fault description")
            + struct.pack(">I", self.time)
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, "fault report")
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
            pack_u8(self.flag, "task flag")
            + pack_u8(self.task_type, "task type")
            + pack_ebm(self.ebm_id)
            + struct.pack(">I", self.time)
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, "task switch")
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
            pack_ebm(self.ebm_id)
            + pack_u8(self.result, "broadcast result")
            + short_text(self.desc, "broadcast result description")
            + struct.pack(">II", self.start, self.end)
            + pack_u8(self.play_count, "play count")
            + struct.pack(">I", self.report_time)
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, "broadcast result")
        ebm_id = r.bcd(EBM_ID_BYTES, EBM_ID_DIGITS)
        result = r.u8()
        desc = r.text(r.u8())
        start, end, count, report = r.u32(), r.u32(), r.u8(), r.u32()
        r.end()
        return cls(ebm_id, result, desc, start, end, count, report)


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
                pack_u8(self.state, "record state"),
                pack_ebm(self.ebm_id),
                pack_u8(self.task_type, "task type"),
                pack_u8(self.broadcast_type, "broadcast type"),
                pack_u8(self.level, "level"),
                event,
                struct.pack(">II", self.start, self.end),
                pack_u8(self.volume, "volume"),
                pack_u8(len(self.coverage), "coverage count"),
                *(encode_bcd(c, RESOURCE_CODE_BYTES) for c in self.coverage),
            )
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
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
            + pack_u8(len(self.records), "record count")
            + b"".join(rec.encode() for rec in self.records)
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, "broadcast records")
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
