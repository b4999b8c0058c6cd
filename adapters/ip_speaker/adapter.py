"""The controller side of the IP loudspeaker protocol: a TCP server that terminals connect to.

Owns: binding a connection to a terminal by the physical address in its first heartbeat, sending
start/stop/query/set requests and classifying the replies (``SendResult``), answering every terminal
request with a Reply, heartbeats and the heartbeat-silence check. Task-switch, result and broadcast-record
(0x16) reports become events in ``reports.ReportHandling`` (inherited); order → payload is in ``orders``.

Never retries, never sleeps for pacing, never touches the store or the dispatcher; it only reports
through the ``AdapterSink``. Frames from terminals may use the 11-byte return-channel header
(config ``header_variant = "return_channel"``); frames to terminals always use the 12-byte header.
Physical addresses on the wire are the ASCII bytes of ``TerminalRef.physical_address``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.base import AdapterSink, Capability
from adapters.ip_speaker.codec import (
    DecodeError,
    DecodeErrorKind,
    Frame,
    HeaderVariant,
    PacketType,
    encode_frame,
)
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
from adapters.ip_speaker.terminal_state import TerminalState
from broadcast.clock import Clock
from broadcast.codes import ResourceCode
from broadcast.messages import FailureKind, HeartbeatReport, SendResult
from broadcast.model import DeliveryOrder, LinkState, TerminalRef

log = logging.getLogger(__name__)

DEFAULT_PORT = 9300
LISTEN_BACKLOG = 4096  # a storm of all terminals reconnecting at once must not be refused


class IpSpeakerConfigError(ValueError):
    """The adapter's configuration is unusable; the message says what to fix."""


