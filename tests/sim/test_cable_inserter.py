"""The simulated head-end inserter on its own: section validation, NACK reasons, duplicate seq, levers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.cable_tv.link import (
    Command,
    LinkDecoder,
    LinkFrame,
    NackReason,
    ebm_payload,
    insert_payload,
    parse_nack,
    parse_status,
)
from adapters.cable_tv.sections import Charset, ContentEntry, EbContent, EbitEntry, build_content, build_ebit
from sim.cable_inserter import CableInserterSim

EBM = "43415230000000101010101202611150001"
T0 = datetime(2026, 11, 15, 2, 0, tzinfo=UTC)


def sections(ebm_id: str = EBM) -> list[bytes]:
    entry = EbitEntry(ebm_id, 1, T0, T0 + timedelta(hours=1), "11B03", 1, 2, ("43415230000000302010301",))
    content = EbContent(ebm_id, (ContentEntry("zho", Charset.GB18030, "暴雨橙色预警", "安宁县"),))
    return build_ebit([entry], 1) + build_content(content)


class Wire:
    def __init__(self) -> None:
        self.out = bytearray()
        self.dec = LinkDecoder()

    def __call__(self, data: bytes) -> None:
        self.out += data

    def replies(self) -> list[LinkFrame]:
        got = [f for f in self.dec.feed(bytes(self.out)) if isinstance(f, LinkFrame)]
        self.out.clear()
        return got


def rig() -> tuple[CableInserterSim, Wire]:
    sim = CableInserterSim()
    wire = Wire()
    sim.attach(wire)
    return sim, wire


def test_insert_status_withdraw() -> None:
    sim, wire = rig()
    sim.data_received(LinkFrame(1, Command.INSERT, insert_payload(EBM, sections())).encode())
    sim.data_received(LinkFrame(2, Command.STATUS).encode())
    sim.data_received(LinkFrame(3, Command.WITHDRAW, ebm_payload(EBM)).encode())
    r = wire.replies()
    assert [(f.seq, f.command) for f in r] == [(1, Command.ACK), (2, Command.STATUS_REPLY), (3, Command.ACK)]
    assert parse_status(r[1].payload) == [EBM]
    assert sim.on_air == {} and sim.inserts_applied == 1 and sim.withdrawals_applied == 1


def test_damaged_section_is_refused_as_bad_section() -> None:
    sim, wire = rig()
    raw = sections()
    broken = bytearray(raw[0])
    broken[30] ^= 0xFF
    sim.data_received(LinkFrame(9, Command.INSERT, insert_payload(EBM, [bytes(broken), raw[1]])).encode())
    (reply,) = wire.replies()
    assert reply.command is Command.NACK and parse_nack(reply.payload)[0] is NackReason.BAD_SECTION
    assert sim.on_air == {}


def test_mismatched_ebm_id_is_refused() -> None:
    sim, wire = rig()
    sim.data_received(LinkFrame(4, Command.INSERT, insert_payload(EBM, sections(EBM[:-1] + "9"))).encode())
    (reply,) = wire.replies()
    assert parse_nack(reply.payload)[0] is NackReason.MALFORMED


def test_duplicate_seq_replays_reply_without_reapplying() -> None:
    sim, wire = rig()
    frame = LinkFrame(5, Command.INSERT, insert_payload(EBM, sections()))
    sim.data_received(frame.encode())
    sim.data_received(LinkFrame(6, Command.WITHDRAW, ebm_payload(EBM)).encode())
    sim.data_received(frame.encode())  # a late retransmission of seq 5 must not re-insert
    assert [f.command for f in wire.replies()] == [Command.ACK] * 3
    assert sim.duplicates == 1 and sim.on_air == {} and sim.inserts_applied == 1
    # a reused seq with a different request is a new request
    sim.data_received(LinkFrame(5, Command.STATUS).encode())
    assert wire.replies()[0].command is Command.STATUS_REPLY


def test_corrupt_lever_and_nack_lever() -> None:
    sim, wire = rig()
    sim.corrupt_next_frame()
    sim.data_received(LinkFrame(7, Command.INSERT, insert_payload(EBM, sections())).encode())
    sim.nack_next(1, NackReason.BUSY)
    sim.data_received(LinkFrame(8, Command.STATUS).encode())
    r = wire.replies()
    assert [(f.seq, parse_nack(f.payload)[0]) for f in r] == [(7, NackReason.BAD_CRC), (8, NackReason.BUSY)]
    assert sim.on_air == {}
