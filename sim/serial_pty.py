"""Hosts a simulated serial device on a pty pair (the adapter opens the slave path) or on a TCP socket
on 127.0.0.1 (the adapter opens ``socket://127.0.0.1:PORT``, like a serial-device server).

Owns only byte transport for simulators: the device sees ``data_received(bytes)`` and answers through
the ``send`` callable it was given. Never parses protocols, never sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Callable
from typing import Protocol

Send = Callable[[bytes], None]


class ByteDevice(Protocol):
    def attach(self, send: Send) -> None:
        """Called once with the function that writes bytes back to the adapter."""

    def data_received(self, data: bytes) -> None: ...


class PtyHost:
    """A pty pair: the device on the master side, ``slave_path`` for the adapter."""

    def __init__(self, device: ByteDevice) -> None:
        self.device = device
        self._master = -1
        self._slave = -1
        self._pending = bytearray()
        self._writer_on = False
        self.slave_path = ""

    @property
    def url(self) -> str:
        return self.slave_path

    def start(self) -> str:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: a plain byte pipe like a real UART
        os.set_blocking(self._master, False)
        self.slave_path = os.ttyname(self._slave)
        loop = asyncio.get_running_loop()
        loop.add_reader(self._master, self._on_readable)
        self.device.attach(self._send)
        return self.slave_path

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # EIO while no process holds the slave open
        if data:
            self.device.data_received(data)

    def _send(self, data: bytes) -> None:
        if self._master < 0:
            return
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        while self._pending:
            try:
                n = os.write(self._master, self._pending)
            except BlockingIOError:
                break
            del self._pending[:n]
        loop = asyncio.get_running_loop()
        if self._pending and not self._writer_on:
            loop.add_writer(self._master, self._flush)
            self._writer_on = True
        elif not self._pending and self._writer_on:
            loop.remove_writer(self._master)
            self._writer_on = False

    async def close(self) -> None:
        if self._master < 0:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._master)
        if self._writer_on:
            loop.remove_writer(self._master)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, host: TcpHost) -> None:
        self._host = host
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._host._clients.append(self)

    def data_received(self, data: bytes) -> None:
        self._host.device.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self._host._clients:
            self._host._clients.remove(self)


class TcpHost:
    """A TCP listener on 127.0.0.1 with an ephemeral port; answers go to every connected client."""

    def __init__(self, device: ByteDevice) -> None:
        self.device = device
        self._server: asyncio.Server | None = None
        self._clients: list[_TcpProtocol] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    async def start(self) -> str:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _TcpProtocol(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self.device.attach(self._send)
        return self.url

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def _send(self, data: bytes) -> None:
        for client in self._clients:
            if client.transport is not None and not client.transport.is_closing():
                client.transport.write(data)

    async def close(self) -> None:
        for client in list(self._clients):
            if client.transport is not None:
                client.transport.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
