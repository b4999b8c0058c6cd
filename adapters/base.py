"""The adapter contract: what the core asks of every transmission adapter, and how adapters answer.

An adapter only *classifies* outcomes (STYLE: Alertmanager's notifier); the core's dispatcher owns
retries, deadlines and the send log. Asynchronous news from terminals (playing, played, heartbeats,
faults) flows back through the ``AdapterSink`` the core hands to the adapter at start.

May import ``broadcast.model`` only; must never import the core's dispatcher, store or web.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from broadcast.model import DeliveryEvent, DeliveryOrder, LinkState, TerminalRef


class Capability(StrEnum):
    AUDIO_URL = "audio_url"  # terminal fetches audio by URL (MP3)
    AUDIO_PCM = "audio_pcm"  # adapter needs 16-bit PCM WAV (FM / cable inserters)
    TEXT = "text"  # can show/carry text (RDS RadioText, cable content table)
    STOP = "stop"
    QUERY = "query"
    RECEIPTS = "receipts"  # per-terminal played/failed reports come back


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # the terminal/system acknowledged the instruction
    RETRY = "retry"  # transient: try again later (timeout, busy, link not up yet)
    PERMANENT = "permanent"  # will not work by retrying (rejected, unsupported, invalid code)


class FailureKind(StrEnum):
    NOT_CONNECTED = "not_connected"
    TIMEOUT = "timeout"
    BUSY = "busy"
    REJECTED = "rejected"
    UNSUPPORTED = "unsupported"
    PROTOCOL = "protocol"
    IO = "io"


@dataclass(frozen=True)
class SendResult:
    """An adapter's classification of one instruction to one terminal."""

    outcome: Outcome
    failure: FailureKind | None = None
    detail: str = ""

    @classmethod
    def ok(cls, detail: str = "") -> SendResult:
        return cls(Outcome.ACCEPTED, None, detail)

    @classmethod
    def retry(cls, failure: FailureKind, detail: str = "") -> SendResult:
        return cls(Outcome.RETRY, failure, detail)

    @classmethod
    def permanent(cls, failure: FailureKind, detail: str = "") -> SendResult:
        return cls(Outcome.PERMANENT, failure, detail)


class AdapterSink(Protocol):
    """What adapters report back to the core. Calls must be cheap and never block."""

    def delivery_event(self, event: DeliveryEvent) -> None: ...

    def terminal_link(self, terminal_code: str, state: LinkState, at: datetime, detail: str = "") -> None: ...

    def terminal_heartbeat(self, terminal_code: str, at: datetime) -> None: ...


@runtime_checkable
class Adapter(Protocol):
    """A transmission adapter. Instances are built by the registry from config."""

    name: str
    capabilities: frozenset[Capability]

    async def start(self, sink: AdapterSink, terminals: Sequence[TerminalRef]) -> None:
        """Open listeners/lines; ``terminals`` are those this adapter serves."""

    async def close(self) -> None: ...

    def is_reachable(self, terminal_code: str) -> bool:
        """Whether an instruction could be sent to this terminal right now."""

    async def deliver(self, order: DeliveryOrder, terminal_code: str) -> SendResult:
        """Send the start instruction to one terminal and classify the outcome."""

    async def stop(self, ebm_id: str, terminal_code: str) -> SendResult:
        """Stop a broadcast on one terminal."""

    def adopt(self, order: DeliveryOrder, terminal_code: str) -> None:
        """After a controller restart: this terminal acknowledged ``order`` before the restart.
        Expect its reports (and end it on time) without sending it again."""

    def status(self) -> dict[str, Any]:
        """Health figures for the API (connections, frames, errors)."""
