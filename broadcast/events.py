"""Typed events on the way back up (事件): what happened in a stage, for whoever subscribed in ``app/``.

A stage says what happened (a delivery changed state, every delivery of a broadcast settled, a
broadcast is about to go on air, a terminal's link changed) and never knows who listens; only the
composition root subscribes the stages that care. No stage assigns a callback onto another.

Two ways to deliver, chosen by the publisher's context:

- ``emit`` (synchronous, on hot paths such as a receipt): calls the plain-function handlers at once;
  an async handler subscribed to an emitted kind is a programming error and refused at emit time.
- ``publish`` (awaited): calls every handler in subscription order and awaits the async ones, so the
  publisher goes on only once subscribers are done (a superseded broadcast is stopped before its
  replacement goes out).

A handler that raises is logged with its event and the others still run: one broken subscriber must
not stop receipts from reaching the dispatcher. Never does I/O itself.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from broadcast.model import DeliveryStatus, LinkState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryChanged:
    """One delivery moved to ``status`` (accepted by the receipt book's lifecycle check)."""

    broadcast_id: int
    ebm_id: str
    terminal_code: str
    status: DeliveryStatus


@dataclass(frozen=True)
class BroadcastSettled:
    """Every delivery of the broadcast is settled and durable (the receipts are written)."""

    broadcast_id: int


@dataclass(frozen=True)
class BroadcastAiring:
    """The broadcast is about to go on air (rendering starts); published and awaited before it does."""

    broadcast_id: int


@dataclass(frozen=True)
class LinkChanged:
    """A terminal's (or front-end's) link state changed from ``was`` (None: never seen) to ``state``."""

    terminal_code: str
    state: LinkState
    was: LinkState | None
    at: datetime
    detail: str = ""


E = TypeVar("E")
Handler = Callable[[Any], Awaitable[None] | None]


class Events:
    """The one event bus of a controller; built and subscribed by ``app/``."""

    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = {}

    def subscribe(self, kind: type[E], handler: Callable[[E], Awaitable[None] | None]) -> None:
        self._handlers.setdefault(kind, []).append(handler)

    def emit(self, event: object) -> None:
        """Deliver at once to plain-function handlers (see the module docstring)."""
        for handler in self._handlers.get(type(event), ()):
            if inspect.iscoroutinefunction(handler):
                raise TypeError(f"{type(event).__name__} is emitted synchronously; {handler!r} is async")
            try:
                handler(event)
            except Exception:
                log.exception("handler %r failed on %s", handler, event)

    async def publish(self, event: object) -> None:
        """Deliver to every handler in order, awaiting the async ones."""
        for handler in self._handlers.get(type(event), ()):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("handler %r failed on %s", handler, event)
