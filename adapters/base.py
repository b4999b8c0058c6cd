"""The adapter contract: what the core asks of every transmission adapter, and how adapters answer.

Every argument and every answer is a plain value of ``broadcast.messages`` (the orders of its
``Start``/``Stop``/``Adopt`` as method calls, ``SendResult`` back, reports up through the sink), so a
broker can sit between the dispatcher and an adapter without either changing. An adapter only
*classifies* outcomes (STYLE: Alertmanager's notifier); the core's dispatcher owns retries, deadlines
and the send log. Asynchronous news from terminals (playing, played, heartbeats, faults) flows back
through the ``AdapterSink`` the core hands to the adapter at start.

An adapter family declares the keys of its ``[adapters.NAME]`` section next to its adapter, as a
``config_schema`` attribute of the factory the ``ebc.adapters`` entry point names (Mopidy's
per-extension schema): a mapping of key → ``ConfigKey``. The registry collects them and checks a
section before building the adapter; a factory without one is not checked.

May import the kernel (``broadcast.model``, ``broadcast.messages``, ``broadcast.clock``,
``broadcast.codes``) only; must never import the core's dispatcher, store or web.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from broadcast.messages import Report, SendResult
from broadcast.model import DeliveryOrder, TerminalRef


class Capability(StrEnum):
    AUDIO_URL = "audio_url"  # terminal fetches audio by URL (MP3)
    AUDIO_PCM = "audio_pcm"  # adapter needs 16-bit PCM WAV (FM / cable inserters)
    TEXT = "text"  # can show/carry text (RDS RadioText, cable content table)
    STOP = "stop"
    QUERY = "query"
    RECEIPTS = "receipts"  # per-terminal played/failed reports come back


@dataclass(frozen=True)
class ConfigKey:
    """One key of an adapter's config section: the types its value may have, whether it must be given."""

    types: tuple[type, ...]
    required: bool = False
    doc: str = ""


class AdapterSink(Protocol):
    """Where an adapter sends its reports (``broadcast.messages``: delivery, link, heartbeat).
    ``report`` must be cheap and never block."""

    def report(self, report: Report) -> None: ...


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
