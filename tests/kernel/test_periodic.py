"""Background rounds: woken rounds coalesce, timed rounds repeat, a failing round is logged and retried,
and stopping waits for a round under way instead of cancelling it half-way (the cause of "database is
locked" at shutdown: a write cut off mid-transaction)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from broadcast.periodic import Periodic
from tests.helpers.poll import until


async def test_a_burst_of_wake_ups_makes_one_round() -> None:
    rounds: list[int] = []

    async def work() -> None:
        rounds.append(len(rounds))

    p = Periodic("t", work, coalesce_s=0.02)
    await p.start()
    for _ in range(100):
        p.wake()
    await until(lambda: rounds == [0])
    await asyncio.sleep(0.05)  # nothing more was asked for: nothing more runs
    assert rounds == [0]
    p.wake()
    await until(lambda: rounds == [0, 1])
    await p.stop()
    assert not p.running


async def test_timed_rounds_repeat_until_stopped() -> None:
    n = 0

    async def work() -> None:
        nonlocal n
        n += 1

    p = Periodic("t", work, every_s=0.01)
    await p.start()
    await until(lambda: n >= 3)
    await p.stop()
    after = n
    await asyncio.sleep(0.05)
    assert n == after


async def test_stop_lets_the_round_under_way_finish() -> None:
    gate, started = asyncio.Event(), asyncio.Event()
    finished: list[bool] = []

    async def work() -> None:
        started.set()
        await gate.wait()  # e.g. a transaction in flight
        finished.append(True)

    p = Periodic("t", work)
    await p.start()
    p.wake()
    await started.wait()
    stopping = asyncio.create_task(p.stop())
    await asyncio.sleep(0.02)
    assert not stopping.done() and finished == []  # not cancelled, still waiting for the round
    gate.set()
    await stopping
    assert finished == [True]


async def test_a_failing_round_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def work() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk full")

    p = Periodic("receipts", work, retry_s=0.01)
    await p.start()
    with caplog.at_level(logging.ERROR, logger="broadcast.periodic"):
        p.wake()
        await until(lambda: calls == 2)
    await p.stop()
    assert "receipts: background round failed" in caplog.text and "disk full" in caplog.text
