"""Rigs for the adapter contract suite: each pairs one adapter with its simulator over real loopback
sockets and exposes the same levers (transient fault, permanent fault, reboot) and ground truth.
Also used by tests/adapters/test_front_end_adapter.py and tests/sim/test_front_end_sim.py."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from adapters.base import Adapter
from adapters.cable_tv.adapter import CableTvAdapter
from adapters.cable_tv.link import NackReason
from adapters.fm.adapter import FmAdapter
from adapters.front_end.adapter import FrontEndAdapter
from adapters.ip_speaker.adapter import IpSpeakerAdapter
from adapters.ip_speaker.payload_fields import ResultCode
from broadcast.clock import ManualClock
from broadcast.model import (
    DeliveryOrder,
    DeliveryStatus,
    MsgType,
    Priority,
    Severity,
    TerminalKind,
    TerminalRef,
)
from sim.cable_inserter import CableInserterSim
from sim.fm_encoder import FmEncoderSim
from sim.front_end import FrontEndSim
from sim.ip_terminal import SimTerminal
from sim.serial_pty import TcpHost
from tests.helpers.poll import until
from tests.helpers.sink import RecordingSink

PLATFORM = "45301810000000101010101"
FRONT_END = "65301810010010399010101"
TRANSMITTER = "45301810000000301010301"
HEAD_END = "45301810000000302010301"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
FRAME_LEN = 417  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz


def mp3(frames: int) -> bytes:
    return (bytes.fromhex("FFFB9000") + bytes(FRAME_LEN - 4)) * frames


def terminal_ref(i: int, *, adapter: str = "ip_speaker", front_end: str = "") -> TerminalRef:
    return TerminalRef(
        resource_code=f"6530181001001031401{i // 100:02d}{i % 100:02d}",
        area_code="530181001001",
        name=f"测试音柱{i}",
        kind=TerminalKind.COMMUNITY,
        physical_address=f"A0B0C0D0{i:04X}",
        adapter=adapter,
        front_end=front_end,
    )


@asynccontextmanager
async def audio_server() -> AsyncIterator[str]:
    """An HTTP server with /a.mp3 (≈0.5 s) and /long.mp3 (≈52 s); yields its base URL."""

    async def short(_: web.Request) -> web.Response:
        return web.Response(body=mp3(20), content_type="audio/mpeg")

    async def long(_: web.Request) -> web.Response:
        return web.Response(body=mp3(2000), content_type="audio/mpeg")

    app = web.Application()
    app.router.add_get("/a.mp3", short)
    app.router.add_get("/long.mp3", long)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


_ebm_seq = itertools.count(1)


def make_order(audio_url: str, *, start: datetime = T0, minutes: int = 60, **kw: Any) -> DeliveryOrder:
    fields: dict[str, Any] = {
        "ebm_id": f"{PLATFORM}20261101{next(_ebm_seq) % 10000:04d}",
        "msg_type": MsgType.ACTUAL,
        "severity": Severity.RED,
        "event_type": "11B03",
        "priority": Priority.EMERGENCY,
        "start_at": start,
        "end_at": start + timedelta(minutes=minutes),
        "title": "暴雨红色预警",
        "audio_url": audio_url,
        "audio": None,
        "volume": 90,
    }
    fields.update(kw)
    return DeliveryOrder(**fields)


class Driver:
    """One adapter + its simulator, seen through the same levers."""

    name = ""
    code = ""
    adapter: Adapter

    def __init__(self, audio_base: str) -> None:
        self.audio_base = audio_base
        self.sink = RecordingSink()
        self.clock = ManualClock(T0)

    # How the device treats a higher item delivered while a lower one is on air (the contract's
    # preemption scenario asserts exactly this; the dispatcher never sends a lower or equal item to a
    # device it believes busy, so what a device does with one is not part of the contract):
    # INTERRUPTS  IP terminal (direct or behind a front-end): the lower one stops without a report of
    #             its own (TaskSwitch end only); re-delivered, it plays again from the start.
    # REPLACES    FM: newest takes the transmitter, the previous is reported CANCELLED (PREEMPTED) —
    #             final in the core's lifecycle, so it does not resume there (see the issue report).
    # CARRIES_ALL cable: the inserter carries both; the lower one stays inserted (no new PLAYING when
    #             re-delivered) and is withdrawn at its own end time.
    preemption = ""

    def order(self, *, long: bool = False, **kw: Any) -> DeliveryOrder:
        return make_order(f"{self.audio_base}/{'long' if long else 'a'}.mp3", **kw)

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def transient_fault(self) -> None:
        """The next delivery gets no answer in time."""
        raise NotImplementedError

    def permanent_fault(self) -> None:
        """The device refuses the next delivery."""
        raise NotImplementedError

    async def reboot(self) -> None:
        raise NotImplementedError

    def device_recovers(self) -> None:
        """After ``reboot``: a serial device answers again (networked devices reconnect by themselves)."""

    async def finish(self, order: DeliveryOrder) -> None:
        """Let the broadcast run to its end (playback time, or the end time on the clock)."""
        await until(lambda: DeliveryStatus.PLAYED in self.sink.statuses(order.ebm_id, self.code))

    def completed(self, ebm_id: str) -> int:
        """Ground truth on the device side: how many times it completed this broadcast."""
        raise NotImplementedError


class IpDriver(Driver):
    name = "ip_speaker"
    preemption = "INTERRUPTS"

    async def start(self) -> None:
        self.ref = terminal_ref(1)
        self.code = self.ref.resource_code
        self.ip = IpSpeakerAdapter({"port": 0, "platform_code": PLATFORM, "ack_timeout_s": 0.3}, self.clock)
        self.adapter = self.ip
        await self.ip.start(self.sink, [self.ref])
        self.http = aiohttp.ClientSession()
        self.sim = SimTerminal(
            self.ref, "127.0.0.1", self.ip.port, http=self.http, time_scale=0.01, reconnect_initial_s=0.01
        )
        await self.sim.start()
        await until(lambda: self.ip.is_reachable(self.code))

    async def close(self) -> None:
        await self.sim.stop()
        await self.ip.close()
        await self.http.close()

    def transient_fault(self) -> None:
        self.sim.drop_next(1)

    def permanent_fault(self) -> None:
        self.sim.nack_next(1, ResultCode.TERMINAL_ERROR)

    async def reboot(self) -> None:
        await self.sim.reboot()

    def completed(self, ebm_id: str) -> int:
        return sum(1 for p in self.sim.played if p.ebm_id == ebm_id and p.completed)


class FrontEndDriver(Driver):
    """The device under test is the front-end; the terminal behind it does the playing."""

    name = "front_end"
    preemption = "INTERRUPTS"
    n_terminals = 1

    async def start(self) -> None:
        self.refs = [
            terminal_ref(i, adapter="front_end", front_end=FRONT_END) for i in range(1, self.n_terminals + 1)
        ]
        self.code = self.refs[0].resource_code
        self.fe_adapter = FrontEndAdapter(
            {"port": 0, "platform_code": PLATFORM, "ack_timeout_s": 1.0}, self.clock
        )
        self.adapter = self.fe_adapter
        await self.fe_adapter.start(self.sink, self.refs)
        self.front_end = FrontEndSim(
            FRONT_END,
            self.refs,
            "127.0.0.1",
            self.fe_adapter.port,
            relay_timeout_s=0.3,
            reconnect_initial_s=0.01,
        )
        await self.front_end.start()
        self.http = aiohttp.ClientSession()
        self.sims = {
            r.resource_code: SimTerminal(
                r, "127.0.0.1", self.front_end.port, http=self.http, time_scale=0.01, reconnect_initial_s=0.01
            )
            for r in self.refs
        }
        self.sim = self.sims[self.code]
        for s in self.sims.values():
            await s.start()
        await until(lambda: all(self.fe_adapter.is_reachable(r.resource_code) for r in self.refs))

    async def close(self) -> None:
        for s in self.sims.values():
            await s.stop()
        await self.front_end.stop()
        await self.fe_adapter.close()
        await self.http.close()

    def transient_fault(self) -> None:
        self.sim.drop_next(1)

    def permanent_fault(self) -> None:
        self.sim.nack_next(1, ResultCode.TERMINAL_ERROR)

    async def reboot(self) -> None:
        await self.front_end.reboot()

    def completed(self, ebm_id: str) -> int:
        return sum(1 for p in self.sim.played if p.ebm_id == ebm_id and p.completed)


class FmDriver(Driver):
    name = "fm"
    preemption = "REPLACES"

    async def start(self) -> None:
        self.code = TRANSMITTER
        self.sim = FmEncoderSim()
        self.host = TcpHost(self.sim)
        url = await self.host.start()
        cfg = {
            "url": url,
            "resource_code": TRANSMITTER,
            "ack_timeout_s": 0.15,
            "retransmits": 1,
            "normal": {"ps": "ANNINGFM", "pty": 10, "rt": "Anning FM", "tp": True},
        }
        self.fm = FmAdapter(cfg, self.clock)
        self.adapter = self.fm
        await self.fm.start(self.sink, [])

    async def close(self) -> None:
        await self.fm.close()
        await self.host.close()

    def transient_fault(self) -> None:
        self.sim.drop_next(2)  # the frame and its one retransmission

    def permanent_fault(self) -> None:
        self.sim.nack_next(1)

    async def reboot(self) -> None:
        """Power-cycle the encoder: it is deaf for a moment and comes back with its on-air state lost."""
        self.sim.go_offline()
        self.sim.states = {a: type(s)() for a, s in self.sim.states.items()}

    def device_recovers(self) -> None:
        self.sim.come_online()

    async def finish(self, order: DeliveryOrder) -> None:
        self.clock.advance(max(0.0, (order.end_at - self.clock.now()).total_seconds()))
        await self.fm.tick()
        await super().finish(order)

    def completed(self, ebm_id: str) -> int:
        # ground truth: switched to the emergency input and back to normal, once per broadcast
        from adapters.fm.device import ProgrammeInput

        played = self.sink.statuses(ebm_id, self.code).count(DeliveryStatus.PLAYED)
        restored = self.sim.state.programme_input is ProgrammeInput.NORMAL
        return played if restored else 0


class CableDriver(Driver):
    name = "cable_tv"
    preemption = "CARRIES_ALL"

    async def start(self) -> None:
        self.code = HEAD_END
        self.sim = CableInserterSim()
        self.host = TcpHost(self.sim)
        url = await self.host.start()
        cfg = {
            "url": url,
            "resource_code": HEAD_END,
            "ack_timeout_s": 0.15,
            "retransmits": 1,
            "agency_name": "安宁市应急管理局",
        }
        self.cable = CableTvAdapter(cfg, self.clock)
        self.adapter = self.cable
        await self.cable.start(self.sink, [])

    async def close(self) -> None:
        await self.cable.close()
        await self.host.close()

    def transient_fault(self) -> None:
        self.sim.drop_next(2)

    def permanent_fault(self) -> None:
        self.sim.nack_next(1, NackReason.REFUSED)

    async def reboot(self) -> None:
        self.sim.go_offline()
        self.sim.on_air.clear()

    def device_recovers(self) -> None:
        self.sim.come_online()

    async def finish(self, order: DeliveryOrder) -> None:
        self.clock.advance(max(0.0, (order.end_at - self.clock.now()).total_seconds()))
        await self.cable.tick()
        await super().finish(order)

    def completed(self, ebm_id: str) -> int:
        played = self.sink.statuses(ebm_id, self.code).count(DeliveryStatus.PLAYED)
        return played if ebm_id not in self.sim.on_air and self.sim.withdrawals_applied >= 1 else 0


DRIVERS: dict[str, type[Driver]] = {d.name: d for d in (IpDriver, FrontEndDriver, FmDriver, CableDriver)}
