"""FM adapter (调频应急广播适配器): puts an emergency broadcast on one FM transmitter through its RDS
encoder (UECP over a serial line) and programme-input switch, and takes it off again.

Owns: the on-air sequence (PTY 31 "Alarm", TA on, RadioText, programme input -> emergency audio),
the restore sequence (normal PS/PTY/TA/RadioText, programme input -> normal), deadline checks driven
by the injected clock (``tick()``), and the PLAYING / PLAYED / CANCELLED delivery events. Only
classifies outcomes; the core's dispatcher owns retries. Never sleeps; never imports the core.

RadioText is 64 characters of the EBU Latin set: Chinese (GB2312/GB18030) cannot be carried and
pinyin would need a dictionary and still read badly. So the RadioText is an ASCII fallback,
"EMERGENCY ALERT <event code> <severity> <EBM id date+sequence>" (DRILL instead of ALERT for drills),
unless the title itself is printable ASCII, which is then sent as is (cut at 64).

Config keys: ``url`` (device path or socket://host:port), ``baudrate`` (9600), ``site`` (0),
``encoder`` (1), ``stuffing`` ("standard" | "trailing_fd"), ``ack_timeout_s`` (1.0), ``retransmits``
(2), ``resource_code`` (23-digit code of the transmitter), ``pi`` (optional, sent on restore),
``normal``: {``ps``, ``pty``, ``rt``, ``tp``}.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from adapters.base import AdapterSink, Capability, ConfigKey
from adapters.fm.device import (
    CommandFailure,
    CommandResult,
    FmTransmitter,
    ProgrammeInput,
    programme_input_element,
)
from adapters.fm.uecp import StuffingVariant
from adapters.fm.uecp_elements import Element, PiSet, PsSet, PtySet, RadioTextSet, TaTpSet
from adapters.serial_line import (
    SerialLine,
    SerialLineError,
    acquire_line,
    classify_line_failure,
    require_setting,
    shut_down_device,
)
from broadcast.clock import Clock
from broadcast.messages import DeliveryReport, FailureKind, LinkReport, SendResult
from broadcast.model import DeliveryOrder, DeliveryStatus, FailureReason, LinkState, TerminalRef

_LOG = logging.getLogger(__name__)

PTY_ALARM = 31
_NUM = (int, float)

# The keys of [adapters.fm] (checked by the registry before the adapter is built).
CONFIG_SCHEMA: dict[str, ConfigKey] = {
    "url": ConfigKey((str,), required=True, doc="serial device path or socket://host:port"),
    "resource_code": ConfigKey((str,), required=True, doc="the transmitter's 23-digit code"),
    "baudrate": ConfigKey((int,)),
    "site": ConfigKey((int,)),
    "encoder": ConfigKey((int,)),
    "stuffing": ConfigKey((str,), doc="standard or trailing_fd"),
    "ack_timeout_s": ConfigKey(_NUM),
    "retransmits": ConfigKey((int,)),
    "pi": ConfigKey((str, int)),
    "normal": ConfigKey((dict,), doc="ps, pty, rt, tp restored after a broadcast"),
}


@dataclass(frozen=True)
class NormalProgramme:
    ps: str
    pty: int
    rt: str
    tp: bool = True
    pi: int | None = None


def radiotext_for(order: DeliveryOrder) -> str:
    """The ≤64-character ASCII RadioText for an order (see module docstring for why ASCII)."""
    title = order.title.strip()
    if title and all(0x20 <= ord(c) < 0x7F for c in title):
        return title[:64]
    kind = "DRILL" if order.msg_type.is_drill else "ALERT"
    return f"EMERGENCY {kind} {order.event_type} {order.severity.name} {order.ebm_id[-12:]}"[:64]


def classify(result: CommandResult, transmitter_code: str) -> SendResult:
    return classify_line_failure(result.failure, f"{transmitter_code}: {result.what} {result.detail}".strip())


def _require(config: Mapping[str, Any], key: str) -> str:
    return require_setting(
        config,
        key,
        "调频(FM)适配器配置缺少 {key}：请在配置中填写串口路径(url)和发射机资源编码(resource_code)。",
    )


class FmAdapter:
    name = "fm"
    capabilities = frozenset({Capability.AUDIO_PCM, Capability.TEXT, Capability.STOP})
    config_schema: ClassVar[Mapping[str, ConfigKey]] = CONFIG_SCHEMA

    def __init__(self, config: Mapping[str, Any], clock: Clock) -> None:
        self._clock = clock
        self.url = _require(config, "url")
        self.resource_code = _require(config, "resource_code")
        self._baudrate = int(config.get("baudrate", 9600))
        normal = dict(config.get("normal", {}))
        pi = config.get("pi")
        self.normal = NormalProgramme(
            ps=str(normal.get("ps", "")),
            pty=int(normal.get("pty", 0)),
            rt=str(normal.get("rt", "")),
            tp=bool(normal.get("tp", True)),
            pi=int(pi) if pi is not None else None,
        )
        self._site = int(config.get("site", 0))
        self._encoder = int(config.get("encoder", 1))
        self._variant = StuffingVariant(str(config.get("stuffing", "standard")))
        self._ack_timeout_s = float(config.get("ack_timeout_s", 1.0))
        self._retransmits = int(config.get("retransmits", 2))
        self._sink: AdapterSink | None = None
        self._line: SerialLine | None = None
        self._tx: FmTransmitter | None = None
        self._op_lock = asyncio.Lock()
        self._on_air: DeliveryOrder | None = None
        self._dirty = False  # transmitter may hold emergency settings that need restoring
        self._reachable = False
        self._ab_flag = False
        self._timer: asyncio.TimerHandle | None = None
        self._tick_task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, sink: AdapterSink, terminals: Sequence[TerminalRef]) -> None:
        self._sink = sink
        self._line = acquire_line(self.url, self._baudrate)
        self._tx = FmTransmitter(
            self._line,
            site=self._site,
            encoder=self._encoder,
            variant=self._variant,
            ack_timeout_s=self._ack_timeout_s,
            retransmits=self._retransmits,
            resource_code=self.resource_code,
        )
        self._tx.attach()
        try:
            await self._line.ensure_open()
            self._set_reachable(True, "line open")
        except SerialLineError as exc:
            self._set_reachable(False, exc.detail)

    async def close(self) -> None:
        await shut_down_device(self._timer, self._tick_task, self._tx, self._line)
        self._line = None

    def is_reachable(self, terminal_code: str) -> bool:
        return terminal_code == self.resource_code and self._reachable

    @property
    def on_air(self) -> DeliveryOrder | None:
        return self._on_air

    # -- delivery -------------------------------------------------------------------------------

    async def deliver(self, order: DeliveryOrder, terminal_code: str) -> SendResult:
        if terminal_code != self.resource_code:
            return self._not_mine(terminal_code)
        if self._clock.now() >= order.end_at:
            return SendResult.permanent(FailureKind.REJECTED, f"{order.ebm_id} ended before it could air")
        async with self._op_lock:
            self._ab_flag = not self._ab_flag  # a new text: receivers clear their display
            steps: list[tuple[str, Element]] = [
                ("pty", PtySet(PTY_ALARM)),
                ("ta", TaTpSet(ta=True, tp=True)),
                ("radiotext", RadioTextSet(radiotext_for(order), ab_flag=self._ab_flag)),
                ("programme_input", programme_input_element(ProgrammeInput.EMERGENCY)),
            ]
            self._dirty = True
            for what, element in steps:
                result = await self._command(what, element)
                if not result.ok:
                    _LOG.warning("FM %s: %s not on air: %s", self.resource_code, order.ebm_id, result)
                    return classify(result, self.resource_code)
            previous = self._on_air
            self._on_air = order
        if previous is not None and previous.ebm_id != order.ebm_id:
            self._emit(previous.ebm_id, DeliveryStatus.CANCELLED, FailureReason.PREEMPTED, order.ebm_id)
        self._emit(order.ebm_id, DeliveryStatus.PLAYING, detail=radiotext_for(order))
        self._arm_timer()
        return SendResult.ok(f"{order.ebm_id} on air on {self.resource_code}")

    def adopt(self, order: DeliveryOrder, terminal_code: str) -> None:
        """The transmitter was switched to ``order`` before a restart: restore it at the end time."""
        if terminal_code == self.resource_code and self._on_air is None:
            self._on_air = order
            self._dirty = True
            self._arm_timer()

    async def stop(self, ebm_id: str, terminal_code: str) -> SendResult:
        if terminal_code != self.resource_code:
            return self._not_mine(terminal_code)
        async with self._op_lock:
            if self._on_air is None or self._on_air.ebm_id != ebm_id:
                return SendResult.ok(f"{ebm_id} is not on air on {self.resource_code}")
            result = await self._restore()
            if not result.ok:
                return classify(result, self.resource_code)
            self._on_air = None
        self._emit(ebm_id, DeliveryStatus.CANCELLED, FailureReason.CANCELLED)
        return SendResult.ok(f"{ebm_id} stopped on {self.resource_code}")

    async def tick(self) -> None:
        """Check deadlines against the injected clock: end the broadcast whose end time has passed,
        and retry a restore that failed earlier."""
        async with self._op_lock:
            order = self._on_air
            if order is not None and self._clock.now() >= order.end_at:
                result = await self._restore()
                self._on_air = None
                detail = "" if result.ok else f"restore pending: {result.detail}"
                self._emit(order.ebm_id, DeliveryStatus.PLAYED, detail=detail)
            elif order is None and self._dirty:
                await self._restore()
        self._arm_timer()

    def status(self) -> dict[str, Any]:
        return {
            "adapter": self.name,
            "resource_code": self.resource_code,
            "reachable": self._reachable,
            "on_air": self._on_air.ebm_id if self._on_air else None,
            "restore_pending": self._dirty and self._on_air is None,
            "line": self._line.status() if self._line else None,
            "encoder": self._tx.status() if self._tx else None,
        }

    # -- internals ------------------------------------------------------------------------------

    async def _command(self, what: str, element: Element) -> CommandResult:
        assert self._tx is not None, "FmAdapter.start() must be called first"
        result = await self._tx.send(what, element)
        if result.ok or result.failure is CommandFailure.NACK:
            self._set_reachable(True, "answered")
        else:
            self._set_reachable(False, result.detail or str(result.failure))
        return result

    async def _restore(self) -> CommandResult:
        n = self.normal
        steps: list[tuple[str, Element]] = [
            ("programme_input", programme_input_element(ProgrammeInput.NORMAL))
        ]
        if n.pi is not None:
            steps.append(("pi", PiSet(n.pi)))
        steps += [
            ("ps", PsSet(n.ps)),
            ("pty", PtySet(n.pty)),
            ("ta", TaTpSet(ta=False, tp=n.tp)),
            ("radiotext", RadioTextSet(n.rt, ab_flag=not self._ab_flag)),
        ]
        self._ab_flag = not self._ab_flag
        for what, element in steps:
            result = await self._command(what, element)
            if not result.ok:
                _LOG.warning("FM %s: restore failed at %s: %s", self.resource_code, what, result.detail)
                return result
        self._dirty = False
        return CommandResult("restore")

    def _not_mine(self, terminal_code: str) -> SendResult:
        return SendResult.permanent(FailureKind.UNSUPPORTED, f"{terminal_code} is not served here")

    def _set_reachable(self, reachable: bool, detail: str) -> None:
        if reachable == self._reachable:
            return
        self._reachable = reachable
        word = "reachable" if reachable else "down"
        _LOG.info("FM transmitter %s %s (%s)", self.resource_code, word, detail)
        if self._sink is not None:
            state = LinkState.ONLINE if reachable else LinkState.OFFLINE
            self._sink.report(LinkReport(self.resource_code, state, self._clock.now(), detail))

    def _emit(
        self, ebm_id: str, status: DeliveryStatus, reason: FailureReason | None = None, detail: str = ""
    ) -> None:
        if self._sink is not None:
            self._sink.report(
                DeliveryReport(ebm_id, self.resource_code, status, self._clock.now(), reason, detail)
            )

    def _arm_timer(self) -> None:
        """Wake ``tick()`` near the end time in real time; the decision itself uses the injected clock."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._on_air is None and not self._dirty:
            return
        delay = 5.0 if self._on_air is None else (self._on_air.end_at - self._clock.now()).total_seconds()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(delay, 0.05), self._spawn_tick)

    def _spawn_tick(self) -> None:
        if self._tick_task is None or self._tick_task.done():
            self._tick_task = asyncio.get_running_loop().create_task(self.tick())
