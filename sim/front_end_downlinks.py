"""The downward side of a simulated front-end (sim.front_end.FrontEndSim): the TCP server its terminals
(``sim.ip_terminal.SimTerminal``) connect to, binding each connection by its first heartbeat, answering
terminal requests, relaying one request to one terminal and waiting for its reply, and handing the
terminals' heartbeats, reports and losses up through the small ``Uplink`` protocol the front-end gives it.

Owns ``Downlinks`` (composed by ``FrontEndSim``). Never talks to the county itself, never decides what a
terminal's report means for the front-end (that is the ``Uplink``'s), and never imports the controller
core.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from adapters.ip_speaker.codec import Frame, PacketType, encode_frame
from adapters.ip_speaker.payload_fields import PayloadError, ResultCode
from adapters.ip_speaker.payloads import (
    BroadcastRecords,
    BroadcastResult,
    FaultReport,
    Heartbeat,
    Reply,
    TaskSwitch,
)
from broadcast.model import TerminalRef
from sim.ip_client import read_frames

TerminalReport = TaskSwitch | BroadcastResult | BroadcastRecords | FaultReport


class Uplink(Protocol):
    """What the terminal side hands up to its front-end."""

    def forward_up(self, code: str, frame: Frame) -> None:
        """A terminal's heartbeat (the registering one too), to be forwarded to the county."""

    def terminal_report(self, code: str, frame: Frame, report: TerminalReport) -> None:
        """A terminal's report (already answered OK)."""

    def terminal_lost(self, code: str) -> None:
        """A bound terminal's connection ended."""


@dataclass(eq=False)
class _Downlink:
    writer: asyncio.StreamWriter
    code: str | None = None


class Downlinks:
    """The terminal-side half of a simulated front-end; see the module docstring."""

    def __init__(
        self, code: str, refs: Mapping[str, TerminalRef], uplink: Uplink, sessions: Iterator[int]
    ) -> None:
        self.code = code
        self._refs = refs
        self._by_address = {t.physical_address: t for t in refs.values()}
        self._uplink = uplink
        self._sessions = sessions  # shared with the uplink: one session counter per front-end
        self._down: dict[str, _Downlink] = {}
        self._pending: dict[tuple[str, int], asyncio.Future[bytes]] = {}
        self._server: asyncio.Server | None = None

    @property
    def serving(self) -> bool:
        return self._server is not None

    def connected(self) -> list[str]:
        """Codes of the terminals bound now, in the order they connected."""
        return list(self._down)

    async def open(self, port: int) -> int:
        """Listen on 127.0.0.1:``port`` (0: ephemeral); returns the bound port."""
        self._server = await asyncio.start_server(self._serve_terminal, "127.0.0.1", port)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def disconnect_all(self) -> None:
        """Drop every terminal's connection (a front-end restart); requests waiting on them fail."""
        links = list(self._down.values())
        self._down.clear()
        for link in links:
            link.writer.close()
        for (_, _), fut in list(self._pending.items()):
            if not fut.done():
                fut.set_exception(ConnectionError("front-end restarted"))

    def send(self, code: str, frame: Frame) -> None:
        link = self._down.get(code)
        if link is None or link.writer.is_closing():
            raise ConnectionError(f"terminal {code} is not connected")
        link.writer.write(encode_frame(frame))

    async def relay(self, code: str, business_type: int, data: bytes, timeout_s: float) -> bytes:
        """Send one request to terminal ``code`` and return its reply body — or the reply the front-end
        gives in its place (59 not behind this front-end, 72 not connected, 11 no answer in time)."""
        if code not in self._refs:
            return Reply(ResultCode.RESOURCE_CODE_INVALID, f"终端 {code} 不在前端 {self.code} 之后").encode()
        if code not in self._down:
            return Reply(ResultCode.TERMINAL_OFFLINE, f"终端 {code} 未连接前端").encode()
        session = next(self._sessions) & 0xFFFFFFFF
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[(code, session)] = fut
        try:
            self.send(code, Frame(session, PacketType.REQUEST, self.code, (code,), business_type, data))
            async with asyncio.timeout(timeout_s):
                return await fut
        except TimeoutError:
            return Reply(ResultCode.TIMEOUT, f"终端 {code} 未在 {timeout_s:g} 秒内应答前端").encode()
        except ConnectionError:
            return Reply(ResultCode.TERMINAL_OFFLINE, f"终端 {code} 与前端的连接断开").encode()
        finally:
            self._pending.pop((code, session), None)

    # -- one terminal's connection ---------------------------------------------------------------

    async def _serve_terminal(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Downlink(writer)
        try:
            await read_frames(reader, lambda frame: self._on_terminal_frame(link, frame), writer=writer)
        finally:
            writer.close()
            code = link.code
            if code is not None and self._down.get(code) is link:
                del self._down[code]
                for (c, _), fut in list(self._pending.items()):
                    if c == code and not fut.done():
                        fut.set_exception(ConnectionError("terminal link lost"))
                self._uplink.terminal_lost(code)

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
            self._uplink.forward_up(link.code, frame)
        elif isinstance(payload, TaskSwitch | BroadcastResult | BroadcastRecords | FaultReport):
            self._answer(link, frame, ResultCode.OK)
            self._uplink.terminal_report(link.code, frame, payload)
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
        self._uplink.forward_up(ref.resource_code, frame)
