"""The message model: emergency broadcast messages (EBM, 应急广播消息), targets, deliveries, receipts.

Frozen dataclasses and enums only. Everything else in the product speaks these types; this module
must never import from the rest of the product, do I/O, or read the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum

EVENT_TYPE_PATTERN = re.compile(r"^\d{2}[0-9A-Z]\d{2}$")


class MsgType(IntEnum):
    """EBM MsgType (eb-protocols §3)."""

    ACTUAL = 1  # 实际播发
    CANCEL = 2  # 取消播发
    PLATFORM_DRILL = 3  # 平台演练
    FRONT_END_DRILL = 4  # 前端演练
    TERMINAL_DRILL = 5  # 终端演练

    @property
    def is_drill(self) -> bool:
        return self in (MsgType.PLATFORM_DRILL, MsgType.FRONT_END_DRILL, MsgType.TERMINAL_DRILL)


class Severity(IntEnum):
    """EBM Severity: 1 red (特别重大, Ⅰ级) … 4 blue (一般, Ⅳ级); 0 unknown; 15 test only."""

    UNKNOWN = 0
    RED = 1
    ORANGE = 2
    YELLOW = 3
    BLUE = 4
    TEST = 15

    @property
    def colour_zh(self) -> str:
        return _COLOUR_ZH[self]

    @property
    def grade_zh(self) -> str:
        return _GRADE_ZH[self]


_COLOUR_ZH = {
    Severity.UNKNOWN: "未知",
    Severity.RED: "红色",
    Severity.ORANGE: "橙色",
    Severity.YELLOW: "黄色",
    Severity.BLUE: "蓝色",
    Severity.TEST: "测试",
}
_GRADE_ZH = {
    Severity.UNKNOWN: "未分级",
    Severity.RED: "Ⅰ级/特别重大",
    Severity.ORANGE: "Ⅱ级/重大",
    Severity.YELLOW: "Ⅲ级/较大",
    Severity.BLUE: "Ⅳ级/一般",
    Severity.TEST: "测试",
}


class SourceKind(StrEnum):
    CAP = "cap"  # meteorological / early-warning CAP feed
    OPERATOR = "operator"  # bureau operator (console or API)
    UPPER = "upper"  # upper-level platform EBD/EBM
    SCHEDULE = "schedule"  # drills and daily programmes


class Priority(IntEnum):
    """上级优先、应急优先: higher value wins a terminal."""

    DAILY = 10
    DRILL = 20
    EMERGENCY = 30
    UPPER_EMERGENCY = 40


@dataclass(frozen=True)
class Content:
    """Text of a message in one language (GB/T 4880.2 three-letter code, e.g. "zho")."""

    language: str
    title: str
    text: str


@dataclass(frozen=True)
class SourceRef:
    """Where a message came from, for dedupe and audit: e.g. CAP (sender, identifier, sent)."""

    kind: SourceKind
    sender: str
    identifier: str
    sent: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}|{self.sender}|{self.identifier}|{self.sent}"


@dataclass(frozen=True)
class AudioRef:
    """Rendered or supplied audio: content digest (sha256 hex), format, duration and who made it."""

    digest: str
    format: str
    duration_s: float
    engine: str = ""
    voice: str = ""


@dataclass(frozen=True)
class MessageDraft:
    """A validated, normalised message before it is given an EBM id."""

    msg_type: MsgType
    event_type: str
    severity: Severity
    sender_name: str
    sender_code: str
    sent_at: datetime
    start_at: datetime
    end_at: datetime
    area_codes: tuple[str, ...]
    contents: tuple[Content, ...]
    source: SourceRef
    related_ebm_id: str | None = None
    warnings: tuple[str, ...] = ()
    # Terminals targeted by geometry (CAP polygon/circle) in addition to the area codes.
    terminal_codes: tuple[str, ...] = ()
    # Operator-supplied recording (sha256 of the stored MP3 in the audio cache) broadcast instead of TTS.
    audio_digest: str | None = None
    # Terminal volume 0–100 for this message; 0 = silent terminal check (终端巡检); None = the default.
    volume: int | None = None

    def __post_init__(self) -> None:
        if not EVENT_TYPE_PATTERN.match(self.event_type):
            raise ValueError(f"event type must be 5 characters like 11B03, got {self.event_type!r}")
        if not self.contents:
            raise ValueError("a message needs content in at least one language")
        for ts in (self.sent_at, self.start_at, self.end_at):
            if ts.tzinfo is None:
                raise ValueError("message times must be timezone-aware")
        if self.end_at <= self.start_at:
            raise ValueError("message end time must be after its start time")
        if self.volume is not None and not 0 <= self.volume <= 100:
            raise ValueError(f"volume must be between 0 and 100, got {self.volume}")

    @property
    def primary(self) -> Content:
        """The content to broadcast: Mandarin (zho/chi/zh) first, else the first given."""
        for c in self.contents:
            if c.language.lower() in ("zho", "chi", "zh", "zh-cn", "cmn"):
                return c
        return self.contents[0]

    @property
    def priority(self) -> Priority:
        if self.msg_type.is_drill:
            return Priority.DRILL
        if self.source.kind is SourceKind.UPPER:
            return Priority.UPPER_EMERGENCY
        if self.source.kind is SourceKind.SCHEDULE:
            return Priority.DAILY
        return Priority.EMERGENCY


@dataclass(frozen=True)
class Message:
    """An emergency broadcast message with its 35-digit EBM id."""

    ebm_id: str
    draft: MessageDraft


class BroadcastState(StrEnum):
    """Lifecycle of one broadcast (one EBM going out). See broadcast.lifecycle."""

    RECEIVED = "received"
    PENDING_APPROVAL = "pending_approval"
    REJECTED = "rejected"
    RENDERING = "rendering"
    BROADCASTING = "broadcasting"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"


class DeliveryStatus(StrEnum):
    """Status of one (broadcast, terminal) delivery; history is append-only."""

    QUEUED = "queued"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    PLAYING = "playing"
    PLAYED = "played"
    FAILED = "failed"
    OFFLINE = "offline"
    CANCELLED = "cancelled"

    @property
    def settled(self) -> bool:
        """No further news is expected (offline may still be retried on reconnect)."""
        return self in (
            DeliveryStatus.PLAYED,
            DeliveryStatus.FAILED,
            DeliveryStatus.OFFLINE,
            DeliveryStatus.CANCELLED,
        )


class FailureReason(StrEnum):
    """Why a delivery did not play."""

    NOT_CONNECTED = "not_connected"  # terminal had no live link
    NO_ACK = "no_ack"  # start sent, no reply before the ack deadline
    REJECTED = "rejected"  # terminal answered with a non-zero result
    PLAYBACK_FAILED = "playback_failed"  # terminal reported result 0 (e.g. audio fetch failed)
    BAD_REPORT = "bad_report"  # report contradicted what was sent (wrong EBM, impossible times)
    LINK_LOST = "link_lost"  # connection dropped mid-broadcast
    EXPIRED = "expired"  # message end time passed before it played
    CANCELLED = "cancelled"  # operator or upper platform cancelled
    PREEMPTED = "preempted"  # a higher priority broadcast took the terminal


class TerminalKind(StrEnum):
    COMMUNITY = "community"  # 城市社区终端
    STREET = "street"  # 街道终端
    VILLAGE = "village"  # 自然村/村民小组终端


class LinkState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    BROADCASTING = "broadcasting"
    FAULT = "fault"


@dataclass(frozen=True)
class TerminalRef:
    """A terminal (终端/大喇叭/音柱) as the core and adapters see it."""

    resource_code: str
    area_code: str
    name: str
    kind: TerminalKind
    physical_address: str
    adapter: str = "ip_speaker"
    latitude: float = 0.0
    longitude: float = 0.0
    front_end: str = ""


@dataclass(frozen=True)
class DeliveryOrder:
    """What an adapter needs to put one message on its terminals."""

    ebm_id: str
    msg_type: MsgType
    severity: Severity
    event_type: str
    priority: Priority
    start_at: datetime
    end_at: datetime
    title: str
    audio_url: str
    audio: AudioRef | None
    volume: int = 100

