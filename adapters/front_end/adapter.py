"""The county side of relaying through street/village front-ends (前端): a TCP server that front-ends
connect to (like terminals do), speaking the §4.1 protocol both ways with the conventions in
``adapters.front_end.relay``.

Owns: binding a connection to a front-end by the source code of its first heartbeat; coalescing the
dispatcher's per-terminal ``deliver``/``stop`` calls into ONE instruction per front-end addressed to
many resource codes; splitting the front-end's grouped replies back into per-terminal ``SendResult``s;
turning relayed reports (heartbeat, fault, task switch, result, records) into per-terminal link states
and delivery events, exactly as the direct IP adapter does. Terminals are the ``TerminalRef``s with
``adapter = "front_end"``; each names its front-end in ``TerminalRef.front_end``.

The TCP shell (listener, links, liveness loop, counters) is ``adapters.ip_speaker.server.FrameServer``,
the same one the direct IP adapter runs on; this adapter composes it and keeps which front-end is bound
to which link.

Never retries, never sleeps for pacing, never touches the store or the dispatcher; reports only
through the ``AdapterSink``. Config keys (``CONFIG_SCHEMA``): host, port (0 = ephemeral), platform_code
(required), ack_timeout_s (5.0; must exceed the front-end's own relay timeout), batch_window_s (0.005),
heartbeat_timeout_s (90), liveness_check_s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from adapters.base import AdapterSink, Capability, ConfigKey
from adapters.front_end import reports
from adapters.front_end.batch import Batch, Batcher, BatchKey
from adapters.front_end.relay import chunks, classify_relayed
from adapters.front_end.state import Collector, FrontEndState
from adapters.ip_speaker.codec import DecodeError, Frame, PacketType
from adapters.ip_speaker.link import Link, LinkLost
from adapters.ip_speaker.orders import start_payload
from adapters.ip_speaker.payload_fields import BusinessType, FaultFlag, PayloadError, ResultCode, WorkState
from adapters.ip_speaker.payloads import (
    BroadcastRecords,
    BroadcastResult,
    FaultReport,
    Heartbeat,
    Reply,
    StopBroadcast,
    TaskSwitch,
    UnsupportedBusiness,
)
from adapters.ip_speaker.server import FrameServer, ServerSettings
from adapters.ip_speaker.terminal_state import TerminalState
from broadcast.clock import Clock
from broadcast.messages import DeliveryReport, FailureKind, HeartbeatReport, LinkReport, SendResult
from broadcast.model import DeliveryOrder, LinkState, TerminalRef

log = logging.getLogger(__name__)

DEFAULT_PORT = 9310
_NUM = (int, float)

# The keys of [adapters.front_end] (checked by the registry before the adapter is built).
CONFIG_SCHEMA: dict[str, ConfigKey] = {
    "host": ConfigKey((str,)),
    "port": ConfigKey((int,)),
    "ack_timeout_s": ConfigKey(_NUM, doc="longer than the front-end's own relay timeout"),
    "heartbeat_timeout_s": ConfigKey(_NUM),
    "liveness_check_s": ConfigKey(_NUM),
    "batch_window_s": ConfigKey(_NUM, doc="collect per-terminal sends into one instruction per front-end"),
}


class FrontEndConfigError(ValueError):
    """The adapter's configuration is unusable; the message says what to fix."""