class IpSpeakerAdapter(ReportHandling):
    """Adapter for IP loudspeakers; see the module docstring. Config keys: host, port (0 = ephemeral),
    platform_code (required), ack_timeout_s, heartbeat_timeout_s, liveness_check_s, header_variant."""

    name = "ip_speaker"
    capabilities = frozenset({Capability.AUDIO_URL, Capability.STOP, Capability.QUERY, Capability.RECEIPTS})

    def __init__(self, config: Mapping[str, Any], clock: Clock) -> None:
        code = str(config.get("platform_code", ""))
        try:
            ResourceCode.parse(code)
        except ValueError as exc:
            raise IpSpeakerConfigError(
                f"ip_speaker 适配器缺少有效的 platform_code（23 位资源编码），当前为 {code!r}："
                "请在配置中填写本平台资源编码"
            ) from exc
        try:
            self._variant = HeaderVariant(str(config.get("header_variant", HeaderVariant.STANDARD)))
        except ValueError as exc:
            raise IpSpeakerConfigError(
                "ip_speaker 的 header_variant 只能是 standard 或 return_channel，"
                f"当前为 {config.get('header_variant')!r}"
            ) from exc
        self._platform_code = code
        self._host = str(config.get("host", "127.0.0.1"))
        self.port = int(config.get("port", DEFAULT_PORT))
        self._ack_timeout = float(config.get("ack_timeout_s", 3.0))
        self._heartbeat_timeout = float(config.get("heartbeat_timeout_s", 90.0))
        self._check_every = float(config.get("liveness_check_s", min(10.0, self._heartbeat_timeout / 3)))
        self._clock = clock
        self._sink: AdapterSink | None = None
        self._terminals: dict[str, TerminalState] = {}
        self._by_address: dict[str, TerminalState] = {}
        self._links: set[Link] = set()
        self._server: asyncio.Server | None = None
        self._checker: asyncio.Task[None] | None = None
        self._sessions = itertools.count(1)
        self._unknown_logged: set[str] = set()
        self._counts = dict.fromkeys(
            (
                "frames_in",
                "frames_out",
                "crc_errors",
                "decode_errors",
                "rejected_reports",
                "ack_timeouts",
                "unknown_terminals",
                "records_in",
            ),
            0,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, sink: AdapterSink, terminals: Sequence[TerminalRef]) -> None:
        self._sink = sink
        for ref in terminals:
            state = TerminalState(ref)
            self._terminals[ref.resource_code] = state
            self._by_address[ref.physical_address] = state
        self._server = await asyncio.start_server(
            self._serve, self._host, self.port, backlog=LISTEN_BACKLOG, limit=1 << 16
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self._heartbeat_timeout > 0 and self._check_every > 0:
            self._checker = asyncio.create_task(self._liveness_loop(), name="ip_speaker-liveness")
        log.info("ip_speaker listening on %s:%d for %d terminals", self._host, self.port, len(terminals))

    async def close(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
            self._checker = None
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            # Shutting down is not news about the terminals: close quietly, no OFFLINE storm.
            if link.terminal is not None and link.terminal.link is link:
                link.terminal.link = None
            link.terminal = None
            self._detach(link, "适配器关闭")
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

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
            "connections": len(self._links),
            "link_states": by_state,
            **self._counts,
        }

    def check_liveness(self) -> int:
        """Mark terminals silent for longer than the heartbeat timeout offline; returns how many."""
        now = self._clock.monotonic()
        dropped = 0
        for state in self._terminals.values():
            link = state.link
            if link is not None and now - state.last_seen > self._heartbeat_timeout:
                self._detach(link, f"{self._heartbeat_timeout:g} 秒未收到心跳")
                dropped += 1
        return dropped

    # -- requests to terminals -----------------------------------------------------------------

    async def _request(self, state: TerminalState, payload: RequestPayload) -> Payload | SendResult:
        link = state.link
        code = state.code
        if link is None or link.closed:
            return SendResult.retry(FailureKind.NOT_CONNECTED, f"终端 {code} 未连接")
        session = next(self._sessions) & 0xFFFFFFFF
        fut: asyncio.Future[Payload] = asyncio.get_running_loop().create_future()
        link.pending[session] = fut
        frame = Frame(
            session, PacketType.REQUEST, self._platform_code, (code,), payload.BUSINESS_TYPE, payload.encode()
        )
        try:
            link.send(encode_frame(frame))
            self._counts["frames_out"] += 1
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

    # -- the connection loop -------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = Link(reader, writer, self._variant)
        self._links.add(link)
        try:
            while not link.closed:
                data = await reader.read(1 << 16)
                if not data:
                    break
                for item in link.decoder.feed(data):
                    if isinstance(item, DecodeError):
                        self._on_decode_error(link, item)
                    else:
                        self._on_frame(link, item)
                    if link.closed:
                        break
        except (ConnectionError, OSError):
            pass
        finally:
            self._detach(link, "连接断开")

    def _detach(self, link: Link, reason: str) -> None:
        self._links.discard(link)
        state = link.terminal
        if state is not None and state.link is link:
            state.link = None
            self._set_link_state(state, LinkState.OFFLINE, reason)
        link.close(reason)

    async def _liveness_loop(self) -> None:
        while True:
            await asyncio.sleep(self._check_every)
            self.check_liveness()

    def _on_decode_error(self, link: Link, err: DecodeError) -> None:
        self._counts["decode_errors"] += 1
        if err.kind is DecodeErrorKind.BAD_CRC:
            self._counts["crc_errors"] += 1
        who = link.terminal.code if link.terminal else link.peer
        if not link.decode_errors_logged:
            link.decode_errors_logged = True
            log.warning("ip_speaker: dropped a bad frame from %s (%s: %s)", who, err.kind, err.detail)
        else:
            log.debug("ip_speaker: dropped a bad frame from %s (%s: %s)", who, err.kind, err.detail)

    def _reply(self, link: Link, frame: Frame, result: int, desc: str = "") -> None:
        out = Frame(
            frame.session_id,
            PacketType.RESPONSE,
            self._platform_code,
            (frame.source,),
            frame.business_type,
            Reply(result, desc).encode(),
        )
        with contextlib.suppress(LinkLost):
            link.send(encode_frame(out))
            self._counts["frames_out"] += 1

    def _on_frame(self, link: Link, frame: Frame) -> None:
        self._counts["frames_in"] += 1
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
        state = link.terminal
        if state is None:
            if isinstance(payload, Heartbeat):
                self._bind(link, frame, payload)
            else:
                self._reply(link, frame, ResultCode.RESOURCE_CODE_INVALID, "未注册：请先发送心跳注册")
                self._detach(link, "未注册先上报")
            return
        if frame.source != state.code:
            self._reject(link, frame, state, "source", f"帧源编码 {frame.source} 与已绑定终端不符")
            return
        if isinstance(payload, Heartbeat):
            self._on_heartbeat(link, frame, state, payload)
        elif isinstance(payload, TaskSwitch):
            self._on_task_switch(link, frame, state, payload)
        elif isinstance(payload, BroadcastResult):
            self._on_result(link, frame, state, payload)
        elif isinstance(payload, BroadcastRecords):
            self._on_records(link, frame, state, payload)
        elif isinstance(payload, FaultReport):
            self._reply(link, frame, ResultCode.OK)
            fault = payload.flag == FaultFlag.FAULT
            self._set_link_state(
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
            self._detach(link, why)
            return
        old = state.link
        if old is not None and old is not link:
            old.terminal = None  # replaced: its closing must not mark the terminal offline
            self._links.discard(old)
            old.close("被同一终端的新连接替换")
        link.terminal = state
        state.link = link
        state.last_seen = self._clock.monotonic()
        self._reply(link, frame, ResultCode.OK)
        detail = "首次注册" if hb.first_registration else "重新连接"
        self._set_link_state(
            state, LinkState.FAULT if hb.work_state == WorkState.FAULT else LinkState.ONLINE, detail
        )
        assert self._sink is not None
        self._sink.report(HeartbeatReport(state.code, self._clock.now()))

    def _on_heartbeat(self, link: Link, frame: Frame, state: TerminalState, hb: Heartbeat) -> None:
        if hb.physical_address.decode("ascii", errors="replace") != state.ref.physical_address:
            self._reject(link, frame, state, "address", "心跳物理地址与已绑定终端不符")
            return
        state.last_seen = self._clock.monotonic()
        self._reply(link, frame, ResultCode.OK)
        if hb.work_state == WorkState.FAULT:
            self._set_link_state(state, LinkState.FAULT, "心跳报告故障")
        elif state.link_state is LinkState.FAULT:
            self._set_link_state(state, LinkState.ONLINE, "故障恢复")
        elif hb.first_registration:
            log.info("ip_speaker: terminal %s restarted without dropping its link", state.code)
        assert self._sink is not None
        self._sink.report(HeartbeatReport(state.code, self._clock.now()))
