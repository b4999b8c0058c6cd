"""Shared serial-line transport for adapters that talk to devices over RS-232/RS-485 (FM RDS encoders,
cable head-end inserters).

Owns: opening a pyserial-asyncio-fast connection on a device path (``/dev/ttyUSB0``, a pty slave) or a
``socket://host:port`` URL, fanning received bytes out to listeners, and exactly one ``asyncio.Lock``
per line so that request/acknowledge exchanges of several adapters sharing a multi-drop line never
interleave. Lines are shared per (event loop, URL) and reference-counted.

Also the one classification of a failed request/acknowledge exchange into the adapter contract's
outcome, shared by the FM and cable adapters. Never parses frames (codecs do that), never retries or
sleeps.
Note: pyserial's ``loop://`` URL does not work with asyncio; use a pty pair or ``socket://``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Protocol

import serial
import serial_asyncio_fast

from broadcast.messages import FailureKind, SendResult

_LOG = logging.getLogger(__name__)

Listener = Callable[[bytes], None]


class LineFailure(StrEnum):
    """How a request/acknowledge exchange with a serial device failed (shared by FM and cable TV)."""

    LINK = "link"  # the line could not be opened or written
    TIMEOUT = "timeout"  # no acknowledgement after all retransmissions
    NACK = "nack"  # the device refused the request (not a line error)
    LINE_NOISE = "line_noise"  # the device kept reporting CRC/framing errors


def classify_line_failure(failure: LineFailure | None, detail: str) -> SendResult:
    """The adapter contract's classification of a failed serial exchange: a refusal is permanent,
    everything else is worth retrying."""
    if failure is LineFailure.NACK:
        return SendResult.permanent(FailureKind.REJECTED, detail)
    if failure is LineFailure.LINK:
        return SendResult.retry(FailureKind.NOT_CONNECTED, detail)
    if failure is LineFailure.LINE_NOISE:
        return SendResult.retry(FailureKind.PROTOCOL, detail)
    return SendResult.retry(FailureKind.TIMEOUT, detail)


def require_setting(config: Mapping[str, Any], key: str, message: str) -> str:
    """A mandatory adapter setting; ``message`` (Chinese) says what to fill in."""
    value = config.get(key)
    if not value:
        raise ValueError(message.format(key=key))
    return str(value)


class SerialLineError(Exception):
    """The line could not be opened or written; carries the line URL."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"串口线路 {url} 不可用：{detail}。请检查设备连接、端口路径或串口服务器地址。")
        self.url = url
        self.detail = detail


class _LineProtocol(asyncio.Protocol):
    def __init__(self, line: SerialLine) -> None:
        self._line = line

    def data_received(self, data: bytes) -> None:
        self._line._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._line._on_lost(exc)


class SerialLine:
    """One physical (or simulated) serial line. Use ``async with line.lock`` around an exchange."""

    def __init__(self, url: str, baudrate: int = 9600) -> None:
        self.url = url
        self.baudrate = baudrate
        self.lock = asyncio.Lock()
        self._transport: asyncio.BaseTransport | None = None
        self._listeners: list[Listener] = []
        self._closed_waiter: asyncio.Future[None] | None = None
        self._open_lock = asyncio.Lock()
        self.bytes_in = 0
        self.bytes_out = 0
        self.opens = 0
        self.last_error = ""

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def ensure_open(self) -> None:
        """Open the line if it is not open; raises SerialLineError when the device is absent."""
        async with self._open_lock:
            if self.is_open:
                return
            loop = asyncio.get_running_loop()
            self._closed_waiter = loop.create_future()
            try:
                transport, _ = await serial_asyncio_fast.create_serial_connection(
                    loop, lambda: _LineProtocol(self), self.url, baudrate=self.baudrate
                )
            except (OSError, serial.SerialException, ValueError) as exc:
                self._closed_waiter = None
                self.last_error = str(exc)
                raise SerialLineError(self.url, str(exc)) from exc
            self._transport = transport
            self.opens += 1
            _LOG.info("serial line %s open", self.url)

    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise SerialLineError(self.url, "line is not open")
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(data)
        self.bytes_out += len(data)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _on_data(self, data: bytes) -> None:
        self.bytes_in += len(data)
        for listener in list(self._listeners):
            listener(data)

    def _on_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.last_error = str(exc)
            _LOG.warning("serial line %s lost: %s", self.url, exc)
        self._transport = None
        waiter = self._closed_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def close(self) -> None:
        transport = self._transport
        waiter = self._closed_waiter
        if transport is not None and not transport.is_closing():
            transport.close()
        if waiter is not None:
            await waiter
        self._transport = None

    def status(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "open": self.is_open,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "opens": self.opens,
            "last_error": self.last_error,
        }


_Registry = dict[str, tuple[SerialLine, int]]
_REGISTRIES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Registry] = weakref.WeakKeyDictionary()


def acquire_line(url: str, baudrate: int = 9600) -> SerialLine:
    """Return the shared line for ``url`` in this event loop (not yet opened), counting one more user."""
    registry = _REGISTRIES.setdefault(asyncio.get_running_loop(), {})
    line, users = registry.get(url, (None, 0))
    if line is None:
        line = SerialLine(url, baudrate)
    registry[url] = (line, users + 1)
    return line


async def release_line(line: SerialLine) -> None:
    """Drop one user of ``line``; the last user closes it."""
    registry = _REGISTRIES.setdefault(asyncio.get_running_loop(), {})
    entry = registry.get(line.url)
    if entry is None or entry[0] is not line:
        await line.close()
        return
    users = entry[1] - 1
    if users > 0:
        registry[line.url] = (line, users)
        return
    del registry[line.url]
    await line.close()


class _Attached(Protocol):
    def detach(self) -> None: ...


async def shut_down_device(
    timer: asyncio.TimerHandle | None,
    tick_task: asyncio.Task[None] | None,
    device: _Attached | None,
    line: SerialLine | None,
) -> None:
    """The common close of a serial-device adapter (FM, cable TV): stop its end-time timer and tick,
    detach its device client from the line and release the line."""
    if timer is not None:
        timer.cancel()
    if tick_task is not None:
        tick_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tick_task
    if device is not None:
        device.detach()
    if line is not None:
        await release_line(line)