class FrontEndAdapter:
    """See the module docstring."""

    name = "front_end"
    capabilities = frozenset({Capability.AUDIO_URL, Capability.STOP, Capability.RECEIPTS})
    config_schema: ClassVar[Mapping[str, ConfigKey]] = CONFIG_SCHEMA

    def __init__(self, config: Mapping[str, Any], clock: Clock) -> None:
        settings = ServerSettings.read(
            "front_end",
            config,
            default_port=DEFAULT_PORT,
            default_ack_timeout_s=5.0,
            error=FrontEndConfigError,
        )
        self._platform_code = settings.platform_code
        self._ack_timeout = settings.ack_timeout_s
        self._clock = clock
        self._batcher = Batcher(float(config.get("batch_window_s", 0.005)), self._flush)
        self._server = FrameServer(
            "front_end",
            settings,
            self,
            clock,
            counters=(
                "frames_in",
                "frames_out",
                "decode_errors",
                "rejected_reports",
                "ack_timeouts",
                "unknown_front_ends",
                "relayed_targets",
            ),
        )
        self._counts = self._server.counts
        self._sink: AdapterSink | None = None
        self._front_ends: dict[str, FrontEndState] = {}
        self._terminals: dict[str, tuple[TerminalState, FrontEndState]] = {}
        self._by_link: dict[Link, FrontEndState] = {}
        self._collecting: dict[tuple[int, int], tuple[Collector, asyncio.Event]] = {}

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def server(self) -> FrameServer:
        """The §4.1 server shell this adapter runs on."""
        return self._server

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, sink: AdapterSink, terminals: Sequence[TerminalRef]) -> None:
        self._sink = sink
        for ref in terminals:
            if not ref.front_end:
                log.error(
                    "front_end: terminal %s names no front-end; it cannot be reached", ref.resource_code
                )
                continue
            fe = self._front_ends.setdefault(ref.front_end, FrontEndState(ref.front_end))
            state = TerminalState(ref)
            fe.terminals[ref.resource_code] = state
            self._terminals[ref.resource_code] = (state, fe)
        await self._server.start()
        log.info(
            "front_end listening on %s:%d for %d front-ends, %d terminals",
            self._server.settings.host,
            self.port,
            len(self._front_ends),
            len(self._terminals),
        )

    async def close(self) -> None:
        await self._batcher.close()
        await self._server.close()

    # -- the Adapter API -----------------------------------------------------------------------

    def is_reachable(self, terminal_code: str) -> bool:
        found = self._terminals.get(terminal_code)
        if found is None:
            return False
        state, fe = found
        return fe.connected and state.link_state is not LinkState.OFFLINE

    async def deliver(self, order: DeliveryOrder, terminal_code: str) -> SendResult:
        found = self._terminals.get(terminal_code)
        if found is None:
            return self._not_mine(terminal_code)
        state, fe = found
        if not fe.connected:
            return SendResult.retry(
                FailureKind.NOT_CONNECTED, f"前端 {fe.code} 未连接（终端 {terminal_code}）"
            )
        state.remember_delivery(order.ebm_id)
        key = BatchKey(fe.code, BusinessType.START_BROADCAST, order.ebm_id)
        return await self._batcher.submit(key, start_payload(order), terminal_code)

    def adopt(self, order: DeliveryOrder, terminal_code: str) -> None:
        found = self._terminals.get(terminal_code)
        if found is not None:
            found[0].remember_delivery(order.ebm_id)

    async def stop(self, ebm_id: str, terminal_code: str) -> SendResult:
        found = self._terminals.get(terminal_code)
        if found is None:
            return self._not_mine(terminal_code)
        state, fe = found
        state.stopped.add(ebm_id)
        if not fe.connected:
            return SendResult.retry(
                FailureKind.NOT_CONNECTED, f"前端 {fe.code} 未连接（终端 {terminal_code}）"
            )
        key = BatchKey(fe.code, BusinessType.STOP_BROADCAST, ebm_id)
        return await self._batcher.submit(key, StopBroadcast(ebm_id), terminal_code)

    def status(self) -> dict[str, Any]:
        by_state: dict[str, int] = {}
        for state, _ in self._terminals.values():
            by_state[state.link_state.value] = by_state.get(state.link_state.value, 0) + 1
        return {
            "port": self.port,
            "front_ends": len(self._front_ends),
            "front_ends_connected": sum(1 for f in self._front_ends.values() if f.connected),
            "terminals": len(self._terminals),
            "link_states": by_state,
            "batches": self._batcher.batches_sent,
            **self._counts,
        }

    def check_liveness(self) -> int:
        """Drop front-ends silent for longer than the heartbeat timeout; returns how many."""
        timeout = self._server.settings.heartbeat_timeout_s
        seen = [(fe.link, fe.last_seen) for fe in self._front_ends.values() if fe.link is not None]
        return self._server.drop_silent(seen, f"{timeout:g} 秒未收到前端心跳")

    # -- one instruction for many terminals ------------------------------------------------------

    async def _flush(self, batch: Batch) -> None:
        fe = self._front_ends[batch.key.front_end]
        link = fe.link
        if link is None or link.closed:
            batch.resolve_rest(SendResult.retry(FailureKind.NOT_CONNECTED, f"前端 {fe.code} 未连接"))
            return
        for targets in chunks(batch.waiters):
            await self._relay(link, fe, batch, targets)

    async def _relay(self, link: Link, fe: FrontEndState, batch: Batch, targets: tuple[str, ...]) -> None:
        session = self._server.next_session()
        collector = Collector(set(targets))
        done = asyncio.Event()
        self._collecting[(link.id, session)] = (collector, done)
        payload = batch.payload
        frame = Frame(
            session, PacketType.REQUEST, self._platform_code, targets, payload.BUSINESS_TYPE, payload.encode()
        )
        try:
            self._server.send(link, frame)
            self._counts["relayed_targets"] += len(targets)
            await link.drain_if_needed()
            async with asyncio.timeout(self._ack_timeout):
                await done.wait()
        except TimeoutError:
            self._counts["ack_timeouts"] += 1
        except (LinkLost, ConnectionError, OSError):
            pass
        finally:
            self._collecting.pop((link.id, session), None)
        for code in targets:
            body = collector.answers.get(code)
            if body is not None:
                try:
                    reply = Reply.decode(body)
                except PayloadError as exc:
                    batch.resolve(
                        code,
                        SendResult.permanent(FailureKind.PROTOCOL, f"前端 {fe.code} 应答无法解析：{exc}"),
                    )
                    continue
                batch.resolve(code, classify_relayed(code, fe.code, reply))
            elif link.closed:
                batch.resolve(
                    code,
                    SendResult.retry(FailureKind.NOT_CONNECTED, f"前端 {fe.code} 的连接在等待应答时断开"),
                )
            else:
                batch.resolve(
                    code,
                    SendResult.retry(
                        FailureKind.TIMEOUT,
                        f"前端 {fe.code} 在 {self._ack_timeout:g} 秒内未应答终端 {code}（会话 {session}）",
                    ),
                )

    def _not_mine(self, terminal_code: str) -> SendResult:
        return SendResult.permanent(
            FailureKind.UNSUPPORTED, f"终端 {terminal_code} 不由 front_end 适配器管理"
        )

    # -- what the server hands over (FrameHandler) ---------------------------------------------

    def on_decode_error(self, link: Link, err: DecodeError) -> None:
        log.debug("front_end: dropped a bad frame from %s: %s", link.peer, err.detail)

    def on_detach(self, link: Link, reason: str) -> None:
        fe = self._by_link.pop(link, None)
        for key, (_, done) in list(self._collecting.items()):
            if key[0] == link.id:
                done.set()
        if fe is not None and fe.link is link:
            fe.link = None
            log.info("front_end: front-end %s disconnected (%s)", fe.code, reason)
            if self._sink is not None:
                self._sink.report(
                    LinkReport(fe.code, LinkState.OFFLINE, self._clock.now(), f"前端 {fe.code} {reason}")
                )
            for state in fe.terminals.values():
                self._set_link_state(state, LinkState.OFFLINE, f"前端 {fe.code} {reason}")

    def on_shutdown(self) -> None:
        for link, fe in self._by_link.items():
            if fe.link is link:
                fe.link = None  # shutting down is not news about the terminals
        self._by_link.clear()

    def _reply(self, link: Link, frame: Frame, result: int, desc: str = "") -> None:
        self._server.reply(link, frame, result, desc, frame.targets)

    def on_frame(self, link: Link, frame: Frame) -> None:
        if frame.is_response:
            found = self._collecting.get((link.id, frame.session_id))
            if found is not None and found[0].add(frame.targets, frame.business_data):
                found[1].set()
            return
        try:
            payload = frame.payload()
        except UnsupportedBusiness as exc:
            self._reply(link, frame, ResultCode.UNSUPPORTED, str(exc))
            return
        except PayloadError as exc:
            self._reply(link, frame, ResultCode.PARSE_ERROR, str(exc))
            return
        fe = self._by_link.get(link)
        if fe is None:
            if isinstance(payload, Heartbeat) and not frame.targets:
                self._bind(link, frame, payload)
            else:
                self._reply(link, frame, ResultCode.RESOURCE_CODE_INVALID, "未注册：前端请先发送心跳注册")
                self._server.detach(link, "未注册先上报")
            return
        if frame.source != fe.code:
            self._refuse(link, frame, None, "source", f"帧源编码 {frame.source} 与已绑定前端 {fe.code} 不符")
            return
        fe.last_seen = self._clock.monotonic()
        if isinstance(payload, Heartbeat) and not frame.targets:
            self._reply(link, frame, ResultCode.OK)
            return
        if len(frame.targets) != 1:
            self._refuse(link, frame, None, "targets", "转发的终端上报必须且只能指明一个终端")
            return
        target = fe.terminals.get(frame.targets[0])
        if target is None:
            self._refuse(link, frame, None, "target", f"终端 {frame.targets[0]} 不在前端 {fe.code} 之后")
            return
        self._on_report(link, frame, fe, target, payload)

    def _on_report(
        self, link: Link, frame: Frame, fe: FrontEndState, state: TerminalState, payload: object
    ) -> None:
        now = self._clock.now()
        assert self._sink is not None
        if isinstance(payload, Heartbeat):
            self._reply(link, frame, ResultCode.OK)
            if payload.work_state == WorkState.OFFLINE:
                self._set_link_state(state, LinkState.OFFLINE, f"前端 {fe.code} 报告终端离线")
                return
            new = LinkState.FAULT if payload.work_state == WorkState.FAULT else LinkState.ONLINE
            self._set_link_state(state, new, f"经前端 {fe.code}")
            self._sink.report(HeartbeatReport(state.code, now))
            return
        if isinstance(payload, FaultReport):
            self._reply(link, frame, ResultCode.OK)
            fault = payload.flag == FaultFlag.FAULT
            self._set_link_state(
                state,
                LinkState.FAULT if fault else LinkState.ONLINE,
                payload.desc or f"故障类型 {payload.fault_type}",
            )
            return
        out: list[DeliveryReport] | reports.Refusal
        if isinstance(payload, TaskSwitch):
            out = reports.task_switch(state, payload, now, fe.code)
        elif isinstance(payload, BroadcastResult):
            out = reports.result(state, payload, now, fe.code)
        elif isinstance(payload, BroadcastRecords):
            out = reports.records(state, payload, now, fe.code)
        else:
            self._reply(link, frame, ResultCode.UNSUPPORTED, "平台不受理该业务类型的请求")
            return
        if isinstance(out, reports.Refusal):
            self._refuse(link, frame, state, out.kind, out.detail)
            return
        self._reply(link, frame, ResultCode.OK)
        for event in out:
            self._sink.report(event)

    def _bind(self, link: Link, frame: Frame, hb: Heartbeat) -> None:
        fe = self._front_ends.get(frame.source)
        if fe is None:
            self._counts["unknown_front_ends"] += 1
            log.warning("front_end: refused unknown front-end %s at %s", frame.source, link.peer)
            self._reply(
                link,
                frame,
                ResultCode.RESOURCE_CODE_INVALID,
                f"前端 {frame.source} 之后没有登记为转发的终端：请在终端清单中登记",
            )
            self._server.detach(link, "未知前端")
            return
        old = fe.link
        if old is not None and old is not link:
            self._by_link.pop(old, None)
            self._server.drop(old, "被同一前端的新连接替换")
        fe.link = link
        fe.last_seen = self._clock.monotonic()
        fe.physical_address = hb.physical_address.decode("ascii", errors="replace")
        self._by_link[link] = fe
        self._reply(link, frame, ResultCode.OK)
        log.info("front_end: front-end %s registered from %s", fe.code, link.peer)
        # The front-end's own health, recorded like a terminal's (transitions only).
        if self._sink is not None and old is None:
            self._sink.report(
                LinkReport(fe.code, LinkState.ONLINE, self._clock.now(), f"前端 {fe.code} 已连接")
            )

    def _refuse(self, link: Link, frame: Frame, state: TerminalState | None, kind: str, detail: str) -> None:
        self._counts["rejected_reports"] += 1
        self._reply(link, frame, ResultCode.PARAM_ILLEGAL, detail)
        if state is None or kind not in state.lies_logged:
            if state is not None:
                state.lies_logged.add(kind)
            log.warning("front_end: rejected a report: %s", detail)

    def _set_link_state(self, state: TerminalState, new: LinkState, detail: str) -> None:
        if state.link_state is new:
            return
        old, state.link_state = state.link_state, new
        first = not state.seen_online and new is LinkState.ONLINE
        state.seen_online = state.seen_online or new is not LinkState.OFFLINE
        log.log(
            logging.DEBUG if first else logging.INFO,
            "front_end: terminal %s %s → %s (%s)",
            state.code,
            old,
            new,
            detail,
        )
        if self._sink is not None:
            self._sink.report(LinkReport(state.code, new, self._clock.now(), detail))
