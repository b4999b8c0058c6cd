"""Identifier rules of the platform interface (平台间接口): EBDID (数据包编号), EBMID and legacy ids.

Owns: building and classifying 41-digit EBDIDs, the daily EBDID serial allocator, classifying 35-digit
EBM ids and 23-digit resource codes, and *recognising* the 2016-draft legacy forms (18-digit resource
ids, 30-digit EBM ids, 36-digit EBDIDs) so they can be accepted on parse. See eb-protocols §1, §2, §3.

Must never emit a legacy id, do I/O itself (persistence goes through the injected hook), or read the
system clock (time comes from an injected clock).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from broadcast.clock import BEIJING, Clock
from broadcast.codes import ResourceCode

_DIGITS = re.compile(r"^\d+$")

EBDID_LENGTH = 41
LEGACY_EBDID_LENGTH = 36  # 2 + 18-digit legacy EBRID + 16
EBMID_LENGTH = 35
LEGACY_EBMID_LENGTH = 30  # 18-digit legacy EBRID + yyyyMMdd + 4
_COUNTER_MAX = 99_999_999
HEARTBEAT_SERIAL = "0" * 16


class EbdKind(StrEnum):
    """First two digits of an EBDID."""

    HEARTBEAT = "01"
    OTHER = "10"


@dataclass(frozen=True)
class LegacyResourceId:
    """A 2016-draft 18-digit resource id: type(2) subtype(2) area(12) ext(2). Accepted, never emitted."""

    type_code: str
    subtype: str
    area_code: str
    extension: str

    def __str__(self) -> str:
        return f"{self.type_code}{self.subtype}{self.area_code}{self.extension}"


@dataclass(frozen=True)
class ResourceId:
    """A resource id as received: either a current 23-digit code or a legacy 18-digit one."""

    text: str
    code: ResourceCode | None
    legacy: LegacyResourceId | None

    @property
    def is_legacy(self) -> bool:
        return self.legacy is not None

    @property
    def area_code(self) -> str:
        if self.code is not None:
            return self.code.area_code
        assert self.legacy is not None
        return self.legacy.area_code


def parse_resource_id(text: str) -> ResourceId:
    """Classify a 23-digit EBRID or a legacy 18-digit id; ValueError for anything else."""
    text = text.strip()
    if not _DIGITS.match(text):
        raise ValueError(f"resource id must be digits, got {text!r}")
    if len(text) == 23:
        return ResourceId(text, ResourceCode.parse(text), None)
    if len(text) == 18:
        return ResourceId(text, None, LegacyResourceId(text[0:2], text[2:4], text[4:16], text[16:18]))
    raise ValueError(f"resource id must be 23 digits (or legacy 18), got {len(text)} digits: {text!r}")


@dataclass(frozen=True)
class EbdIdInfo:
    """The parts of an EBDID: kind, sender EBRID and the 16-digit serial."""

    text: str
    kind: str
    sender: str
    serial: str
    legacy: bool

    @property
    def is_heartbeat(self) -> bool:
        return self.kind == EbdKind.HEARTBEAT


def parse_ebd_id(text: str) -> EbdIdInfo:
    """Classify a 41-digit EBDID (or a 36-digit legacy one); ValueError for anything else."""
    text = text.strip()
    if not _DIGITS.match(text) or len(text) not in (EBDID_LENGTH, LEGACY_EBDID_LENGTH):
        raise ValueError(f"EBDID must be 41 digits (or legacy 36), got {text!r}")
    return EbdIdInfo(text, text[:2], text[2:-16], text[-16:], legacy=len(text) == LEGACY_EBDID_LENGTH)


def make_ebd_id(kind: EbdKind, sender_ebrid: str, serial: str) -> str:
    """Compose an EBDID; the sender must be a current 23-digit EBRID and the serial 16 digits."""
    ResourceCode.parse(sender_ebrid)
    if len(serial) != 16 or not _DIGITS.match(serial):
        raise ValueError(f"EBDID serial must be 16 digits, got {serial!r}")
    return f"{kind.value}{sender_ebrid}{serial}"


def heartbeat_ebd_id(sender_ebrid: str) -> str:
    """The constant EBDID of a heartbeat (ConnectionCheck): kind 01, serial all zeros."""
    return make_ebd_id(EbdKind.HEARTBEAT, sender_ebrid, HEARTBEAT_SERIAL)


class EbdIdAllocator:
    """Hands out EBDIDs `10 + sender + yyyyMMdd + 8-digit daily counter` (Beijing date).

    Restart-safe: give it the last serial it issued (`last_serial`, e.g. loaded from the database) and a
    `persist` hook that stores each new serial before the id is used. A clock stepping backwards never
    reuses a serial: the counter continues on the last issued day.
    """

    def __init__(
        self,
        sender_ebrid: str,
        clock: Clock,
        *,
        last_serial: str | None = None,
        persist: Callable[[str], None] | None = None,
    ) -> None:
        ResourceCode.parse(sender_ebrid)
        self._sender = sender_ebrid
        self._clock = clock
        self._persist = persist
        self._lock = threading.Lock()
        self._day = ""
        self._counter = 0
        if last_serial:
            if len(last_serial) != 16 or not _DIGITS.match(last_serial):
                raise ValueError(f"persisted EBDID serial must be 16 digits, got {last_serial!r}")
            self._day, self._counter = last_serial[:8], int(last_serial[8:])

    @property
    def sender(self) -> str:
        return self._sender

    def heartbeat_id(self) -> str:
        return heartbeat_ebd_id(self._sender)

    def next_id(self) -> str:
        with self._lock:
            today = self._clock.now().astimezone(BEIJING).strftime("%Y%m%d")
            if today > self._day:
                self._day, self._counter = today, 0
            if self._counter >= _COUNTER_MAX:
                raise OverflowError(f"EBDID daily counter exhausted for {self._sender} on {self._day}")
            self._counter += 1
            serial = f"{self._day}{self._counter:08d}"
            if self._persist is not None:
                self._persist(serial)
            return f"{EbdKind.OTHER.value}{self._sender}{serial}"


@dataclass(frozen=True)
class EbmIdInfo:
    """The parts of an EBM id: issuing platform, day and daily sequence; `legacy` for 30-digit ids."""

    text: str
    issuer: str
    day: date
    sequence: int
    legacy: bool


def parse_ebm_id(text: str) -> EbmIdInfo:
    """Classify a 35-digit EBMID (or a legacy 30-digit one); ValueError for anything else."""
    text = text.strip()
    if not _DIGITS.match(text) or len(text) not in (EBMID_LENGTH, LEGACY_EBMID_LENGTH):
        raise ValueError(f"EBMID must be 35 digits (or legacy 30), got {text!r}")
    issuer, day_text, seq = text[:-12], text[-12:-4], text[-4:]
    try:
        day = datetime.strptime(day_text, "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"EBMID {text!r} has no valid yyyyMMdd date") from None
    return EbmIdInfo(text, issuer, day, int(seq), legacy=len(text) == LEGACY_EBMID_LENGTH)
