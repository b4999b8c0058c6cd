"""One TCP connection from an IP loudspeaker terminal (or a front-end) to the controller: its decoder,
its single writer, and the requests awaiting a reply on it.

Owns the per-connection plumbing only; never knows which terminal is bound to it (the adapter keeps
that mapping), never decides what a frame means (that is the adapter) and never sleeps or retries.
"""

from __future__ import annotations

import asyncio
import itertools

from adapters.ip_speaker.codec import FrameDecoder, HeaderVariant
from adapters.ip_speaker.payloads import Payload

# Above this many bytes queued in the transport, a sender waits for the socket to drain.
HIGH_WATER = 256 * 1024


class LinkLost(ConnectionError):
    """The connection closed while a request awaited its reply."""


class Link:
    _ids = itertools.count(1)

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, variant: HeaderVariant
    ) -> None:
        self.id = next(self._ids)
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder(variant)
        self.pending: dict[int, asyncio.Future[Payload]] = {}
        self.closed = False
        self.peer = str(writer.get_extra_info("peername"))
        self._drain_lock = asyncio.Lock()
        self.decode_errors_logged = False

    def send(self, data: bytes) -> None:
        """Queue one whole frame; frames never interleave because each is one ``write``."""
        if self.closed:
            raise LinkLost(f"link {self.id} to {self.peer} is closed")
        self.writer.write(data)

    async def drain_if_needed(self) -> None:
        transport = self.writer.transport
        if transport.get_write_buffer_size() > HIGH_WATER:
            async with self._drain_lock:
                await self.writer.drain()

    def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(LinkLost(reason))
        self.pending.clear()
        self.writer.close()
