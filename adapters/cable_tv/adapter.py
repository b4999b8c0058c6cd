"""Cable-TV adapter (有线数字电视应急广播适配器): hands EB index (EBIT) and content sections to the head-end
inserter over a serial line (adapters.cable_tv.link) and withdraws them at the end time or on stop.

Owns: building the sections for an order, the acknowledged INSERT / WITHDRAW exchanges (same-seq
retransmission on timeout or transient NACK), deadline checks driven by the injected clock
(``tick()``), and PLAYING / PLAYED / CANCELLED events. Only classifies outcomes; the dispatcher owns
retries. Never sleeps; never imports the core.

The order carries only a title, so the content table text is the title, encoded in GB18030
(code_character_set 1); the agency name comes from config.

Config keys: ``url`` (device path or socket://host:port), ``baudrate`` (9600), ``resource_code`` (the
cable broadcast system's 23-digit code), ``original_network_id`` (1), ``ack_timeout_s`` (1.0),
``retransmits`` (2), ``agency_name`` (""), ``language`` ("zho"), ``ebit_resource_codes`` (list of
23-digit codes put in the EBIT; default: the codes of the terminals given to ``start``, else
``resource_code``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from adapters.base import AdapterSink, Capability, ConfigKey
from adapters.cable_tv.link import (
    Command,
    LinkDecoder,
    LinkFrame,
    LinkReject,
    ebm_payload,
    insert_payload,
    parse_nack,
    parse_status,
)
from adapters.cable_tv.sections import (
    AuxItem,
    Charset,
    ContentEntry,
    EbContent,
    EbitEntry,
    build_content,
    build_ebit,
)
from adapters.serial_line import (
    LineFailure,
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


LinkFailure = LineFailure  # the cable name for the shared serial-exchange failure kinds
_NUM = (int, float)

# The keys of [adapters.cable_tv] (checked by the registry before the adapter is built).
CONFIG_SCHEMA: dict[str, ConfigKey] = {
    "url": ConfigKey((str,), required=True),
    "resource_code": ConfigKey((str,), required=True),
    "baudrate": ConfigKey((int,)),
    "original_network_id": ConfigKey((int,)),
    "ack_timeout_s": ConfigKey(_NUM),
    "retransmits": ConfigKey((int,)),
    "agency_name": ConfigKey((str,)),
    "language": ConfigKey((str,)),
    "ebit_resource_codes": ConfigKey((list,)),
}


@dataclass(frozen=True)
class Exchange:
    what: str
    failure: LinkFailure | None = None
    reply: LinkFrame | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.failure is None


class InserterClient:
    """Request/reply over the link with one request in flight per line (the line lock)."""

    def __init__(self, line: SerialLine, ack_timeout_s: float, retransmits: int) -> None:
        self.line = line
        self.ack_timeout_s = ack_timeout_s
        self.retransmits = retransmits
        self._decoder = LinkDecoder()
        self._seq = 0
        self._waiting: tuple[int, asyncio.Future[LinkFrame]] | None = None
        names = ("frames_sent", "acks", "nacks", "timeouts", "retransmits", "bad_in")
        self.counters = dict.fromkeys(names, 0)

    def attach(self) -> None:
        self.line.add_listener(self._on_bytes)

    def detach(self) -> None:
        self.line.remove_listener(self._on_bytes)

    def _on_bytes(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, LinkReject) or item.command < Command.ACK:
                self.counters["bad_in"] += 1
                continue
            waiting = self._waiting
            if waiting is not None and waiting[0] == item.seq and not waiting[1].done():
                waiting[1].set_result(item)

    async def request(self, what: str, command: Command, payload: bytes = b"") -> Exchange:
        self._seq = (self._seq + 1) & 0xFFFF
        wire = LinkFrame(self._seq, command, payload).encode()
        loop = asyncio.get_running_loop()
        last = Exchange(what, LinkFailure.TIMEOUT, detail="no reply")
        async with self.line.lock:
            try:
                await self.line.ensure_open()
            except SerialLineError as exc:
                return Exchange(what, LinkFailure.LINK, detail=exc.detail)
            for attempt in range(self.retransmits + 1):
                fut: asyncio.Future[LinkFrame] = loop.create_future()
                self._waiting = (self._seq, fut)
                try:
                    if attempt:
                        self.counters["retransmits"] += 1
                    self.line.write(wire)
                    self.counters["frames_sent"] += 1
                    reply = await asyncio.wait_for(fut, self.ack_timeout_s)
                except SerialLineError as exc:
                    return Exchange(what, LinkFailure.LINK, detail=exc.detail)
                except TimeoutError:
                    self.counters["timeouts"] += 1
                    last = Exchange(what, LinkFailure.TIMEOUT, detail="no reply")
                    continue
                finally:
                    self._waiting = None
                if reply.command is not Command.NACK:
                    self.counters["acks"] += 1
                    return Exchange(what, None, reply)
                self.counters["nacks"] += 1
                reason, detail = parse_nack(reply.payload)
                text = f"{reason.name} {detail}".strip()
                if not reason.transient:
                    return Exchange(what, LinkFailure.NACK, reply, text)
                last = Exchange(what, LinkFailure.LINE_NOISE, reply, text)
        return last


def classify(ex: Exchange, code: str) -> SendResult:
    return classify_line_failure(ex.failure, f"{code}: {ex.what} {ex.detail}".strip())


def _require(config: Mapping[str, Any], key: str) -> str:
    return require_setting(
        config,
        key,
        "有线电视适配器配置缺少 {key}：请在适配器配置中填写串口路径(url)和前端资源编码(resource_code)。",
    )


class CableTvAdapter:
    name = "cable_tv"
    capabilities = frozenset({Capability.TEXT, Capability.STOP, Capability.AUDIO_URL})
    config_schema: ClassVar[Mapping[str, ConfigKey]] = CONFIG_SCHEMA

    def __init__(self, config: Mapping[str, Any], clock: Clock) -> None:
        self._clock = clock
        self.url = _require(config, "url")
        self.resource_code = _require(config, "resource_code")
        self._baudrate = int(config.get("baudrate", 9600))
        self._network_id = int(config.get("original_network_id", 1))
        self._ack_timeout_s = float(config.get("ack_timeout_s", 1.0))
        self._retransmits = int(config.get("retransmits", 2))
        self._agency = str(config.get("agency_name", ""))
        self._language = str(config.get("language", "zho"))
        self._ebit_codes: tuple[str, ...] = tuple(str(c) for c in config.get("ebit_resource_codes", ()))
        self._sink: AdapterSink | None = None
        self._line: SerialLine | None = None
        self._client: InserterClient | None = None
        self._op_lock = asyncio.Lock()
        self._on_air: dict[str, DeliveryOrder] = {}
        self._versions: dict[str, int] = {}
        self._withdraw_pending: set[str] = set()
        self._reachable = False
        self._timer: asyncio.TimerHandle | None = None
        self._tick_task: asyncio.Task[None] | None = None

    async def start(self, sink: AdapterSink, terminals: Sequence[TerminalRef]) -> None:
        self._sink = sink
        if not self._ebit_codes:
            codes = tuple(t.resource_code for t in terminals if t.adapter == self.name)
            self._ebit_codes = codes or (self.resource_code,)
        self._line = acquire_line(self.url, self._baudrate)
        self._client = InserterClient(self._line, self._ack_timeout_s, self._retransmits)
        self._client.attach()
        try:
            await self._line.ensure_open()
            self._set_reachable(True, "line open")
        except SerialLineError as exc:
            self._set_reachable(False, exc.detail)

    async def close(self) -> None:
        await shut_down_device(self._timer, self._tick_task, self._client, self._line)
        self._line = None

    def is_reachable(self, terminal_code: str) -> bool:
        return terminal_code == self.resource_code and self._reachable

    @property
    def on_air(self) -> tuple[str, ...]:
        return tuple(self._on_air)

    def sections_for(self, order: DeliveryOrder, version: int = 0) -> list[bytes]:
        entry = EbitEntry(
            ebm_id=order.ebm_id,
            original_network_id=self._network_id,
            start=order.start_at,
            end=order.end_at,
            event_type=order.event_type,
            ebm_class=int(order.msg_type),
            level=int(order.severity),
            resource_codes=self._ebit_codes,
        )
        aux: tuple[AuxItem, ...] = ()
        if order.audio_url:
            is_mp3 = order.audio is not None and order.audio.format.lower() == "mp3"
            digest = bytes.fromhex(order.audio.digest) if order.audio is not None else b""
            aux = (AuxItem(2 if is_mp3 else 61, order.audio_url, 0, digest),)
        content = EbContent(
            order.ebm_id, (ContentEntry(self._language, Charset.GB18030, order.title, self._agency, aux),)
        )
        return build_ebit([entry], self._network_id, version) + build_content(content, version)

    async def deliver(self, order: DeliveryOrder, terminal_code: str) -> SendResult:
        if terminal_code != self.resource_code:
            return SendResult.permanent(FailureKind.UNSUPPORTED, f"{terminal_code} is not served here")
        if self._clock.now() >= order.end_at:
            return SendResult.permanent(FailureKind.REJECTED, f"{order.ebm_id} ended before it could air")
        version = self._versions.get(order.ebm_id, -1) + 1 & 0x1F
        try:
            sections = self.sections_for(order, version)
        except ValueError as exc:
            return SendResult.permanent(FailureKind.UNSUPPORTED, f"{order.ebm_id}: {exc}")
        async with self._op_lock:
            ex = await self._request("insert", Command.INSERT, insert_payload(order.ebm_id, sections))
            if not ex.ok:
                return classify(ex, self.resource_code)
            self._versions[order.ebm_id] = version
            already = order.ebm_id in self._on_air
            self._on_air[order.ebm_id] = order
            self._withdraw_pending.discard(order.ebm_id)
        if not already:
            self._emit(order.ebm_id, DeliveryStatus.PLAYING)
        self._arm_timer()
        return SendResult.ok(f"{order.ebm_id} inserted at {self.resource_code}")

    def adopt(self, order: DeliveryOrder, terminal_code: str) -> None:
        """The sections of ``order`` were inserted before a restart: withdraw them at the end time."""
        if terminal_code == self.resource_code and order.ebm_id not in self._on_air:
            self._on_air[order.ebm_id] = order
            self._arm_timer()

    async def stop(self, ebm_id: str, terminal_code: str) -> SendResult:
        if terminal_code != self.resource_code:
            return SendResult.permanent(FailureKind.UNSUPPORTED, f"{terminal_code} is not served here")
        async with self._op_lock:
            ex = await self._request("withdraw", Command.WITHDRAW, ebm_payload(ebm_id))
            if not ex.ok:
                return classify(ex, self.resource_code)
            was_on_air = self._on_air.pop(ebm_id, None) is not None
        if was_on_air:
            self._emit(ebm_id, DeliveryStatus.CANCELLED, FailureReason.CANCELLED)
        return SendResult.ok(f"{ebm_id} withdrawn at {self.resource_code}")

    async def tick(self) -> None:
        """Withdraw broadcasts whose end time has passed on the injected clock (and retry failed
        withdrawals); emits PLAYED once per broadcast."""
        now = self._clock.now()
        async with self._op_lock:
            for ebm_id, order in list(self._on_air.items()):
                if now >= order.end_at:
                    del self._on_air[ebm_id]
                    self._withdraw_pending.add(ebm_id)
                    self._emit(ebm_id, DeliveryStatus.PLAYED)
            for ebm_id in sorted(self._withdraw_pending):
                ex = await self._request("withdraw", Command.WITHDRAW, ebm_payload(ebm_id))
                if ex.ok:
                    self._withdraw_pending.discard(ebm_id)
        self._arm_timer()

    async def query(self) -> list[str] | SendResult:
        """EBM ids the inserter reports on air, or the classified failure."""
        async with self._op_lock:
            ex = await self._request("status", Command.STATUS)
        if not ex.ok or ex.reply is None:
            return classify(ex, self.resource_code)
        try:
            return parse_status(ex.reply.payload)
        except ValueError as exc:
            return SendResult.retry(FailureKind.PROTOCOL, str(exc))

    def status(self) -> dict[str, Any]:
        return {
            "adapter": self.name,
            "resource_code": self.resource_code,
            "reachable": self._reachable,
            "on_air": sorted(self._on_air),
            "withdraw_pending": sorted(self._withdraw_pending),
            "line": self._line.status() if self._line else None,
            "link": dict(self._client.counters) if self._client else None,
        }

    # -- internals ------------------------------------------------------------------------------

    async def _request(self, what: str, command: Command, payload: bytes = b"") -> Exchange:
        assert self._client is not None, "CableTvAdapter.start() must be called first"
        ex = await self._client.request(what, command, payload)
        if ex.ok or ex.failure is LinkFailure.NACK:
            self._set_reachable(True, "answered")
        else:
            self._set_reachable(False, ex.detail)
        if ex.failure is LinkFailure.NACK and ex.reply is not None:
            _LOG.warning("inserter %s refused %s: %s", self.resource_code, what, ex.detail)
        return ex

    def _set_reachable(self, reachable: bool, detail: str) -> None:
        if reachable == self._reachable:
            return
        self._reachable = reachable
        _LOG.info("cable inserter %s %s (%s)", self.resource_code, "up" if reachable else "down", detail)
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
        """Wake ``tick()`` near the next end time in real time; the decision uses the injected clock."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._on_air and not self._withdraw_pending:
            return
        now = self._clock.now()
        delays = [(o.end_at - now).total_seconds() for o in self._on_air.values()]
        delay = min(delays) if delays else 5.0
        self._timer = asyncio.get_running_loop().call_later(max(delay, 0.05), self._spawn_tick)

    def _spawn_tick(self) -> None:
        if self._tick_task is None or self._tick_task.done():
            self._tick_task = asyncio.get_running_loop().create_task(self.tick())
