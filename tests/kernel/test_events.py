"""The event bus: handlers run in subscription order, awaited ones finish before ``publish`` returns,
an async handler on a synchronously emitted kind is refused, and one failing handler does not stop the
others."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from broadcast.events import BroadcastAiring, DeliveryChanged, Events, LinkChanged
from broadcast.model import DeliveryStatus, LinkState


async def test_publish_awaits_handlers_in_order() -> None:
    events = Events()
    seen: list[str] = []
    gate = asyncio.Event()

    async def slow(e: BroadcastAiring) -> None:
        await gate.wait()
        seen.append(f"slow {e.broadcast_id}")

    events.subscribe(BroadcastAiring, slow)
    events.subscribe(BroadcastAiring, lambda e: seen.append(f"plain {e.broadcast_id}"))
    task = asyncio.create_task(events.publish(BroadcastAiring(7)))
    await asyncio.sleep(0)
    assert not task.done() and seen == []  # the publisher waits for its subscribers
    gate.set()
    await task
    assert seen == ["slow 7", "plain 7"]


def test_emit_calls_plain_handlers_at_once_and_only_for_its_kind() -> None:
    events = Events()
    got: list[object] = []
    events.subscribe(DeliveryChanged, got.append)
    events.subscribe(LinkChanged, lambda e: got.append("link"))
    change = DeliveryChanged(1, "E", "T", DeliveryStatus.PLAYING)
    events.emit(change)
    assert got == [change]


def test_emit_refuses_an_async_handler() -> None:
    events = Events()

    async def handler(_: DeliveryChanged) -> None: ...

    events.subscribe(DeliveryChanged, handler)
    with pytest.raises(TypeError, match="emitted synchronously"):
        events.emit(DeliveryChanged(1, "E", "T", DeliveryStatus.PLAYED))


async def test_a_failing_handler_is_logged_and_the_rest_still_run(caplog: pytest.LogCaptureFixture) -> None:
    events = Events()
    got: list[str] = []

    def broken(_: LinkChanged) -> None:
        raise RuntimeError("boom")

    events.subscribe(LinkChanged, broken)
    events.subscribe(LinkChanged, lambda e: got.append(e.terminal_code))
    with caplog.at_level(logging.ERROR, logger="broadcast.events"):
        events.emit(LinkChanged("T1", LinkState.ONLINE, None, datetime.now(UTC)))
        await events.publish(LinkChanged("T2", LinkState.OFFLINE, LinkState.ONLINE, datetime.now(UTC)))
    assert got == ["T1", "T2"]
    assert caplog.text.count("RuntimeError: boom") == 2
