"""Shared field layer of the IP loudspeaker protocol (eb-protocols §4.1): the protocol's enums (business
types, result codes, states, query/set tags), ``PayloadError``, the bounds-checked byte ``Reader`` and the
small field encoders every payload uses.

Owns: the numeric tables and the primitive field encode/decode rules.
Never: defines a business payload, does I/O, reads the clock, or imports the core.
"""

from __future__ import annotations

import struct
from enum import IntEnum

from adapters.wire.bcd import EBM_ID_BYTES, EBM_ID_DIGITS, decode_bcd, encode_bcd


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


class Reader:
    """Reads business data front to back; every short read is a truncated PayloadError."""

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


def pack_u8(value: int, name: str) -> bytes:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must fit in one byte, got {value}")
    return bytes((value,))


def short_text(text: str, name: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFF:
        raise ValueError(f"{name} is {len(raw)} UTF-8 bytes; at most 255 fit")
    return bytes((len(raw),)) + raw


def long_text(text: str, name: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError(f"{name} is too long ({len(raw)} bytes)")
    return struct.pack(">H", len(raw)) + raw


def pack_ebm(ebm_id: str) -> bytes:
    if len(ebm_id) != EBM_ID_DIGITS:
        raise ValueError(f"EBM id must be {EBM_ID_DIGITS} digits, got {ebm_id!r}")
    return encode_bcd(ebm_id, EBM_ID_BYTES)
