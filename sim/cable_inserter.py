"""A simulated cable head-end EB inserter: decodes the link frames (adapters.cable_tv.link) and the EBIT
and content sections (adapters.cable_tv.sections) with the adapter's own codecs, validates every CRC,
answers ACK / NACK / STATUS_REPLY, and shows what it is carrying.

Owns: the on-air table (decoded EBIT entries and content per EBM id), idempotent handling of
duplicate sequence numbers (the stored reply is replayed, the command is not applied twice), and fault
levers: ``go_offline``, ``come_online``, ``drop_next(n)`` (requests vanish), ``drop_next_reply(n)``
(applied but the answer is lost), ``nack_next(n, reason)``, ``corrupt_next_frame``. Never imported by
product code.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from adapters.cable_tv.link import (
    SYNC,
    Command,
    LinkDecoder,
    LinkFrame,
    LinkReject,
    NackReason,
    nack_payload,
    parse_ebm_payload,
    split_insert,
    status_payload,
)
from adapters.cable_tv.sections import (
    TABLE_CONTENT,
    TABLE_EBIT,
    EbContent,
    EbitEntry,
    Section,
    SectionError,
    parse_content,
    parse_ebit,
    split_sections,
)
from sim.serial_pty import Send

_REMEMBERED_REPLIES = 64


@dataclass(frozen=True)
class OnAir:
    ebit: tuple[EbitEntry, ...]
    content: EbContent
    version: int


class CableInserterSim:
    def __init__(self) -> None:
        self._decoder = LinkDecoder()
        self._send: Send | None = None
        self.on_air: dict[str, OnAir] = {}
        self.history: list[LinkFrame] = []
        self.rejected: list[LinkReject] = []
        self.nacks_sent: list[NackReason] = []
        self.inserts_applied = 0
        self.withdrawals_applied = 0
        self.duplicates = 0
        self.dropped = 0
        # seq -> (the request it answered, the reply); a seq reused for another request is not a duplicate
        self._replies: OrderedDict[int, tuple[LinkFrame, bytes]] = OrderedDict()
        self._current: LinkFrame | None = None
        self._offline = False
        self._drop = 0
        self._drop_reply = 0
        self._nack = 0
        self._nack_reason = NackReason.REFUSED
        self._corrupt = False

    # -- levers ---------------------------------------------------------------------------------

    def go_offline(self) -> None:
        self._offline = True

    def come_online(self) -> None:
        self._offline = False

    def drop_next(self, n: int = 1) -> None:
        self._drop += n

    def drop_next_reply(self, n: int = 1) -> None:
        self._drop_reply += n

    def nack_next(self, n: int = 1, reason: NackReason = NackReason.REFUSED) -> None:
        self._nack, self._nack_reason = self._nack + n, reason

    def corrupt_next_frame(self) -> None:
        self._corrupt = True

    # -- ByteDevice -----------------------------------------------------------------------------

    def attach(self, send: Send) -> None:
        self._send = send

    def data_received(self, data: bytes) -> None:
        if self._offline:
            return
        if self._corrupt and SYNC in data and len(data) > data.index(SYNC) + 12:
            # flip a payload/CRC bit (after the header) so HCS still holds and the CRC catches it
            i = len(data) - 2
            data = data[:i] + bytes((data[i] ^ 0x10,)) + data[i + 1 :]
            self._corrupt = False
        for item in self._decoder.feed(data):
            if isinstance(item, LinkReject):
                self.rejected.append(item)
                self._reply(LinkFrame(item.seq, Command.NACK, nack_payload(item.reason, item.detail)), None)
            else:
                self._on_frame(item)

    def _on_frame(self, frame: LinkFrame) -> None:
        if self._drop:
            self._drop -= 1
            self.dropped += 1
            return
        stored = self._replies.get(frame.seq)
        if stored is not None and stored[0] == frame:
            self.duplicates += 1
            self._write(stored[1])
            return
        self._current = frame
        self.history.append(frame)
        if self._nack:
            self._nack -= 1
            self._nack_reply(frame.seq, self._nack_reason, "refused by lever")
            return
        if frame.command is Command.INSERT:
            self._insert(frame)
        elif frame.command is Command.WITHDRAW:
            self._withdraw(frame)
        elif frame.command is Command.STATUS:
            reply = LinkFrame(frame.seq, Command.STATUS_REPLY, status_payload(sorted(self.on_air)))
            self._reply(reply, frame.seq)
        else:
            self._nack_reply(frame.seq, NackReason.UNKNOWN_COMMAND, f"{frame.command.name} is a reply")

    def _insert(self, frame: LinkFrame) -> None:
        try:
            ebm_id, raw = split_insert(frame.payload)
            sections = [Section.parse(s) for s in split_sections(raw)]
            ebit = parse_ebit([s for s in sections if s.table_id == TABLE_EBIT])
            content = parse_content([s for s in sections if s.table_id == TABLE_CONTENT])
        except SectionError as exc:
            self._nack_reply(frame.seq, NackReason.BAD_SECTION, str(exc))
            return
        except ValueError as exc:
            self._nack_reply(frame.seq, NackReason.MALFORMED, str(exc))
            return
        if not ebit or any(e.ebm_id != ebm_id for e in ebit) or content.ebm_id != ebm_id:
            self._nack_reply(frame.seq, NackReason.MALFORMED, "sections name another EBM id")
            return
        self.on_air[ebm_id] = OnAir(tuple(ebit), content, sections[0].version)
        self.inserts_applied += 1
        self._reply(LinkFrame(frame.seq, Command.ACK), frame.seq)

    def _withdraw(self, frame: LinkFrame) -> None:
        try:
            ebm_id = parse_ebm_payload(frame.payload)
        except ValueError as exc:
            self._nack_reply(frame.seq, NackReason.MALFORMED, str(exc))
            return
        if self.on_air.pop(ebm_id, None) is not None:
            self.withdrawals_applied += 1
        self._reply(LinkFrame(frame.seq, Command.ACK), frame.seq)

    def _nack_reply(self, seq: int, reason: NackReason, detail: str) -> None:
        # a refusal is remembered too: the same request retransmitted gets the same answer
        self._reply(LinkFrame(seq, Command.NACK, nack_payload(reason, detail)), seq)

    def _reply(self, reply: LinkFrame, remember_seq: int | None) -> None:
        wire = reply.encode()
        if reply.command is Command.NACK:
            self.nacks_sent.append(NackReason(reply.payload[0]))
        if remember_seq is not None and self._current is not None:
            self._replies.pop(remember_seq, None)
            self._replies[remember_seq] = (self._current, wire)
            while len(self._replies) > _REMEMBERED_REPLIES:
                self._replies.popitem(last=False)
        if self._drop_reply:
            self._drop_reply -= 1
            return
        self._write(wire)

    def _write(self, wire: bytes) -> None:
        if self._send is not None and not self._offline:
            self._send(wire)
