"""A simulated FM transmitter with its RDS encoder, speaking UECP through adapters.fm.uecp (the same codec
as the adapter), hosted on a pty or a TCP socket by sim.serial_pty.

Owns: validating every frame (CRC, stuffing, MFL, element lengths and ranges), acknowledging with
MEC 0x18 (OK, or the NACK code of what was wrong), the on-air state of each encoder address on the
line (PI, PS, PTY, TA/TP, RadioText, programme input), a history of accepted frames and rejections,
and fault levers: ``go_offline``, ``come_online``, ``drop_next(n)``, ``nack_next(n, code)``,
``corrupt_next_frame``, ``delay_acks(seconds)``. Never imported by product code.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from adapters.fm.device import ProgrammeInput, parse_programme_input
from adapters.fm.uecp import STA, STP, Frame, FrameDecoder, Rejected, StuffingVariant
from adapters.fm.uecp_elements import (
    Ack,
    AckCode,
    ClockSet,
    Element,
    ManufacturerSpecific,
    PiSet,
    PsSet,
    PtySet,
    RadioTextSet,
    RtBuffer,
    TaTpSet,
    UecpError,
)
from sim.serial_pty import Send


@dataclass
class EncoderState:
    """What one encoder puts on air."""

    pi: int = 0
    ps: str = ""
    pty: int = 0
    ta: bool = False
    tp: bool = False
    radiotext: str = ""
    rt_ab: bool = False
    clock: datetime | None = None
    programme_input: ProgrammeInput = ProgrammeInput.NORMAL
    applied: list[Element] = field(default_factory=list)


class FmEncoderSim:
    """One serial line with one or more encoders (UECP addresses ``(site, encoder)``)."""

    def __init__(
        self,
        addresses: tuple[tuple[int, int], ...] = ((0, 1),),
        variant: StuffingVariant = StuffingVariant.STANDARD,
    ) -> None:
        self.variant = variant
        self.states: dict[tuple[int, int], EncoderState] = {a: EncoderState() for a in addresses}
        self._decoder = FrameDecoder(variant)
        self._send: Send | None = None
        self.history: list[Frame] = []
        self.rejected: list[Rejected] = []
        self.nacks_sent: list[AckCode] = []
        self.dropped = 0
        self.overlapping_frames = 0
        self._offline = False
        self._drop = 0
        self._nack = 0
        self._nack_code = AckCode.MSG_NOT_ACCEPTABLE
        self._corrupt = False
        self._ack_delay_s = 0.0
        self._acks_pending = 0

    # -- levers ---------------------------------------------------------------------------------

    def go_offline(self) -> None:
        self._offline = True

    def come_online(self) -> None:
        self._offline = False

    def drop_next(self, n: int = 1) -> None:
        self._drop += n

    def nack_next(self, n: int = 1, code: AckCode = AckCode.MSG_NOT_ACCEPTABLE) -> None:
        self._nack, self._nack_code = self._nack + n, code

    def corrupt_next_frame(self) -> None:
        """Flip one bit of the next frame on its way in, as line noise would."""
        self._corrupt = True

    def delay_acks(self, seconds: float) -> None:
        self._ack_delay_s = seconds

    # -- views ----------------------------------------------------------------------------------

    @property
    def state(self) -> EncoderState:
        """The first encoder's state (most lines carry one encoder)."""
        return next(iter(self.states.values()))

    # -- ByteDevice -----------------------------------------------------------------------------

    def attach(self, send: Send) -> None:
        self._send = send

    def data_received(self, data: bytes) -> None:
        if self._offline:
            return
        if self._corrupt and STA in data:
            data = self._flip_one_bit(data)
        for item in self._decoder.feed(data):
            if isinstance(item, Rejected):
                self._on_rejected(item)
            else:
                self._on_frame(item)

    def _flip_one_bit(self, data: bytes) -> bytes:
        start = data.index(STA)
        end = data.find(bytes((STP,)), start + 1)
        end = len(data) if end < 0 else end
        for i in range(end - 1, start + 1, -1):
            # a plain data byte (not stuffing-related) so the damage shows as a CRC error
            if data[i] < 0xFC and data[i - 1] < 0xFD:
                self._corrupt = False
                return data[:i] + bytes((data[i] ^ 0x01,)) + data[i + 1 :]
        return data

    def _on_rejected(self, rej: Rejected) -> None:
        self.rejected.append(rej)
        if rej.sqc is None or rej.site is None or rej.encoder is None:
            return
        if (rej.site, rej.encoder) in self.states:
            self._answer(rej.site, rej.encoder, rej.sqc, rej.code)

    def _on_frame(self, frame: Frame) -> None:
        addr = (frame.site, frame.encoder)
        if addr not in self.states:
            return  # another encoder on the line
        if self._acks_pending:
            self.overlapping_frames += 1
        if self._drop:
            self._drop -= 1
            self.dropped += 1
            return
        if self._nack:
            self._nack -= 1
            self._answer(frame.site, frame.encoder, frame.sqc, self._nack_code)
            return
        try:
            elements = frame.elements()
            for el in elements:
                if isinstance(el, ManufacturerSpecific):
                    parse_programme_input(el)
        except UecpError as exc:
            self.rejected.append(Rejected(exc.code, exc.detail, frame.site, frame.encoder, frame.sqc))
            self._answer(frame.site, frame.encoder, frame.sqc, exc.code)
            return
        self.history.append(frame)
        state = self.states[addr]
        for el in elements:
            self._apply(state, el)
        self._answer(frame.site, frame.encoder, frame.sqc, AckCode.OK)

    def _apply(self, s: EncoderState, el: Element) -> None:
        s.applied.append(el)
        if isinstance(el, PiSet):
            s.pi = el.pi
        elif isinstance(el, PsSet):
            s.ps = el.ps
        elif isinstance(el, PtySet):
            s.pty = el.pty
        elif isinstance(el, TaTpSet):
            s.ta, s.tp = el.ta, el.tp
        elif isinstance(el, RadioTextSet):
            s.radiotext = s.radiotext + el.text if el.buffer is RtBuffer.APPEND else el.text
            s.rt_ab = el.ab_flag
        elif isinstance(el, ClockSet):
            s.clock = el.at
        elif isinstance(el, ManufacturerSpecific):
            s.programme_input = parse_programme_input(el)

    def _answer(self, site: int, encoder: int, sqc: int, code: AckCode) -> None:
        if code is not AckCode.OK:
            self.nacks_sent.append(code)
        wire = Frame.of(site, encoder, sqc, Ack(code, sqc)).encode(self.variant)
        if self._ack_delay_s <= 0:
            self._write(wire)
            return
        self._acks_pending += 1

        def later() -> None:
            self._acks_pending -= 1
            self._write(wire)

        asyncio.get_running_loop().call_later(self._ack_delay_s, later)

    def _write(self, wire: bytes) -> None:
        if self._send is not None and not self._offline:
            self._send(wire)
