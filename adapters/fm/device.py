"""The FM transmitter as the adapter sees it: its RDS encoder (spoken to in UECP) plus a programme-input
switch, reached over one serial line, one acknowledged command at a time.

Owns: the vendor command for the programme-input switch, sequence counters, matching answers to
requests, retransmission of the same frame on timeout or on a line-noise NACK, and the
classification of each command's outcome (``CommandFailure``). Never decides delivery outcomes or
emits delivery events (the adapter does), never sleeps, never parses bytes itself (adapters.fm.uecp does).

Programme-input switch — our definition [I]: UECP has no standard element for the transmitter's audio
input, so it is carried in the UECP manufacturer-specific command (MEC 0x2D)::

    0x2D | MEL=4 | 'E' 'B' (manufacturer tag 0x45 0x42) | 0x01 (programme input select) | input

with input 0x00 = normal programme, 0x01 = emergency audio (the EB adapter's PCM output). The
encoder/transmitter acknowledges it like any other element (MEC 0x18). A site whose transmitter uses
another vendor command must get its own ``programme_input_element``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from adapters.fm.uecp import Frame, FrameDecoder, Rejected, StuffingVariant
from adapters.fm.uecp_elements import Ack, AckCode, Element, ManufacturerSpecific, UecpError
from adapters.serial_line import LineFailure, SerialLine, SerialLineError

_LOG = logging.getLogger(__name__)

MANUFACTURER_TAG = b"EB"
CMD_PROGRAMME_INPUT = 0x01


class ProgrammeInput(IntEnum):
    NORMAL = 0
    EMERGENCY = 1


def programme_input_element(selected: ProgrammeInput) -> ManufacturerSpecific:
    return ManufacturerSpecific(MANUFACTURER_TAG + bytes((CMD_PROGRAMME_INPUT, int(selected))))


def parse_programme_input(el: ManufacturerSpecific) -> ProgrammeInput:
    """Decode our vendor command; raises UecpError with the NACK code an encoder would answer."""
    data = el.data
    if data[:2] != MANUFACTURER_TAG or len(data) < 3 or data[2] != CMD_PROGRAMME_INPUT:
        raise UecpError(AckCode.MSG_UNKNOWN, f"unknown manufacturer-specific command {data.hex()}")
    if len(data) != 4:
        raise UecpError(AckCode.MSG_ELEMENT_LENGTH_ERROR, "programme input command must be 4 bytes")
    try:
        return ProgrammeInput(data[3])
    except ValueError as exc:
        raise UecpError(AckCode.PARAM_OUT_OF_RANGE, f"programme input {data[3]}") from exc


CommandFailure = LineFailure  # the FM name for the shared serial-exchange failure kinds


@dataclass(frozen=True)
class CommandResult:
    what: str
    failure: CommandFailure | None = None
    ack: AckCode | None = None
    attempts: int = 1
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.failure is None


class FmTransmitter:
    """One RDS encoder + transmitter at a UECP address on a (possibly shared) serial line."""

    def __init__(
        self,
        line: SerialLine,
        *,
        site: int,
        encoder: int,
        variant: StuffingVariant,
        ack_timeout_s: float,
        retransmits: int,
        resource_code: str,
    ) -> None:
        self.line = line
        self.site = site
        self.encoder = encoder
        self.variant = variant
        self.ack_timeout_s = ack_timeout_s
        self.retransmits = retransmits
        self.resource_code = resource_code
        self._decoder = FrameDecoder(variant)
        self._sqc = 0
        self._waiting: tuple[int, asyncio.Future[Ack]] | None = None
        self.counters: dict[str, int] = {
            "frames_sent": 0,
            "acks": 0,
            "nacks": 0,
            "timeouts": 0,
            "retransmits": 0,
            "rejected_in": 0,
        }

    def attach(self) -> None:
        self.line.add_listener(self._on_bytes)

    def detach(self) -> None:
        self.line.remove_listener(self._on_bytes)

    def _next_sqc(self) -> int:
        self._sqc = self._sqc % 255 + 1  # 1..255; 0 means "not used" in UECP
        return self._sqc

    def _on_bytes(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, Rejected):
                self.counters["rejected_in"] += 1
                continue
            self._on_frame(item)

    def _on_frame(self, frame: Frame) -> None:
        if frame.encoder != self.encoder or frame.site not in (self.site, 0):
            return
        waiting = self._waiting
        try:
            elements = frame.elements()
        except UecpError:
            self.counters["rejected_in"] += 1
            return
        for el in elements:
            if not isinstance(el, Ack) or waiting is None:
                continue
            sqc, fut = waiting
            concerned = frame.sqc if el.code is AckCode.OK else (el.sqc or frame.sqc)
            if concerned == sqc and not fut.done():
                fut.set_result(el)

    async def send(self, what: str, *elements: Element) -> CommandResult:
        """Send one frame holding ``elements`` and wait for its acknowledgement, retransmitting
        the very same frame (same SQC) after a timeout or a line-noise NACK."""
        frame = Frame.of(self.site, self.encoder, self._next_sqc(), *elements)
        wire = frame.encode(self.variant)
        loop = asyncio.get_running_loop()
        last: CommandResult | None = None
        async with self.line.lock:
            try:
                await self.line.ensure_open()
            except SerialLineError as exc:
                return CommandResult(what, CommandFailure.LINK, detail=exc.detail)
            for attempt in range(1, self.retransmits + 2):
                fut: asyncio.Future[Ack] = loop.create_future()
                self._waiting = (frame.sqc, fut)
                try:
                    if attempt > 1:
                        self.counters["retransmits"] += 1
                    self.line.write(wire)
                    self.counters["frames_sent"] += 1
                    ack = await asyncio.wait_for(fut, self.ack_timeout_s)
                except SerialLineError as exc:
                    return CommandResult(what, CommandFailure.LINK, attempts=attempt, detail=exc.detail)
                except TimeoutError:
                    self.counters["timeouts"] += 1
                    last = CommandResult(what, CommandFailure.TIMEOUT, attempts=attempt, detail="no ack")
                    continue
                finally:
                    self._waiting = None
                if ack.code is AckCode.OK:
                    self.counters["acks"] += 1
                    return CommandResult(what, None, AckCode.OK, attempt)
                self.counters["nacks"] += 1
                if not ack.code.transient:
                    return CommandResult(what, CommandFailure.NACK, ack.code, attempt, ack.code.name)
                last = CommandResult(what, CommandFailure.LINE_NOISE, ack.code, attempt, ack.code.name)
        assert last is not None
        _LOG.debug("encoder %s/%s: %s failed: %s", self.site, self.encoder, what, last.detail)
        return last

    def status(self) -> dict[str, Any]:
        return {"site": self.site, "encoder": self.encoder, **self.counters}
