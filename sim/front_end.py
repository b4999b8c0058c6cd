"""A simulated street/village front-end (前端) that relays between the county and its terminals, with
the §4.1 protocol both ways and the conventions of ``adapters.front_end.relay``.

Owns: registering with the county by a heartbeat with no targets, forwarding its terminals' heartbeats
and reports (storing results while the county link is down and forwarding them after re-registering),
relaying each county request to every target and answering the county with grouped per-terminal
replies, and a LOCAL village announcement (audio URL or text) that any county start preempts (the
local broadcast is stopped on the terminals first). Reports about the local announcement stay here.
It composes the upward link (``sim.ip_client.UplinkClient``: connect, reconnect with backoff,
heartbeat timer) and the downward TCP server its terminals (``sim.ip_terminal.SimTerminal``) connect to
(``sim.front_end_downlinks.Downlinks``, which hands terminal news up through its ``Uplink`` protocol).
Fault levers: ``go_offline``/``come_online`` (county link), ``drop_next(n)`` (county frames ignored),
``reboot()``.

Never imports the controller core; only tests, benchmarks and the demo import ``sim``. Sleeping here is
deliberate (heartbeat intervals, backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from adapters.front_end.relay import group_by_body
from adapters.ip_speaker.codec import Frame, PacketType, encode_frame
from adapters.ip_speaker.payload_fields import (
    AUX_URL,
    BroadcastType,
    BusinessType,
    PayloadError,
    ResultCode,
    WorkState,
)
from adapters.ip_speaker.payloads import (
    AuxItem,
    BroadcastResult,
    Heartbeat,
    Reply,
    StartBroadcast,
    StopBroadcast,
    TaskSwitch,
)
from broadcast.clock import Clock, SystemClock
from broadcast.model import TerminalRef
from sim.front_end_downlinks import Downlinks, TerminalReport
from sim.ip_client import UplinkClient, backoff_policy

log = logging.getLogger(__name__)

AUX_TEXT = 0x01  # legacy aux item: text
FORWARDED = (
    BusinessType.FAULT_REPORT,
    BusinessType.TASK_SWITCH,
    BusinessType.BROADCAST_RESULT,
    BusinessType.BROADCAST_RECORDS,
)
STORED = (BusinessType.BROADCAST_RESULT, BusinessType.BROADCAST_RECORDS)


class LocalRefused(RuntimeError):
    """A local announcement was refused because a county broadcast is on air here."""


@dataclass
class LocalAnnouncement:
    ebm_id: str
    url: str | None
    text: str | None
    started_at: datetime
    accepted: tuple[str, ...] = ()
    preempted_by: str | None = None
    reports: list[tuple[str, int]] = field(default_factory=list)  # (terminal, business type)
    start: StartBroadcast | None = None
    ends_at: datetime | None = None
    resumed: int = 0  # times it went back on air after a county broadcast preempted it


class FrontEndSim:
    def __init__(
        self,
        code: str,
        terminals: Sequence[TerminalRef],
        county_host: str,
        county_port: int,
        *,
        relay_timeout_s: float = 2.0,
        heartbeat_interval_s: float = 30.0,
        physical_address: str | None = None,
        clock: Clock | None = None,
        reconnect_initial_s: float = 0.05,
        reconnect_max_s: float = 2.0,
    ) -> None:
        self.code = code
        self.refs = {t.resource_code: t for t in terminals}
        self.county_host = county_host
        self.county_port = county_port
        self.relay_timeout_s = relay_timeout_s
        self.heartbeat_interval_s = heartbeat_interval_s
        self.physical_address = physical_address or ("FE" + code[-10:])
        self._clock: Clock = clock or SystemClock()
        self._sessions = itertools.count(1)
        self._uplink = UplinkClient(
            self, name=f"sim-front-end-{code}", retry=backoff_policy(reconnect_initial_s, reconnect_max_s)
        )
        self._downlinks = Downlinks(code, self.refs, self, self._sessions)
        self.port = 0  # where terminals connect; bound by start()
        # ground truth
        self.registrations = 0
        self.relayed: list[tuple[int, str, tuple[str, ...]]] = []  # (business type, ebm id, targets)
        self.locals: list[LocalAnnouncement] = []
        self.rejections: list[Reply] = []
        self.forwarded = 0
        # state
        self._county_active: dict[str, set[str]] = {}  # county EBM -> terminals accepted
        self._registered = asyncio.Event()
        self._binding: int | None = None
        self._power_up = True
        self._unsent: list[Frame] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._drop = 0
        self._local_seq = 0

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def registered(self) -> bool:
        return self._registered.is_set()

    def connected_terminals(self) -> tuple[str, ...]:
        return tuple(sorted(self._downlinks.connected()))

    async def start(self) -> None:
        if not self._downlinks.serving:
            self.port = await self._downlinks.open(self.port)
        self._uplink.start()

    async def stop(self) -> None:
        await self._uplink.stop()
        await self._downlinks.disconnect_all()
        await self._downlinks.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_registered(self, within_s: float) -> bool:
        try:
            async with asyncio.timeout(within_s):
                await self._registered.wait()
        except TimeoutError:
            return False
        return True

    # -- levers --------------------------------------------------------------------------------

    async def go_offline(self) -> None:
        await self._uplink.stop()

    async def come_online(self) -> None:
        await self.start()

    def drop_next(self, n: int = 1) -> None:
        """Silently ignore the next ``n`` frames from the county."""
        self._drop += n

    async def reboot(self) -> None:
        """Power-cycle: both sides drop, everything in memory is forgotten, the terminals reconnect."""
        await self._uplink.stop()
        await self._downlinks.disconnect_all()
        self._county_active.clear()
        self._unsent.clear()
        self._drop = 0
        self._power_up = True
        await self.start()

    # -- local announcement --------------------------------------------------------------------

    def announce(self, *, audio_url: str | None = None, text: str | None = None, minutes: int = 10) -> str:
        """Start a local village announcement on every connected terminal; returns its local EBM id.
        Raises LocalRefused while a county broadcast is on air here."""
        if (audio_url is None) == (text is None):
            raise ValueError("give exactly one of audio_url or text")
        if self._county_active:
            raise LocalRefused(f"前端 {self.code} 正在播发县级应急广播，本地广播被拒绝")
        self._local_seq += 1
        now = self._clock.now()
        ebm_id = f"{self.code}{now:%Y%m%d}{self._local_seq % 10000:04d}"
        aux = AuxItem(AUX_URL, audio_url.encode()) if audio_url else AuxItem(AUX_TEXT, (text or "").encode())
        start = int(now.timestamp())
        sb = StartBroadcast(
            ebm_id, BroadcastType.DAILY, 0, "11111", 0xFF, start, start + minutes * 60, (aux,)
        )
        local = LocalAnnouncement(
            ebm_id, audio_url, text, now, start=sb, ends_at=now + timedelta(minutes=minutes)
        )
        self.locals.append(local)
        task = asyncio.get_running_loop().create_task(self._start_local(local, sb))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return ebm_id

    @property
    def local_active(self) -> LocalAnnouncement | None:
        last = self.locals[-1] if self.locals else None
        return last if last is not None and last.preempted_by is None else None

    async def _start_local(self, local: LocalAnnouncement, sb: StartBroadcast) -> None:
        codes = self._downlinks.connected()
        answers = await asyncio.gather(*(self._relay_one(c, sb.BUSINESS_TYPE, sb.encode()) for c in codes))
        local.accepted = tuple(c for c, body in zip(codes, answers, strict=True) if Reply.decode(body).ok)

    def _preempt_local(self, county_ebm: str) -> None:
        local = self.local_active
        if local is None:
            return
        local.preempted_by = county_ebm
        stop = StopBroadcast(local.ebm_id).encode()
        for code in self._downlinks.connected():  # sent before the county start on the same connection
            with contextlib.suppress(ConnectionError):
                self._downlinks.send(
                    code,
                    Frame(
                        next(self._sessions),
                        PacketType.REQUEST,
                        self.code,
                        (code,),
                        BusinessType.STOP_BROADCAST,
                        stop,
                    ),
                )

    # -- uplink (to the county) ----------------------------------------------------------------

    # what the uplink client asks of its device (sim.ip_client.ClientPeer)

    def endpoint(self) -> tuple[str, int]:
        return self.county_host, self.county_port

    def on_connected(self) -> None:
        self._binding = self._up(
            Heartbeat(WorkState.IDLE, self._power_up, self.physical_address.encode()), ()
        )

    def on_frame(self, frame: Frame) -> None:
        self._on_county_frame(frame)

    def send_heartbeat(self) -> None:
        self._up(Heartbeat(WorkState.IDLE, False, self.physical_address.encode()), ())

    def on_disconnected(self) -> None:
        self._registered.clear()

    # what the terminal side hands up (sim.front_end_downlinks.Uplink)

    def forward_up(self, code: str, frame: Frame) -> None:
        self._forward(code, frame)

    def terminal_report(self, code: str, frame: Frame, report: TerminalReport) -> None:
        """Reports about the local announcement stay here; the rest go up (a result also ends the
        terminal's part in that county broadcast)."""
        local = {a.ebm_id: a for a in self.locals}
        ebm_id = report.ebm_id if isinstance(report, TaskSwitch | BroadcastResult) else None
        if ebm_id is not None and ebm_id in local:
            local[ebm_id].reports.append((code, frame.business_type))
            return
        if isinstance(report, BroadcastResult):
            self._finish(report.ebm_id, (code,))
        self._forward(code, frame)

    def terminal_lost(self, code: str) -> None:
        self._up(Heartbeat(WorkState.OFFLINE, False, self.refs[code].physical_address.encode()), (code,))

    def _send_up(self, frame: Frame) -> bool:
        return self._uplink.send(encode_frame(frame))

    def _up(self, payload: Heartbeat, targets: tuple[str, ...]) -> int | None:
        session = next(self._sessions) & 0xFFFFFFFF
        frame = Frame(
            session, PacketType.REQUEST, self.code, targets, payload.BUSINESS_TYPE, payload.encode()
        )
        return session if self._send_up(frame) else None

    def _forward(self, code: str, frame: Frame) -> None:
        """A terminal's report, forwarded upward (results are kept until the county has them)."""
        out = Frame(
            next(self._sessions) & 0xFFFFFFFF,
            PacketType.REQUEST,
            self.code,
            (code,),
            frame.business_type,
            frame.business_data,
        )
        if self.registered and self._send_up(out):
            self.forwarded += 1
        elif frame.business_type in STORED:
            self._unsent.append(out)

    def _on_county_frame(self, frame: Frame) -> None:
        if self._drop:
            self._drop -= 1
            return
        if frame.is_response:
            if frame.session_id == self._binding:
                self._binding = None
                reply = Reply.decode(frame.business_data)
                if reply.ok:
                    self._on_registered()
            elif frame.business_type != BusinessType.HEARTBEAT:
                with contextlib.suppress(PayloadError):
                    reply = Reply.decode(frame.business_data)
                    if not reply.ok:
                        self.rejections.append(reply)
            return
        task = asyncio.get_running_loop().create_task(self._relay_request(frame))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_registered(self) -> None:
        self.registrations += 1
        self._power_up = False
        self._registered.set()
        for code in self._downlinks.connected():  # tell the county who is here
            self._up(Heartbeat(WorkState.IDLE, False, self.refs[code].physical_address.encode()), (code,))
        unsent, self._unsent = self._unsent, []
        for frame in unsent:
            self._send_up(frame)
            self.forwarded += 1

    async def _relay_request(self, frame: Frame) -> None:
        if not frame.targets:
            self._send_up(
                Frame(
                    frame.session_id,
                    PacketType.RESPONSE,
                    self.code,
                    (),
                    frame.business_type,
                    Reply(ResultCode.UNSUPPORTED, "前端本身不受理该请求").encode(),
                )
            )
            return
        ebm_id = ""
        if frame.business_type in (BusinessType.START_BROADCAST, BusinessType.STOP_BROADCAST):
            try:
                payload = frame.payload()
            except PayloadError as exc:
                body = Reply(ResultCode.PARSE_ERROR, str(exc)).encode()
                self._send_up(
                    Frame(
                        frame.session_id,
                        PacketType.RESPONSE,
                        self.code,
                        frame.targets,
                        frame.business_type,
                        body,
                    )
                )
                return
            assert isinstance(payload, StartBroadcast | StopBroadcast)
            ebm_id = payload.ebm_id
            if isinstance(payload, StartBroadcast):
                self._preempt_local(ebm_id)
        self.relayed.append((frame.business_type, ebm_id, frame.targets))
        codes = list(dict.fromkeys(frame.targets))
        bodies = await asyncio.gather(
            *(self._relay_one(c, frame.business_type, frame.business_data) for c in codes)
        )
        answers = dict(zip(codes, bodies, strict=True))
        if frame.business_type == BusinessType.START_BROADCAST:
            ok = {c for c, b in answers.items() if Reply.decode(b).ok}
            if ok:
                self._county_active.setdefault(ebm_id, set()).update(ok)
        elif frame.business_type == BusinessType.STOP_BROADCAST:
            self._finish(ebm_id, codes)
        for body, group in group_by_body(answers):
            self._send_up(
                Frame(frame.session_id, PacketType.RESPONSE, self.code, group, frame.business_type, body)
            )

    async def _relay_one(self, code: str, business_type: int, data: bytes) -> bytes:
        return await self._downlinks.relay(code, business_type, data, self.relay_timeout_s)

    def _finish(self, ebm_id: str, codes: Sequence[str]) -> None:
        active = self._county_active.get(ebm_id)
        if active is not None:
            active.difference_update(codes)
            if not active:
                del self._county_active[ebm_id]
                if not self._county_active:
                    self._resume_local()

    def _resume_local(self) -> None:
        """The county is done here: a local announcement it cut off goes back on air (from the start)
        while it is still within its time."""
        local = self.locals[-1] if self.locals else None
        if local is None or local.preempted_by is None or local.start is None:
            return
        if local.ends_at is not None and self._clock.now() >= local.ends_at:
            return
        local.preempted_by = None
        local.resumed += 1
        task = asyncio.get_running_loop().create_task(self._start_local(local, local.start))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
