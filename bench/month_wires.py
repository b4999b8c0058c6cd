"""The wires of the compressed-month harness (bench.month): how the simulated terminals' heartbeat bytes
reach the REAL ``IpSpeakerAdapter``, and the barrier that waits until every frame of a tick is answered.

Two wires (say which one was measured):

- ``SocketWire``: every terminal is a real TCP client on 127.0.0.1 speaking 0xFEFD frames to the
  adapter's listening socket (the adapter's own server loop reads, decodes and answers).
- ``InProcessWire``: for volume. Each terminal's bytes are fed to the adapter's own ``FrameDecoder``
  on a ``Link`` opened on the adapter's ``FrameServer`` and every decoded frame goes to
  ``FrameServer.frame_in``, i.e. the code the server loop runs per received chunk, without kernel
  sockets; replies are encoded and written to a counting writer. A closed connection is handed to
  ``FrameServer.detach`` as the server loop does on EOF.

Owns moving bytes between simulated terminals and the adapter and counting the replies. Must never decide
the scenario, the ground truth or any figure, never import the controller or web code, and never sleep for
pacing (it only yields one loop turn while polling).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from adapters.ip_speaker.adapter import IpSpeakerAdapter
from adapters.ip_speaker.codec import DecodeError, FrameDecoder
from adapters.ip_speaker.link import Link
from adapters.ip_speaker.server import FrameServer


class Wire(Protocol):
    async def connect(self, code: str, first_frame: bytes) -> None:
        """Open a new connection and send its first frame; an older connection stays open."""

    def send(self, code: str, data: bytes) -> None: ...

    async def retire_old(self, code: str) -> None:
        """Close the terminal's previous connection (after the new one is bound)."""

    async def close_link(self, code: str) -> None:
        """The terminal closes its connection; returns when the adapter has noticed."""

    async def settle(self, expected_replies: int) -> None:
        """Return when ``expected_replies`` replies in total have come back."""

    async def close(self) -> None: ...


class _Counter:
    def __init__(self) -> None:
        self.replies = 0
        self.target = 0
        self.event = asyncio.Event()

    def got(self, n: int) -> None:
        self.replies += n
        if self.replies >= self.target:
            self.event.set()


class SocketWire:
    """Real TCP clients on 127.0.0.1 (one connection per terminal, plus the old one while replacing)."""

    def __init__(self, adapter: IpSpeakerAdapter, host: str = "127.0.0.1") -> None:
        self._adapter = adapter
        self._host = host
        self._conns: dict[str, list[tuple[asyncio.StreamWriter, asyncio.Task[None]]]] = {}
        self._count = _Counter()

    @property
    def replies(self) -> int:
        return self._count.replies

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        decoder = FrameDecoder()
        try:
            while data := await reader.read(1 << 16):
                n = sum(1 for f in decoder.feed(data) if not isinstance(f, DecodeError) and f.is_response)
                self._count.got(n)
        except (ConnectionError, OSError):
            pass

    async def connect(self, code: str, first_frame: bytes) -> None:
        reader, writer = await asyncio.open_connection(self._host, self._adapter.port)
        task = asyncio.create_task(self._pump(reader), name=f"month-wire-{code}")
        self._conns.setdefault(code, []).append((writer, task))
        writer.write(first_frame)

    def send(self, code: str, data: bytes) -> None:
        self._conns[code][-1][0].write(data)

    async def _drop(self, writer: asyncio.StreamWriter, task: asyncio.Task[None]) -> None:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
        await task

    async def retire_old(self, code: str) -> None:
        conns = self._conns[code]
        while len(conns) > 1:
            await self._drop(*conns.pop(0))

    async def close_link(self, code: str) -> None:
        for conn in self._conns.pop(code, []):
            await self._drop(*conn)
        await _until(lambda: not self._adapter.is_reachable(code), f"adapter to notice {code} closing")

    async def settle(self, expected_replies: int) -> None:
        self._count.target = expected_replies
        if self._count.replies < expected_replies:
            self._count.event.clear()
            async with asyncio.timeout(30):
                await self._count.event.wait()

    async def close(self) -> None:
        for conns in self._conns.values():
            for conn in conns:
                await self._drop(*conn)
        self._conns.clear()


class _Transport:
    def get_write_buffer_size(self) -> int:
        return 0


class _CountingWriter:
    """Stands in for a StreamWriter in-process: counts the adapter's replies."""

    transport = _Transport()

    def __init__(self, counter: _Counter) -> None:
        self._counter = counter

    def write(self, data: bytes) -> None:
        self._counter.replies += 1

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str) -> Any:
        return ("in-process", 0)


class InProcessWire:
    """Frames fed to the adapter's FrameDecoder and frame handler directly (see the module docstring)."""

    def __init__(self, adapter: IpSpeakerAdapter) -> None:
        self._server: FrameServer = adapter.server
        self._links: dict[str, list[Link]] = {}
        self._count = _Counter()

    @property
    def replies(self) -> int:
        return self._count.replies

    async def connect(self, code: str, first_frame: bytes) -> None:
        link = self._server.open_link(None, _CountingWriter(self._count))  # type: ignore[arg-type]
        self._links.setdefault(code, []).append(link)
        self.send(code, first_frame)

    def send(self, code: str, data: bytes) -> None:
        link = self._links[code][-1]
        handle = self._server.frame_in
        for item in link.decoder.feed(data):
            if isinstance(item, DecodeError):
                raise RuntimeError(f"simulated terminal {code} sent a bad frame: {item}")
            handle(link, item)

    async def retire_old(self, code: str) -> None:
        links = self._links[code]
        while len(links) > 1:
            self._server.detach(links.pop(0), "连接断开")

    async def close_link(self, code: str) -> None:
        for link in self._links.pop(code, []):
            self._server.detach(link, "连接断开")

    async def settle(self, expected_replies: int) -> None:
        if self._count.replies < expected_replies:
            raise RuntimeError(f"adapter answered {self._count.replies} of {expected_replies} frames")

    async def close(self) -> None:
        self._links.clear()


async def _until(cond: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Poll one loop turn at a time: the adapter offers no event for "this link is gone"."""
    try:
        async with asyncio.timeout(timeout_s):
            while not cond():  # noqa: ASYNC110
                await asyncio.sleep(0)
    except TimeoutError:
        raise TimeoutError(f"timed out waiting for {what}") from None
