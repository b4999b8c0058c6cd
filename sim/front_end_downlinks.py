"""The downward side of a simulated front-end (sim.front_end.FrontEndSim): the TCP server its terminals
(``sim.ip_terminal.SimTerminal``) connect to, binding each connection by its first heartbeat, answering
terminal requests, and handing their heartbeats and reports to the front-end's uplink (reports about the
front-end's own local announcement stay here).

Owns ``Downlinks``, the terminal-side half of ``FrontEndSim`` (a mixin it inherits). Never talks to the
county itself (it asks the front-end's ``_up`` / ``_forward`` / ``_finish``), and never imports the
controller core.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.ip_speaker.codec import (
    DecodeError,
    Frame,
    FrameDecoder,
    HeaderVariant,
    PacketType,
    encode_frame,
)
from adapters.ip_speaker.payload_fields import PayloadError, ResultCode, WorkState
from adapters.ip_speaker.payloads import (
    BroadcastRecords,
    BroadcastResult,
    FaultReport,
    Heartbeat,
    Reply,
    TaskSwitch,
)
from broadcast.model import TerminalRef

if TYPE_CHECKING:
    from sim.front_end import LocalAnnouncement


@dataclass(eq=False)
class _Downlink:
    writer: asyncio.StreamWriter
    code: str | None = None


class Downlinks:
    """The terminal-side half of ``FrontEndSim``; the front-end provides the attributes and uplink methods."""

    code: str
    refs: dict[str, TerminalRef]
    locals: list[LocalAnnouncement]
    _by_address: dict[str, TerminalRef]
    _down: dict[str, _Downlink]
    _pending: dict[tuple[str, int], asyncio.Future[bytes]]

    def _up(self, payload: Heartbeat, targets: tuple[str, ...]) -> int | None:
        raise NotImplementedError

    def _forward(self, code: str, frame: Frame) -> None:
        raise NotImplementedError

    def _finish(self, ebm_id: str, codes: Sequence[str]) -> None:
        raise NotImplementedError

    def _send_down(self, code: str, frame: Frame) -> None:
        link = self._down.get(code)
        if link is None or link.writer.is_closing():
            raise ConnectionError(f"terminal {code} is not connected")
        link.writer.write(encode_frame(frame))

    async def _close_downlinks(self) -> None:
        links = list(self._down.values())
        self._down.clear()
        for link in links:
            link.writer.close()
        for (_, _), fut in list(self._pending.items()):
            if not fut.done():
                fut.set_exception(ConnectionError("front-end restarted"))

    async def _serve_terminal(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Downlink(writer)
        decoder = FrameDecoder(HeaderVariant.STANDARD)
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                for item in decoder.feed(data):
                    if not isinstance(item, DecodeError):
                        self._on_terminal_frame(link, item)
                if writer.is_closing():
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            code = link.code
            if code is not None and self._down.get(code) is link:
                del self._down[code]
                for (c, _), fut in list(self._pending.items()):
                    if c == code and not fut.done():
                        fut.set_exception(ConnectionError("terminal link lost"))
                ref = self.refs[code]
                self._up(Heartbeat(WorkState.OFFLINE, False, ref.physical_address.encode()), (code,))

    def _answer(self, link: _Downlink, frame: Frame, result: int, desc: str = "") -> None:
        out = Frame(
            frame.session_id,
            PacketType.RESPONSE,
            self.code,
            (frame.source,),
            frame.business_type,
            Reply(result, desc).encode(),
        )
        if not link.writer.is_closing():
            link.writer.write(encode_frame(out))

    def _on_terminal_frame(self, link: _Downlink, frame: Frame) -> None:
        if frame.is_response:
            fut = self._pending.get((link.code or "", frame.session_id))
            if fut is not None and not fut.done():
                fut.set_result(frame.business_data)
            return
        try:
            payload = frame.payload()
        except PayloadError as exc:
            self._answer(link, frame, ResultCode.PARSE_ERROR, str(exc))
            return
        if link.code is None:
            self._bind(link, frame, payload)
            return
        if frame.source != link.code:
            self._answer(link, frame, ResultCode.PARAM_ILLEGAL, "帧源编码与已注册终端不符")
            return
        if isinstance(payload, Heartbeat):
            self._answer(link, frame, ResultCode.OK)
            self._forward(link.code, frame)
        elif isinstance(payload, TaskSwitch | BroadcastResult | BroadcastRecords | FaultReport):
            self._answer(link, frame, ResultCode.OK)
            self._on_report(link.code, frame, payload)
        else:
            self._answer(link, frame, ResultCode.UNSUPPORTED, "前端不受理该业务")

    def _bind(self, link: _Downlink, frame: Frame, payload: object) -> None:
        ref = (
            self._by_address.get(payload.physical_address.decode("ascii", errors="replace"))
            if isinstance(payload, Heartbeat)
            else None
        )
        if ref is None or ref.resource_code != frame.source:
            self._answer(link, frame, ResultCode.RESOURCE_CODE_INVALID, "未登记在本前端之后的终端")
            link.writer.close()
            return
        old = self._down.get(ref.resource_code)
        link.code = ref.resource_code
        self._down[ref.resource_code] = link
        if old is not None:
            old.writer.close()
        self._answer(link, frame, ResultCode.OK)
        self._forward(ref.resource_code, frame)

    def _on_report(self, code: str, frame: Frame, payload: object) -> None:
        local = {a.ebm_id: a for a in self.locals}
        ebm_id = payload.ebm_id if isinstance(payload, TaskSwitch | BroadcastResult) else None
        if ebm_id is not None and ebm_id in local:
            local[ebm_id].reports.append((code, frame.business_type))
            return
        if isinstance(payload, BroadcastResult):
            self._finish(payload.ebm_id, (code,))
        self._forward(code, frame)
