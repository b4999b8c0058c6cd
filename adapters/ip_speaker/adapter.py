"""The controller side of the IP loudspeaker protocol: the terminals connect to its TCP server.

Owns: binding a connection to a terminal by the physical address in its first heartbeat, sending
start/stop/query/set requests and classifying the replies (``SendResult``), answering every terminal
request with a Reply, heartbeats and the heartbeat-silence check. The TCP shell (listener, links,
liveness loop, counters) is ``server.FrameServer``; task-switch, result and broadcast-record (0x16)
reports and link states are ``reports.ReportHandling``; order → payload is ``orders``. The adapter
composes the three and keeps which terminal is bound to which link (``dict[Link, TerminalState]``).

Never retries, never sleeps for pacing, never touches the store or the dispatcher; it only reports
through the ``AdapterSink``. Frames from terminals may use the 11-byte return-channel header
(config ``header_variant = "return_channel"``); frames to terminals always use the 12-byte header.
Physical addresses on the wire are the ASCII bytes of ``TerminalRef.physical_address``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from adapters.base import AdapterSink, Capability, ConfigKey
from adapters.ip_speaker.codec import DecodeError, DecodeErrorKind, Frame, HeaderVariant, PacketType
from adapters.ip_speaker.link import Link, LinkLost
from adapters.ip_speaker.orders import start_payload
from adapters.ip_speaker.params import Query, QueryReply, ReturnAddress, SetParams
from adapters.ip_speaker.payload_fields import BUSY_RESULTS, FaultFlag, PayloadError, ResultCode, WorkState
from adapters.ip_speaker.payloads import (
    BroadcastRecords,
    BroadcastResult,
    FaultReport,
    Heartbeat,
    Payload,
    Reply,
    RequestPayload,
    StopBroadcast,
    TaskSwitch,
    UnsupportedBusiness,
)
from adapters.ip_speaker.reports import ReportHandling
from adapters.ip_speaker.server import FrameServer, ServerSettings
from adapters.ip_speaker.terminal_state import TerminalState
from broadcast.clock import Clock
from broadcast.messages import FailureKind, SendResult
from broadcast.model import DeliveryOrder, LinkState, TerminalRef

log = logging.getLogger(__name__)

DEFAULT_PORT = 9300
LISTEN_BACKLOG = 4096  # a storm of all terminals reconnecting at once must not be refused
_NUM = (int, float)

# The keys of [adapters.ip_speaker] (checked by the registry before the adapter is built).
CONFIG_SCHEMA: dict[str, ConfigKey] = {
    "host": ConfigKey((str,), doc="address the terminals' TCP return channel binds"),
    "port": ConfigKey((int,), doc="TCP port (0 = ephemeral)"),
    "ack_timeout_s": ConfigKey(_NUM),
    "heartbeat_timeout_s": ConfigKey(_NUM, doc="silent this long → offline (3 × heartbeat interval)"),
    "liveness_check_s": ConfigKey(_NUM),
    "header_variant": ConfigKey((str,), doc="standard (12-byte) or return (11-byte) header from terminals"),
}


class IpSpeakerConfigError(ValueError):
    """The adapter's configuration is unusable; the message says what to fix."""


