"""A heartbeat load generator in its own process: many simulated IP terminals hammering the controller.

Owns: connecting N simulated terminals (the inventory's resource codes and physical addresses) to the
ip_speaker adapter, registering each with the real registration heartbeat (power-up flag set), then
sending heartbeats either as fast as the controller answers (each terminal waits for the reply to its
heartbeat before sending the next, as a real device does) or at a fixed total rate, until a count or a
duration is used up; then it closes every connection and reports what it sent and what came back.
Frames are built and parsed with the same codec as ``sim/ip_terminal.py`` (every heartbeat carries its
own session id and is encoded anew unless ``encode_once`` is chosen).

Run standalone (prints JSON lines on stdout and stops by itself)::

    python -m sim.heartbeat_blaster --controller 127.0.0.1:9300 --count 200000
    python -m sim.heartbeat_blaster --controller 127.0.0.1:9300 --duration 10 --shard 0/2 --go-on-stdin

Never imports the controller core; never sleeps except to keep a fixed rate. Uses asyncio protocols
(no task per heartbeat) so that the generator's own cost stays small.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from adapters.ip_speaker.codec import DecodeError, Frame, FrameDecoder, PacketType, encode_frame
from adapters.ip_speaker.payload_fields import PayloadError, WorkState
from adapters.ip_speaker.payloads import Heartbeat, Reply
from broadcast.model import TerminalRef


class BlastFailure(StrEnum):
    CONNECT_FAILED = "connect_failed"  # the controller's port refused or timed out
    REFUSED = "refused"  # the registration heartbeat was answered with a non-OK result
    NO_ANSWER = "no_answer"  # the registration heartbeat got no reply in time
    CONNECTION_LOST = "connection_lost"  # the controller closed the connection mid-run


class BlastError(Exception):
    """The run could not start; ``code`` names the terminal that failed."""

    def __init__(self, kind: BlastFailure, code: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code


@dataclass(frozen=True)
class BlastPlan:
    """How much to send: ``count`` heartbeats in total and/or for ``duration_s`` seconds (whichever ends
    first); ``rate_per_s`` total heartbeats per second (None: as fast as the controller answers)."""

    count: int | None = None
    duration_s: float | None = None
    rate_per_s: float | None = None
    encode_once: bool = False  # reuse one encoded frame per terminal (constant session id)
    register_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.count is None and self.duration_s is None:
            raise ValueError("a blast needs a count or a duration, or it would never stop")


@dataclass
class BlastReport:
    terminals: int = 0
    registered: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # terminal code → BlastFailure
    heartbeats_sent: int = 0  # after registration (the registration heartbeats are not counted here)
    replies_ok: int = 0
    replies_not_ok: int = 0
    stray_frames: int = 0  # decode errors, requests, replies to nothing we asked
    register_s: float = 0.0
    elapsed_s: float = 0.0  # from the first heartbeat of the blast to the last reply
    cpu_s: float = 0.0  # this process's CPU time over the same window

    @property
    def rate_per_s(self) -> float:
        return self.replies_ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_json(self) -> str:
        return json.dumps({"event": "done", **asdict(self), "rate_per_s": round(self.rate_per_s, 1)})


class _Terminal(asyncio.Protocol):
    """One simulated terminal's connection: one heartbeat in flight at a time."""

    def __init__(self, blast: _Blast, ref: TerminalRef) -> None:
        self._blast = blast
        self.code = ref.resource_code
        self._addr = ref.physical_address.encode("ascii")
        self._hb = Heartbeat(WorkState.IDLE, False, self._addr).encode()
        self._decoder = FrameDecoder()
        self._session = 0
        self._awaiting: int | None = None
        self._once: bytes | None = None
        self.transport: asyncio.Transport | None = None
        self.registered: asyncio.Future[Reply | None] = asyncio.get_running_loop().create_future()
        self.next_due = 0.0
        self.idle = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def _frame(self, data: bytes) -> bytes:
        self._session = (self._session + 1) & 0xFFFFFFFF
        self._awaiting = self._session
        frame = Frame(self._session, PacketType.REQUEST, self.code, (self._blast.platform,),
                      Heartbeat.BUSINESS_TYPE, data)
        return encode_frame(frame)

    def register(self) -> None:
        assert self.transport is not None
        self.transport.write(self._frame(Heartbeat(WorkState.IDLE, True, self._addr).encode()))

    def beat(self) -> None:
        if self.transport is None or self.transport.is_closing():
            self.idle = True
            return
        if self._blast.plan.encode_once:
            if self._once is None:
                self._once = self._frame(self._hb)
            self._awaiting = self._session
            data = self._once
        else:
            data = self._frame(self._hb)
        self.idle = False
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        blast = self._blast
        for item in self._decoder.feed(data):
            if isinstance(item, DecodeError) or not item.is_response or item.session_id != self._awaiting:
                blast.report.stray_frames += 1
                continue
            self._awaiting = None
            try:
                reply = item.payload()
            except PayloadError:
                reply = Reply(-1, "unparseable")
            ok = isinstance(reply, Reply) and reply.ok
            if not self.registered.done():
                self.registered.set_result(reply if isinstance(reply, Reply) else None)
                continue
            if ok:
                blast.report.replies_ok += 1
            else:
                blast.report.replies_not_ok += 1
            blast.answered(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.registered.done():
            self.registered.set_result(None)
        if not self.idle:
            self.idle = True
            self._blast.lost(self)


class _Blast:
    def __init__(self, platform: str, plan: BlastPlan, terminals: int) -> None:
        self.platform = platform
        self.plan = plan
        self.report = BlastReport(terminals=terminals)
        self._loop = asyncio.get_running_loop()
        self._left = plan.count
        self._deadline = float("inf")
        self._interval = 0.0
        self._in_flight = 0
        self._stopping = False
        self.done: asyncio.Future[None] = self._loop.create_future()
        self._t0 = 0.0
        self._last = 0.0
        self._cpu0 = 0.0

    def start(self, conns: Sequence[_Terminal]) -> None:
        now = self._loop.time()
        self._t0 = self._last = time.perf_counter()
        self._cpu0 = time.process_time()
        if self.plan.duration_s is not None:
            self._deadline = now + self.plan.duration_s
        if self.plan.rate_per_s:
            self._interval = len(conns) / self.plan.rate_per_s
        for i, conn in enumerate(conns):
            conn.next_due = now + (self._interval * i / len(conns) if self._interval else 0.0)
            self._send_or_wait(conn)
        self._check_done()

    def _may_send(self) -> bool:
        if self._stopping:
            return False
        if (self._left is not None and self._left <= 0) or self._loop.time() >= self._deadline:
            self._stopping = True
            return False
        return True

    def _send_or_wait(self, conn: _Terminal) -> None:
        if not self._may_send():
            conn.idle = True
            return
        if self._interval:
            delay = conn.next_due - self._loop.time()
            conn.next_due = max(conn.next_due + self._interval, self._loop.time())
            if delay > 0:
                conn.idle = False
                self._in_flight += 1
                self._loop.call_later(delay, self._send_due, conn)
                return
        self._send(conn)

    def _send_due(self, conn: _Terminal) -> None:
        self._in_flight -= 1
        conn.idle = True
        if self._may_send():
            self._send(conn)
        self._check_done()

    def _send(self, conn: _Terminal) -> None:
        if self._left is not None:
            self._left -= 1
        conn.beat()
        if not conn.idle:
            self._in_flight += 1
            self.report.heartbeats_sent += 1

    def answered(self, conn: _Terminal) -> None:
        self._in_flight -= 1
        self._last = time.perf_counter()
        conn.idle = True
        self._send_or_wait(conn)
        self._check_done()

    def lost(self, conn: _Terminal) -> None:
        self._in_flight -= 1
        self.report.failures[conn.code] = BlastFailure.CONNECTION_LOST
        self._check_done()

    def _check_done(self) -> None:
        if self._in_flight == 0 and not self.done.done():
            self._stopping = True
            self.report.elapsed_s = self._last - self._t0
            self.report.cpu_s = time.process_time() - self._cpu0
            self.done.set_result(None)


async def _connect(blast: _Blast, ref: TerminalRef, host: str, port: int, timeout_s: float) -> _Terminal | None:
    loop = asyncio.get_running_loop()
    conn: _Terminal | None = None
    try:
        async with asyncio.timeout(timeout_s):
            _, conn = await loop.create_connection(lambda: _Terminal(blast, ref), host, port)
            conn.register()
            reply = await conn.registered
    except (OSError, TimeoutError) as exc:
        blast.report.failures[ref.resource_code] = (
            BlastFailure.NO_ANSWER if conn is not None and isinstance(exc, TimeoutError)
            else BlastFailure.CONNECT_FAILED
        )
        if conn is not None and conn.transport is not None:
            conn.transport.close()
        return None
    if reply is None or not reply.ok:
        blast.report.failures[ref.resource_code] = (
            BlastFailure.NO_ANSWER if reply is None else BlastFailure.REFUSED
        )
        if conn.transport is not None:
            conn.transport.close()
        return None
    return conn


async def blast(
    terminals: Sequence[TerminalRef],
    host: str,
    port: int,
    platform_code: str,
    plan: BlastPlan,
    *,
    on_registered: Callable[[BlastReport], None] | None = None,
    go: Callable[[], Awaitable[None]] | None = None,
) -> BlastReport:
    """Register every terminal, wait for ``go`` (if given), send heartbeats per ``plan``, close all."""
    b = _Blast(platform_code, plan, len(terminals))
    t = time.perf_counter()
    got = await asyncio.gather(*(_connect(b, ref, host, port, plan.register_timeout_s) for ref in terminals))
    conns = [c for c in got if c is not None]
    b.report.registered = len(conns)
    b.report.register_s = time.perf_counter() - t
    try:
        if on_registered is not None:
            on_registered(b.report)
        if go is not None:
            await go()
        if conns:
            b.start(conns)
            await b.done
    finally:
        for c in conns:
            if c.transport is not None:
                c.transport.close()
        await asyncio.sleep(0)  # let the transports close before the loop goes away
    return b.report


def _shard(terminals: Sequence[TerminalRef], spec: str) -> list[TerminalRef]:
    i, _, k = spec.partition("/")
    index, total = int(i), int(k)
    if not 0 <= index < total:
        raise ValueError(spec)
    return list(terminals[index::total])


async def _stdin_line() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.heartbeat_blaster", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--controller", default="127.0.0.1:9300", help="host:port of the ip_speaker adapter")
    p.add_argument("--inventory", type=Path, default=None, help="county directory (default: config/anning)")
    p.add_argument("--terminals", type=int, default=None, help="use only the first N ip_speaker terminals")
    p.add_argument("--shard", default="0/1", help="i/k: this process takes every k-th terminal from i")
    p.add_argument("--count", type=int, default=None, help="heartbeats to send in total (this process)")
    p.add_argument("--duration", type=float, default=None, help="seconds to send for")
    p.add_argument("--rate", type=float, default=None, help="total heartbeats/s (default: as fast as answered)")
    p.add_argument("--encode-once", action="store_true", help="reuse one encoded frame per terminal")
    p.add_argument("--go-on-stdin", action="store_true", help="after registering, wait for a line on stdin")
    args = p.parse_args(argv)
    host, _, port_text = args.controller.rpartition(":")
    if not host or not port_text.isdigit():
        p.error(f"--controller 需要 host:port 形式，例如 127.0.0.1:9300（当前为 {args.controller!r}）")
    if args.count is None and args.duration is None:
        p.error("请给出 --count 或 --duration，否则压测不会自行结束")
    from terminals.inventory import default_inventory, load_inventory

    inv = load_inventory(args.inventory) if args.inventory else default_inventory()
    refs = [t for t in inv.terminals if t.adapter == "ip_speaker"][: args.terminals]
    try:
        refs = _shard(refs, args.shard)
    except ValueError:
        p.error(f"--shard 需要 i/k 形式且 0 ≤ i < k，例如 0/2（当前为 {args.shard!r}）")
    plan = BlastPlan(args.count, args.duration, args.rate, args.encode_once)

    def registered(r: BlastReport) -> None:
        print(json.dumps({"event": "registered", "registered": r.registered, "terminals": r.terminals,
                          "register_s": round(r.register_s, 3)}), flush=True)

    async def run() -> BlastReport:
        return await blast(refs, host, int(port_text), inv.platform_code, plan, on_registered=registered,
                           go=_stdin_line if args.go_on_stdin else None)

    with contextlib.suppress(KeyboardInterrupt):
        report = asyncio.run(run())
        print(report.to_json(), flush=True)
        return 0 if report.registered == report.terminals and not report.failures else 1
    return 130


if __name__ == "__main__":
    sys.exit(main())
