"""A simulated IP loudspeaker terminal (大喇叭/音柱) speaking the real 0xFEFD protocol to the controller,
with its own ground truth of what it played and named fault levers (pyatv-style fake device).

Owns: registering by heartbeat, answering start/stop/query/set, the fault levers and the reports. The
link itself (connect, reconnect with backoff, heartbeat timer) is ``sim.ip_client.UplinkClient``;
streaming and "playing" the audio (playing starts with the first audio bytes — a live programme's
opening chime — and lasts its real duration × ``time_scale``, at least until the stream ends) is
``sim.ip_playback.Playback``. ``SimTerminal`` composes both and hands each the small protocol it asks
for. Uses the same codec as the adapter.

Never imports the controller core; only tests, the benchmark and the demo runner import ``sim``.
Sleeping here is deliberate: it stands in for playback time, heartbeat intervals and backoff.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable

import aiohttp

from adapters.ip_speaker.codec import Frame, HeaderVariant, PacketType, encode_frame
from adapters.ip_speaker.params import Query, QueryReply, ReturnAddress, SetParams
from adapters.ip_speaker.payload_fields import (
    AddressType,
    FaultFlag,
    PayloadError,
    RecordState,
    ResultCode,
    WorkState,
)
from adapters.ip_speaker.payloads import (
    BroadcastRecord,
    BroadcastRecords,
    BroadcastResult,
    FaultReport,
    Heartbeat,
    Reply,
    RequestPayload,
    StartBroadcast,
    StopBroadcast,
    TaskSwitch,
)
from broadcast.clock import Clock, SystemClock
from broadcast.model import TerminalRef
from sim.ip_client import UplinkClient, backoff_policy
from sim.ip_playback import STOPPED, Playback, PlayRecord

log = logging.getLogger(__name__)

SW_VERSION = "sim-1.0"


class SimTerminal:
    def __init__(
        self,
        ref: TerminalRef,
        host: str,
        port: int,
        *,
        http: aiohttp.ClientSession,
        time_scale: float = 1.0,
        heartbeat_interval_s: float = 30.0,
        header_variant: HeaderVariant = HeaderVariant.STANDARD,
        clock: Clock | None = None,
        reconnect_initial_s: float = 0.05,
        reconnect_max_s: float = 2.0,
        on_registered: Callable[[SimTerminal], None] | None = None,
        stream_stall_s: float = 60.0,
    ) -> None:
        self.ref = ref
        self.code = ref.resource_code
        self.host = host
        self.port = port
        self.heartbeat_interval_s = heartbeat_interval_s
        self._variant = header_variant
        self._clock: Clock = clock or SystemClock()
        self._on_registered = on_registered
        self._uplink = UplinkClient(
            self, name=f"sim-terminal-{self.code}", retry=backoff_policy(reconnect_initial_s, reconnect_max_s)
        )
        self._playback = Playback(
            self.code, http, self._clock, self, time_scale=time_scale, stream_stall_s=stream_stall_s
        )
        # ground truth
        self.frames_received = 0
        self.frames_sent = 0
        self.registrations = 0  # OK replies to the heartbeat that opens a link
        self._unsent_results: list[BroadcastResult] = []
        self.first_registrations = 0  # of which carried the power-up flag
        self.rejections: list[Reply] = []  # non-OK platform replies to our reports
        self.volume = 80
        self.assigned_code: str | None = None  # a resource code set by 0x12
        self.work_state = WorkState.IDLE
        # link
        self._power_up = True
        self._registered = asyncio.Event()
        self._sessions = itertools.count(1)
        self._awaiting: dict[int, int] = {}  # our request session → business type
        self._binding_session: int | None = None
        # levers
        self._drop = 0
        self._delay_s = 0.0
        self._nack: list[int] = []
        self._reject_all: int | None = None
        self._corrupt = 0
        self._lies: list[tuple[BroadcastResult, str | None]] = []

    # -- what playback did (ground truth) ------------------------------------------------------

    @property
    def playing(self) -> str | None:
        return self._playback.playing

    @property
    def played(self) -> list[PlayRecord]:
        return self._playback.played

    @property
    def duplicates_ignored(self) -> int:
        return self._playback.duplicates_ignored

    @property
    def fetch_failures(self) -> int:
        return self._playback.fetch_failures

    @property
    def time_scale(self) -> float:
        return self._playback.time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        self._playback.time_scale = value

    @property
    def stream_stall_s(self) -> float:
        return self._playback.stream_stall_s

    @stream_stall_s.setter
    def stream_stall_s(self, value: float) -> None:
        self._playback.stream_stall_s = value

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def registered(self) -> bool:
        return self._registered.is_set()

    async def start(self) -> None:
        self._uplink.start()

    async def stop(self) -> None:
        await self._uplink.stop()
        self._playback.cancel(STOPPED)
        await self._playback.wait()

    async def wait_registered(self, within_s: float) -> bool:
        try:
            async with asyncio.timeout(within_s):
                await self._registered.wait()
        except TimeoutError:
            return False
        return True

    # -- fault levers --------------------------------------------------------------------------

    async def go_offline(self) -> None:
        """Drop the link and stay away until ``come_online()``."""
        await self._uplink.stop()

    async def come_online(self) -> None:
        await self.start()

    async def reboot(self) -> None:
        """Drop the link, forget what it played (not the ground truth), re-register as powered up."""
        await self._uplink.stop()
        self._playback.cancel(STOPPED, report=False)
        self._playback.forget()
        self._drop, self._delay_s, self._nack, self._reject_all, self._corrupt = 0, 0.0, [], None, 0
        self.work_state = WorkState.IDLE
        self._power_up = True
        await self.start()

    def drop_next(self, n: int = 1) -> None:
        """Silently ignore the next ``n`` frames received."""
        self._drop += n

    def delay(self, ms: float) -> None:
        """Delay every reply by ``ms`` milliseconds (0 to stop)."""
        self._delay_s = ms / 1000

    def nack_next(self, n: int = 1, result: int = ResultCode.BUSY) -> None:
        self._nack.extend([int(result)] * n)

    def reject_all(self, result: int = ResultCode.TERMINAL_ERROR) -> None:
        self._reject_all = int(result)

    def accept_all(self) -> None:
        self._reject_all = None
        self._nack.clear()

    def corrupt_next_frame(self) -> None:
        """Flip the last byte before the CRC in the next frame sent, so its CRC check fails."""
        self._corrupt += 1

    def lie_next_result(
        self, ebm_id: str, *, wrong_source: bool = False, end_before_start: bool = False
    ) -> None:
        """Send a successful BroadcastResult for ``ebm_id`` (never received), now or on registration."""
        now = self._now()
        end = now - 60 if end_before_start else now
        report = BroadcastResult(ebm_id, 1, "播发成功", now, end, 1, now)
        source = self.code[:-1] + ("1" if self.code[-1] != "1" else "2") if wrong_source else None
        self._lies.append((report, source))
        self._flush_lies()

    def report_fault(self, fault_type: int = 3, desc: str = "功放输出过低") -> None:
        self.work_state = WorkState.FAULT
        self._request(FaultReport(FaultFlag.FAULT, fault_type, desc, self._now()))

    def recover(self) -> None:
        self.work_state = WorkState.BROADCASTING if self.playing else WorkState.IDLE
        self._request(FaultReport(FaultFlag.RECOVERED, 0, "", self._now()))

    def send_heartbeat(self) -> None:
        self._request(Heartbeat(self.work_state, False, self._address()))

    def report_records(self, channel: int = 1) -> None:
        """Send a 0x16 broadcast-record report of everything in the ground truth (the periodic report)."""
        records = []
        for rec in self.played[-255:]:
            if rec.ended_at is None:
                state = RecordState.BROADCASTING
            else:
                state = RecordState.SUCCESS if rec.completed else RecordState.FAILED
            start = int(rec.started_at.timestamp())
            end = int((rec.ended_at or rec.started_at).timestamp())
            records.append(
                BroadcastRecord(
                    channel, state, rec.ebm_id, 1, 4, 0, "11111", start, end, self.volume, (self.code,)
                )
            )
        self._request(BroadcastRecords(self.code, tuple(records)))

    def _on_set(self, sp: SetParams) -> Reply:
        """0x12: volume now; a return address for the next connection; a resource code only when it
        names this device's physical address (recorded in ``assigned_code``, the link keeps its code)."""
        volume, address, code = sp.volume, sp.return_address, sp.resource_code
        if volume is not None and not 0 <= volume <= 100:
            return Reply(ResultCode.PARAM_ILLEGAL, f"音量 {volume} 超出 0-100")
        if code is not None and code[1] is not None and code[1] != self._address():
            return Reply(ResultCode.PARAM_ILLEGAL, "物理地址与本终端不符")
        if address is not None:
            if address.kind != AddressType.IPV4:
                return Reply(ResultCode.UNSUPPORTED, "仅支持 IPv4 回传地址")
            self.host, self.port = address.host, address.port
        if volume is not None:
            self.volume = volume
        if code is not None:
            self.assigned_code = code[0]
        return Reply(ResultCode.OK)

    # -- link ----------------------------------------------------------------------------------

    def _address(self) -> bytes:
        return self.ref.physical_address.encode("ascii")

    def _now(self) -> int:
        return int(self._clock.now().timestamp())

    # what the uplink client asks of its device (sim.ip_client.ClientPeer)

    def endpoint(self) -> tuple[str, int]:
        return self.host, self.port

    def on_connected(self) -> None:
        self._binding_session = self._request(Heartbeat(self.work_state, self._power_up, self._address()))

    def on_disconnected(self) -> None:
        self._registered.clear()
        self._awaiting.clear()

    # what playback asks of its terminal (sim.ip_playback.PlaybackLink)

    def answer_start(self, frame: Frame, reply: Reply) -> None:
        self._respond(frame, reply)

    def send_task_switch(self, ts: TaskSwitch) -> None:
        self._request(ts)

    def send_result(self, result: BroadcastResult) -> None:
        self._report(result)

    def set_work_state(self, state: WorkState) -> None:
        self.work_state = state

    def _send(self, frame: Frame) -> bool:
        if not self._uplink.connected:
            return False
        data = encode_frame(frame, self._variant)
        if self._corrupt:
            self._corrupt -= 1
            pos = len(data) - 5  # the last byte before the CRC: only the checksum can notice
            data = data[:pos] + bytes((data[pos] ^ 0xFF,)) + data[pos + 1 :]
        self._uplink.send(data)
        self.frames_sent += 1
        return True

    def _request(self, payload: RequestPayload, source: str | None = None) -> int | None:
        session = next(self._sessions) & 0xFFFFFFFF
        frame = Frame(
            session, PacketType.REQUEST, source or self.code, (), payload.BUSINESS_TYPE, payload.encode()
        )
        if not self._send(frame):
            return None
        self._awaiting[session] = frame.business_type
        return session

    def _report(self, result: BroadcastResult) -> None:
        """Results are stored and forwarded, as real terminals do: a report made while the link is
        down goes out after the next registration."""
        if not self.registered or self._request(result) is None:
            self._unsent_results.append(result)

    def _flush_lies(self) -> None:
        if not self.registered:
            return
        unsent, self._unsent_results = self._unsent_results, []
        for result in unsent:
            self._report(result)
        lies, self._lies = self._lies, []
        for report, source in lies:
            self._request(report, source)

    # -- incoming ------------------------------------------------------------------------------

    def on_frame(self, frame: Frame) -> None:
        self.frames_received += 1
        if self._drop:
            self._drop -= 1
            return
        if frame.is_response:
            self._on_reply(frame)
            return
        try:
            payload = frame.payload()
        except PayloadError as exc:
            self._respond(frame, Reply(ResultCode.PARSE_ERROR, str(exc)))
            return
        if isinstance(payload, StartBroadcast):
            self._on_start(frame, payload)
        elif isinstance(payload, StopBroadcast):
            self._playback.stop(payload.ebm_id)
            self._respond(frame, Reply(ResultCode.OK))
        elif isinstance(payload, Query):
            reply = QueryReply.build(
                volume=self.volume,
                resource_code=self.code,
                physical_address=self._address(),
                work_state=self.work_state,
                sw_version=SW_VERSION,
                only=payload.tags,
                return_address=ReturnAddress(AddressType.IPV4, self.host, self.port),
            )
            self._respond(frame, reply)
        elif isinstance(payload, SetParams):
            self._respond(frame, self._on_set(payload))
        else:
            self._respond(frame, Reply(ResultCode.UNSUPPORTED, "终端不受理该业务"))

    def _on_start(self, frame: Frame, sb: StartBroadcast) -> None:
        """The levers and the addressing first; then playback decides (play, busy or duplicate)."""
        if self._nack:
            self._respond(frame, Reply(self._nack.pop(0), "终端忙"))
            return
        if self._reject_all is not None:
            self._respond(frame, Reply(self._reject_all, "终端拒绝"))
            return
        if frame.targets and self.code not in frame.targets:
            self._respond(frame, Reply(ResultCode.RESOURCE_CODE_INVALID, "目标不含本终端"))
            return
        self._playback.start(frame, sb, self._delay_s)

    def _on_reply(self, frame: Frame) -> None:
        btype = self._awaiting.pop(frame.session_id, None)
        if btype is None:
            return
        try:
            reply = frame.payload()
        except PayloadError:
            return
        if not isinstance(reply, Reply):
            return
        if frame.session_id == self._binding_session:
            self._binding_session = None
            if reply.ok:
                self.registrations += 1
                if self._power_up:
                    self.first_registrations += 1
                self._power_up = False
                self._registered.set()
                if self._on_registered is not None:
                    self._on_registered(self)
                self._flush_lies()
            return
        if not reply.ok:
            self.rejections.append(reply)

    def _respond(self, frame: Frame, reply: Reply | QueryReply) -> None:
        out = Frame(frame.session_id, PacketType.RESPONSE, self.code, (), frame.business_type, reply.encode())
        if self._delay_s > 0:
            asyncio.get_running_loop().call_later(self._delay_s, self._send, out)
        else:
            self._send(out)