class IpSpeakerAdapter:
    """Adapter for IP loudspeakers; see the module docstring. Config keys (``CONFIG_SCHEMA``): host,
    port (0 = ephemeral), platform_code (required), ack_timeout_s, heartbeat_timeout_s,
    liveness_check_s, header_variant."""

    name = "ip_speaker"
    capabilities = frozenset({Capability.AUDIO_URL, Capability.STOP, Capability.QUERY, Capability.RECEIPTS})
    config_schema: ClassVar[Mapping[str, ConfigKey]] = CONFIG_SCHEMA

    def __init__(self, config: Mapping[str, Any], clock: Clock) -> None:
        settings = ServerSettings.read(
            "ip_speaker",
            config,
            default_port=DEFAULT_PORT,
            default_ack_timeout_s=3.0,
            error=IpSpeakerConfigError,
        )
        try:
            variant = HeaderVariant(str(config.get("header_variant", HeaderVariant.STANDARD)))
        except ValueError as exc:
            raise IpSpeakerConfigError(
                "ip_speaker 的 header_variant 只能是 standard 或 return_channel，"
                f"当前为 {config.get('header_variant')!r}"
            ) from exc
        self._platform_code = settings.platform_code
        self._ack_timeout = settings.ack_timeout_s
        self._clock = clock
        self._server = FrameServer(
            "ip_speaker",
            settings,
            self,
            clock,
            counters=(
                "frames_in",
                "frames_out",
                "crc_errors",
                "decode_errors",
                "rejected_reports",
                "ack_timeouts",
                "unknown_terminals",
                "records_in",
            ),
            variant=variant,
            backlog=LISTEN_BACKLOG,
        )
        self._counts = self._server.counts
        self._reports: ReportHandling | None = None
        self._terminals: dict[str, TerminalState] = {}
        self._by_address: dict[str, TerminalState] = {}
        self._bound: dict[Link, TerminalState] = {}
        self._unknown_logged: set[str] = set()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def server(self) -> FrameServer:
        """The §4.1 server shell this adapter runs on (a harness may feed it frames in process)."""
        return self._server

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, sink: AdapterSink, terminals: Sequence[TerminalRef]) -> None:
        self._reports = ReportHandling(sink, self._clock, self._reply, self._counts)
        for ref in terminals:
            state = TerminalState(ref)
            self._terminals[ref.resource_code] = state
            self._by_address[ref.physical_address] = state
        await self._server.start()
        host = self._server.settings.host
        log.info("ip_speaker listening on %s:%d for %d terminals", host, self.port, len(terminals))

    async def close(self) -> None:
        await self._server.close()

    # -- the Adapter API -----------------------------------------------------------------------

    def is_reachable(self, terminal_code: str) -> bool:
        state = self._terminals.get(terminal_code)
        return state is not None and state.link is not None and not state.link.closed

    async def deliver(self, order: DeliveryOrder, terminal_code: str) -> SendResult:
        state = self._terminals.get(terminal_code)
        if state is None:
            return SendResult.permanent(
                FailureKind.UNSUPPORTED, f"终端 {terminal_code} 不由 ip_speaker 适配器管理"
            )
        payload = start_payload(order)
        state.remember_delivery(order.ebm_id)
        answer = await self._request(state, payload)
        return answer if isinstance(answer, SendResult) else self._classify(terminal_code, answer)

    def adopt(self, order: DeliveryOrder, terminal_code: str) -> None:
        state = self._terminals.get(terminal_code)
        if state is not None:
            state.remember_delivery(order.ebm_id)

    async def stop(self, ebm_id: str, terminal_code: str) -> SendResult:
        state = self._terminals.get(terminal_code)
        if state is None:
            return SendResult.permanent(
                FailureKind.UNSUPPORTED, f"终端 {terminal_code} 不由 ip_speaker 适配器管理"
            )
        state.stopped.add(ebm_id)
        answer = await self._request(state, StopBroadcast(ebm_id))
        return answer if isinstance(answer, SendResult) else self._classify(terminal_code, answer)

    async def query(self, terminal_code: str, tags: Sequence[int] = ()) -> QueryReply | SendResult:
        """Ask a terminal for its parameters (0x11); a ``SendResult`` says why there is no answer."""
        state = self._terminals.get(terminal_code)
        if state is None:
            return SendResult.permanent(
                FailureKind.UNSUPPORTED, f"终端 {terminal_code} 不由 ip_speaker 适配器管理"
            )
        answer = await self._request(state, Query(tuple(tags)))
        if isinstance(answer, QueryReply | SendResult):
            return answer
        return self._classify(terminal_code, answer)

    async def set_params(
        self,
        terminal_code: str,
        *,
        volume: int | None = None,
        return_address: ReturnAddress | None = None,
        resource_code: str | None = None,
    ) -> SendResult:
        """Set a terminal's parameters (0x12). A resource-code change carries the terminal's physical
        address, so only that device takes it."""
        state = self._terminals.get(terminal_code)
        if state is None:
            return SendResult.permanent(
                FailureKind.UNSUPPORTED, f"终端 {terminal_code} 不由 ip_speaker 适配器管理"
            )
        try:
            payload = SetParams.build(
                volume=volume,
                return_address=return_address,
                resource_code=resource_code,
                physical_address=state.ref.physical_address.encode("ascii") if resource_code else None,
            )
        except ValueError as exc:
            return SendResult.permanent(FailureKind.UNSUPPORTED, f"终端 {terminal_code} 参数无效：{exc}")
        answer = await self._request(state, payload)
        return answer if isinstance(answer, SendResult) else self._classify(terminal_code, answer)

    def status(self) -> dict[str, Any]:
        bound = sum(1 for s in self._terminals.values() if s.link is not None)
        by_state: dict[str, int] = {}
        for s in self._terminals.values():
            by_state[s.link_state.value] = by_state.get(s.link_state.value, 0) + 1
        return {
            "port": self.port,
            "terminals": len(self._terminals),
            "connected": bound,
            "connections": self._server.connections,
            "link_states": by_state,
            **self._counts,
        }

    def check_liveness(self) -> int:
        """Mark terminals silent for longer than the heartbeat timeout offline; returns how many."""
        timeout = self._server.settings.heartbeat_timeout_s
        seen = [(s.link, s.last_seen) for s in self._terminals.values() if s.link is not None]
        return self._server.drop_silent(seen, f"{timeout:g} 秒未收到心跳")

    # -- what the server hands over (FrameHandler) ---------------------------------------------

    def on_detach(self, link: Link, reason: str) -> None:
        state = self._bound.pop(link, None)
        if state is not None and state.link is link:
            state.link = None
            self._report.set_link_state(state, LinkState.OFFLINE, reason)

    def on_shutdown(self) -> None:
        # Shutting down is not news about the terminals: let go quietly, no OFFLINE storm.
        for link, state in self._bound.items():
            if state.link is link:
                state.link = None
        self._bound.clear()

    def on_decode_error(self, link: Link, err: DecodeError) -> None:
        if err.kind is DecodeErrorKind.BAD_CRC:
            self._counts["crc_errors"] += 1
        state = self._bound.get(link)
        who = state.code if state is not None else link.peer
        if not link.decode_errors_logged:
            link.decode_errors_logged = True
            log.warning("ip_speaker: dropped a bad frame from %s (%s: %s)", who, err.kind, err.detail)
        else:
            log.debug("ip_speaker: dropped a bad frame from %s (%s: %s)", who, err.kind, err.detail)

    # -- requests to terminals -----------------------------------------------------------------

    async def _request(self, state: TerminalState, payload: RequestPayload) -> Payload | SendResult:
        link = state.link
        code = state.code
        if link is None or link.closed:
            return SendResult.retry(FailureKind.NOT_CONNECTED, f"终端 {code} 未连接")
        session = self._server.next_session()
        fut: asyncio.Future[Payload] = asyncio.get_running_loop().create_future()
        link.pending[session] = fut
        frame = Frame(
            session, PacketType.REQUEST, self._platform_code, (code,), payload.BUSINESS_TYPE, payload.encode()
        )
        try:
            self._server.send(link, frame)
            await link.drain_if_needed()
            async with asyncio.timeout(self._ack_timeout):
                return await fut
        except TimeoutError:
            self._counts["ack_timeouts"] += 1
            return SendResult.retry(
                FailureKind.TIMEOUT, f"终端 {code} 在 {self._ack_timeout:g} 秒内未应答会话 {session}"
            )
        except (LinkLost, ConnectionError, OSError):
            return SendResult.retry(FailureKind.NOT_CONNECTED, f"终端 {code} 的连接在等待应答时断开")
        finally:
            link.pending.pop(session, None)

    @staticmethod
    def _classify(code: str, answer: Payload) -> SendResult:
        if not isinstance(answer, Reply):
            return SendResult.permanent(FailureKind.PROTOCOL, f"终端 {code} 的应答格式不符")
        if answer.ok:
            return SendResult.ok()
        detail = f"终端 {code} 拒绝：结果码 {answer.result} {answer.desc}".rstrip()
        if answer.result in BUSY_RESULTS:
            return SendResult.retry(FailureKind.BUSY, detail)
        return SendResult.permanent(FailureKind.REJECTED, detail)

    # -- frames from terminals -----------------------------------------------------------------

    def _reply(self, link: Link, frame: Frame, result: int, desc: str = "") -> None:
        self._server.reply(link, frame, result, desc, (frame.source,))

    @property
    def _report(self) -> ReportHandling:
        assert self._reports is not None, "the adapter has not been started"
        return self._reports

    def on_frame(self, link: Link, frame: Frame) -> None:
        if frame.is_response:
            fut = link.pending.get(frame.session_id)
            if fut is None or fut.done():
                return  # a late reply after its request timed out
            try:
                fut.set_result(frame.payload())
            except PayloadError as exc:
                fut.set_result(Reply(ResultCode.PARSE_ERROR, f"应答无法解析：{exc}"))
            return
        try:
            payload = frame.payload()
        except UnsupportedBusiness as exc:
            self._reply(link, frame, ResultCode.UNSUPPORTED, str(exc))
            return
        except PayloadError as exc:
            self._reply(link, frame, ResultCode.PARSE_ERROR, str(exc))
            return
        state = self._bound.get(link)
        if state is None:
            if isinstance(payload, Heartbeat):
                self._bind(link, frame, payload)
            else:
                self._reply(link, frame, ResultCode.RESOURCE_CODE_INVALID, "未注册：请先发送心跳注册")
                self._server.detach(link, "未注册先上报")
            return
        if frame.source != state.code:
            self._report.reject(link, frame, state, "source", f"帧源编码 {frame.source} 与已绑定终端不符")
            return
        if isinstance(payload, Heartbeat):
            self._on_heartbeat(link, frame, state, payload)
        elif isinstance(payload, TaskSwitch):
            self._report.task_switch(link, frame, state, payload)
        elif isinstance(payload, BroadcastResult):
            self._report.result(link, frame, state, payload)
        elif isinstance(payload, BroadcastRecords):
            self._report.records(link, frame, state, payload)
        elif isinstance(payload, FaultReport):
            self._reply(link, frame, ResultCode.OK)
            fault = payload.flag == FaultFlag.FAULT
            self._report.set_link_state(
                state,
                LinkState.FAULT if fault else LinkState.ONLINE,
                payload.desc or f"故障类型 {payload.fault_type}",
            )
        else:
            self._reply(link, frame, ResultCode.UNSUPPORTED, "平台不受理该业务类型的请求")

    # -- terminal requests ---------------------------------------------------------------------

    def _bind(self, link: Link, frame: Frame, hb: Heartbeat) -> None:
        address = hb.physical_address.decode("ascii", errors="replace")
        state = self._by_address.get(address)
        if state is None or frame.source != state.code:
            self._counts["unknown_terminals"] += 1
            why = "未知物理地址" if state is None else f"物理地址与资源编码 {frame.source} 不符"
            if address not in self._unknown_logged:
                self._unknown_logged.add(address)
                log.warning("ip_speaker: refused terminal %s at %s: %s", address, link.peer, why)
            self._reply(
                link, frame, ResultCode.RESOURCE_CODE_INVALID, f"{why}：请在终端清单中登记物理地址 {address}"
            )
            self._server.detach(link, why)
            return
        old = state.link
        if old is not None and old is not link:
            self._bound.pop(old, None)  # replaced: its closing must not mark the terminal offline
            self._server.drop(old, "被同一终端的新连接替换")
        self._bound[link] = state
        state.link = link
        state.last_seen = self._clock.monotonic()
        self._reply(link, frame, ResultCode.OK)
        detail = "首次注册" if hb.first_registration else "重新连接"
        self._report.set_link_state(
            state, LinkState.FAULT if hb.work_state == WorkState.FAULT else LinkState.ONLINE, detail
        )
        self._report.heartbeat(state)

    def _on_heartbeat(self, link: Link, frame: Frame, state: TerminalState, hb: Heartbeat) -> None:
        if hb.physical_address.decode("ascii", errors="replace") != state.ref.physical_address:
            self._report.reject(link, frame, state, "address", "心跳物理地址与已绑定终端不符")
            return
        state.last_seen = self._clock.monotonic()
        self._reply(link, frame, ResultCode.OK)
        if hb.work_state == WorkState.FAULT:
            self._report.set_link_state(state, LinkState.FAULT, "心跳报告故障")
        elif state.link_state is LinkState.FAULT:
            self._report.set_link_state(state, LinkState.ONLINE, "故障恢复")
        elif hb.first_registration:
            log.info("ip_speaker: terminal %s restarted without dropping its link", state.code)
        self._report.heartbeat(state)
