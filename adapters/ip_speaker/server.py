"""The controller-side TCP server shell of the §4.1 protocol (eb-protocols §4.1), written once for every
adapter whose peers connect to the county: IP loudspeaker terminals (``ip_speaker.adapter``) and
street/village front-ends (``front_end.adapter``).

Owns: the settings every such server reads (host, port, platform code, ack/heartbeat timeouts), the
listening socket, the open ``Link``s, reading and decoding each connection, detaching a connection that
ends, the heartbeat-silence loop, the session counter, sending frames and replies, and the frame
counters. What a frame *means* — binding, requests, reports — is the adapter's, told through the
``FrameHandler`` it hands in (composition: the server holds no adapter state and the adapter reads no
server attribute it was not given).

Never retries, never sleeps except between liveness checks, never touches the sink, the store or the
dispatcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from adapters.ip_speaker.codec import DecodeError, Frame, HeaderVariant, PacketType, encode_frame
from adapters.ip_speaker.link import Link, LinkLost
from adapters.ip_speaker.payloads import Reply
from broadcast.clock import Clock
from broadcast.codes import ResourceCode

READ_CHUNK = 1 << 16
# Counters every server keeps; an adapter names its own extra ones (and their order in ``status()``).
SHARED_COUNTERS = ("frames_in", "frames_out", "decode_errors")


class FrameHandler(Protocol):
    """What the adapter running a ``FrameServer`` does with what arrives on it."""

    def on_frame(self, link: Link, frame: Frame) -> None: ...

    def on_decode_error(self, link: Link, err: DecodeError) -> None:
        """A frame that could not be decoded was dropped (already counted in ``decode_errors``)."""

    def on_detach(self, link: Link, reason: str) -> None:
        """``link`` ended (peer closed, dropped, silent): unbind what was bound to it — that is news."""

    def on_shutdown(self) -> None:
        """The server is closing: forget every binding quietly — shutting down is not news."""

    def check_liveness(self) -> int:
        """Detach peers silent for longer than the heartbeat timeout; returns how many."""


@dataclass(frozen=True)
class ServerSettings:
    """One adapter section's server keys, read once (types are checked by the registry's schema)."""

    platform_code: str
    host: str
    port: int
    ack_timeout_s: float
    heartbeat_timeout_s: float
    liveness_check_s: float

    @classmethod
    def read(
        cls,
        adapter: str,
        config: Mapping[str, Any],
        *,
        default_port: int,
        default_ack_timeout_s: float,
        error: type[ValueError],
    ) -> ServerSettings:
        """Read the section; an unusable platform code raises ``error`` with what to fix."""
        code = str(config.get("platform_code", ""))
        try:
            ResourceCode.parse(code)
        except ValueError as exc:
            raise error(
                f"{adapter} 适配器缺少有效的 platform_code（23 位资源编码），当前为 {code!r}："
                "请在配置中填写本平台资源编码"
            ) from exc
        heartbeat_timeout = float(config.get("heartbeat_timeout_s", 90.0))
        return cls(
            platform_code=code,
            host=str(config.get("host", "127.0.0.1")),
            port=int(config.get("port", default_port)),
            ack_timeout_s=float(config.get("ack_timeout_s", default_ack_timeout_s)),
            heartbeat_timeout_s=heartbeat_timeout,
            liveness_check_s=float(config.get("liveness_check_s", min(10.0, heartbeat_timeout / 3))),
        )


class FrameServer:
    """The listening side of one adapter; see the module docstring."""

    def __init__(
        self,
        name: str,
        settings: ServerSettings,
        handler: FrameHandler,
        clock: Clock,
        *,
        counters: Sequence[str],
        variant: HeaderVariant = HeaderVariant.STANDARD,
        backlog: int | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.variant = variant
        self.port = settings.port  # the bound port once started (settings.port 0 = ephemeral)
        self.counts: dict[str, int] = dict.fromkeys((*counters, *SHARED_COUNTERS), 0)
        self._handler = handler
        self._clock = clock
        self._backlog = backlog
        self._links: set[Link] = set()
        self._server: asyncio.Server | None = None
        self._checker: asyncio.Task[None] | None = None
        self._sessions = itertools.count(1)

    @property
    def connections(self) -> int:
        return len(self._links)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        if self._backlog is None:
            self._server = await asyncio.start_server(self._serve, s.host, self.port, limit=READ_CHUNK)
        else:
            self._server = await asyncio.start_server(
                self._serve, s.host, self.port, backlog=self._backlog, limit=READ_CHUNK
            )
        self.port = self._server.sockets[0].getsockname()[1]
        if s.heartbeat_timeout_s > 0 and s.liveness_check_s > 0:
            self._checker = asyncio.create_task(self._liveness_loop(), name=f"{self.name}-liveness")

    async def close(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
            self._checker = None
        if self._server is not None:
            self._server.close()
        self._handler.on_shutdown()
        for link in list(self._links):
            self.drop(link, "适配器关闭")
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- connections ---------------------------------------------------------------------------

    def open_link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Link:
        """A new connection (from the listener, or handed in by an in-process harness)."""
        link = Link(reader, writer, self.variant)
        self._links.add(link)
        return link

    def frame_in(self, link: Link, frame: Frame) -> None:
        """One decoded frame from ``link``: counted, then the handler's."""
        self.counts["frames_in"] += 1
        self._handler.on_frame(link, frame)

    def detach(self, link: Link, reason: str) -> None:
        """``link`` is over: the handler unbinds it (news), then it is closed."""
        self._links.discard(link)
        self._handler.on_detach(link, reason)
        link.close(reason)

    def drop(self, link: Link, reason: str) -> None:
        """Close ``link`` without telling the handler (it has already let go of it: replaced, shutdown)."""
        self._links.discard(link)
        link.close(reason)

    def drop_silent(self, last_seen: Iterable[tuple[Link, float]], reason: str) -> int:
        """Detach every link last heard from longer than the heartbeat timeout ago; returns how many."""
        now = self._clock.monotonic()
        silent = [link for link, seen in last_seen if now - seen > self.settings.heartbeat_timeout_s]
        for link in silent:
            self.detach(link, reason)
        return len(silent)

    # -- sending -------------------------------------------------------------------------------

    def next_session(self) -> int:
        return next(self._sessions) & 0xFFFFFFFF

    def send(self, link: Link, frame: Frame) -> None:
        """Queue one frame on ``link`` (raises ``LinkLost`` when it is closed)."""
        link.send(encode_frame(frame))
        self.counts["frames_out"] += 1

    def reply(self, link: Link, frame: Frame, result: int, desc: str, targets: tuple[str, ...]) -> None:
        """Answer the request ``frame`` with a Reply addressed to ``targets``; a closed link is let go."""
        out = Frame(
            frame.session_id,
            PacketType.RESPONSE,
            self.settings.platform_code,
            targets,
            frame.business_type,
            Reply(result, desc).encode(),
        )
        with contextlib.suppress(LinkLost):
            self.send(link, out)

    # -- the loops -----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = self.open_link(reader, writer)
        try:
            while not link.closed:
                data = await reader.read(READ_CHUNK)
                if not data:
                    break
                for item in link.decoder.feed(data):
                    if isinstance(item, DecodeError):
                        self.counts["decode_errors"] += 1
                        self._handler.on_decode_error(link, item)
                    else:
                        self.frame_in(link, item)
                    if link.closed:
                        break
        except (ConnectionError, OSError):
            pass
        finally:
            self.detach(link, "连接断开")

    async def _liveness_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.liveness_check_s)
            self._handler.check_liveness()
