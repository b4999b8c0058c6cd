"""The one reconnecting §4.1 client of the simulated devices: the link a simulated IP loudspeaker
(``sim.ip_terminal``) or a simulated front-end (``sim.front_end``) keeps up to the controller.

Owns: connecting, reconnecting with backoff (``broadcast.retry.RetryPolicy``, doubling from
``reconnect_initial_s`` to ``reconnect_max_s`` without jitter; a device that has ever registered starts
again from the initial delay after each lost connection), one session per connection (the writer, the
read-and-decode loop, a heartbeat every ``heartbeat_interval_s``) and ``read_frames``, the §4.1 read
loop the simulated servers use too. What the frames mean — registering, answering, reporting — is the
device's, told through the ``ClientPeer`` it hands in.

Never imports the controller core; only tests, the benchmark and the demo import ``sim``. Sleeping here
is deliberate: it stands in for heartbeat intervals and backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from adapters.ip_speaker.codec import DecodeError, Frame, FrameDecoder, HeaderVariant
from broadcast.retry import RetryPolicy

READ_CHUNK = 1 << 16


class ClientPeer(Protocol):
    """What a simulated device supplies to its ``UplinkClient``."""

    @property
    def heartbeat_interval_s(self) -> float: ...

    @property
    def registrations(self) -> int:
        """Registrations so far (0: never registered, so the backoff keeps growing)."""

    def endpoint(self) -> tuple[str, int]:
        """Where to connect now (a device may be told a new return address)."""

    def on_connected(self) -> None:
        """A connection is up and ``send`` works: register (send the opening heartbeat)."""

    def on_frame(self, frame: Frame) -> None: ...

    def send_heartbeat(self) -> None: ...

    def on_disconnected(self) -> None:
        """The connection is gone; nothing can be sent until the next ``on_connected``."""


def backoff_policy(initial_s: float, max_s: float) -> RetryPolicy:
    """The simulated devices' reconnect delays: ``initial_s``, doubling, capped at ``max_s``, no jitter."""
    return RetryPolicy(initial_s=initial_s, max_s=max_s, factor=2.0, jitter=(1.0, 1.0))


async def read_frames(
    reader: asyncio.StreamReader,
    on_frame: Callable[[Frame], None],
    *,
    writer: asyncio.StreamWriter | None = None,
) -> None:
    """Decode what ``reader`` receives (12-byte headers; undecodable frames are skipped) and hand each
    frame to ``on_frame`` until end of stream or a connection error — or, given ``writer``, until it is
    closing after a received chunk."""
    decoder = FrameDecoder(HeaderVariant.STANDARD)
    try:
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                break
            for item in decoder.feed(data):
                if not isinstance(item, DecodeError):
                    on_frame(item)
            if writer is not None and writer.is_closing():
                break
    except (ConnectionError, OSError):
        pass


class UplinkClient:
    """A device's link to the controller; see the module docstring."""

    def __init__(self, peer: ClientPeer, *, name: str, retry: RetryPolicy) -> None:
        self._peer = peer
        self._name = name
        self._retry = retry
        self._online = False
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def online(self) -> bool:
        """Whether the device wants its link (between ``start`` and ``stop``)."""
        return self._online

    def start(self) -> None:
        self._online = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Drop the link and stay away until the next ``start``."""
        self._online = False
        task, self._task = self._task, None
        if self._writer is not None:
            self._writer.close()
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def connected(self) -> bool:
        """Whether a connection is up that ``send`` can write on."""
        return self._writer is not None and not self._writer.is_closing()

    def send(self, data: bytes) -> bool:
        """Write one encoded frame on the current connection; False when there is none."""
        writer = self._writer
        if writer is None or writer.is_closing():
            return False
        writer.write(data)
        return True

    async def _run(self) -> None:
        failures = 0
        while self._online:
            try:
                reader, writer = await asyncio.open_connection(*self._peer.endpoint())
            except OSError:
                failures += 1
                await asyncio.sleep(self._retry.delay(failures))
                continue
            await self._session(reader, writer)
            if self._peer.registrations:
                failures = 0
            if self._online:
                failures += 1
                await asyncio.sleep(self._retry.delay(failures))

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._peer.on_connected()
        beat = asyncio.create_task(self._heartbeats())
        try:
            await read_frames(reader, self._peer.on_frame)
        finally:
            beat.cancel()
            self._writer = None
            self._peer.on_disconnected()
            writer.close()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self._peer.heartbeat_interval_s)
            self._peer.send_heartbeat()
