"""The simulated RDS encoder on its own: validation, NACK codes, levers (driven with raw codec frames)."""

from __future__ import annotations

from adapters.fm.device import ProgrammeInput, programme_input_element
from adapters.fm.uecp import Frame, FrameDecoder, StuffingVariant
from adapters.fm.uecp_elements import Ack, AckCode, PsSet, PtySet, RadioTextSet
from sim.fm_encoder import FmEncoderSim


class Wire:
    def __init__(self, variant: StuffingVariant = StuffingVariant.STANDARD) -> None:
        self.out = bytearray()
        self.dec = FrameDecoder(variant)

    def __call__(self, data: bytes) -> None:
        self.out += data

    def acks(self) -> list[tuple[int, Ack]]:
        frames = [f for f in self.dec.feed(bytes(self.out)) if isinstance(f, Frame)]
        self.out.clear()
        return [(f.sqc, el) for f in frames for el in f.elements() if isinstance(el, Ack)]


def rig(variant: StuffingVariant = StuffingVariant.STANDARD) -> tuple[FmEncoderSim, Wire]:
    sim = FmEncoderSim(variant=variant)
    wire = Wire(variant)
    sim.attach(wire)
    return sim, wire


def test_applies_and_acknowledges_with_the_request_sqc() -> None:
    sim, wire = rig(StuffingVariant.TRAILING_FD)
    sim.data_received(Frame.of(0, 1, 0xFE, PtySet(31), PsSet("ALERT")).encode(StuffingVariant.TRAILING_FD))
    switch = programme_input_element(ProgrammeInput.EMERGENCY)
    sim.data_received(Frame.of(0, 1, 2, switch).encode(sim.variant))
    assert wire.acks() == [(0xFE, Ack(AckCode.OK)), (2, Ack(AckCode.OK))]
    assert (sim.state.pty, sim.state.ps, sim.state.programme_input) == (31, "ALERT", ProgrammeInput.EMERGENCY)


def test_invalid_element_gets_the_matching_nack() -> None:
    sim, wire = rig()
    bad_pty = Frame(0, 1, 5, bytes([0x07, 0, 0, 40]))
    unknown = Frame(0, 1, 6, bytes([0x7C, 0]))
    short_rt = Frame(0, 1, 7, bytes([0x0A, 0, 0, 10, 0]) + b"ab")
    bad_vendor = Frame(0, 1, 8, bytes([0x2D, 4]) + b"EB\x01\x07")
    for f in (bad_pty, unknown, short_rt, bad_vendor):
        sim.data_received(f.encode())
    assert wire.acks() == [
        (5, Ack(AckCode.PARAM_OUT_OF_RANGE, 5)),
        (6, Ack(AckCode.MSG_UNKNOWN, 6)),
        (7, Ack(AckCode.MSG_ELEMENT_LENGTH_ERROR, 7)),
        (8, Ack(AckCode.PARAM_OUT_OF_RANGE, 8)),
    ]
    assert sim.history == [] and sim.state.pty == 0


def test_ignores_other_addresses() -> None:
    sim, wire = rig()
    sim.data_received(Frame.of(0, 9, 1, PtySet(31)).encode())
    assert wire.acks() == [] and sim.state.pty == 0


def test_levers() -> None:
    sim, wire = rig()
    frame = Frame.of(0, 1, 3, RadioTextSet("HELLO"))
    sim.drop_next(1)
    sim.data_received(frame.encode())
    assert wire.acks() == [] and sim.dropped == 1
    sim.nack_next(1, AckCode.MSG_NOT_ACCEPTABLE)
    sim.data_received(frame.encode())
    assert wire.acks() == [(3, Ack(AckCode.MSG_NOT_ACCEPTABLE, 3))]
    sim.corrupt_next_frame()
    sim.data_received(frame.encode())
    assert wire.acks() == [(3, Ack(AckCode.CRC_ERROR, 3))]
    sim.go_offline()
    sim.data_received(frame.encode())
    assert wire.acks() == []
    sim.come_online()
    sim.data_received(frame.encode())
    assert wire.acks() == [(3, Ack(AckCode.OK))]
    assert sim.state.radiotext == "HELLO"


def test_garbage_between_frames_is_skipped() -> None:
    sim, wire = rig()
    truncated = Frame.of(0, 1, 4, PtySet(1)).encode()[:6]
    sim.data_received(b"\x00\x01\x02" + truncated + Frame.of(0, 1, 5, PtySet(2)).encode())
    acks = wire.acks()
    assert acks[-1] == (5, Ack(AckCode.OK)) and sim.state.pty == 2
