"""Polling with a deadline instead of sleeping: ``until`` for a condition, ``wait_until`` for an async probe
whose last answer is shown when the deadline passes. The only polling helpers of the test suite."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def until(cond: Callable[[], object], within_s: float = 5.0, *, every_s: float = 0.005) -> None:
    """Poll ``cond`` until it is true; fail at the deadline (the loop's own clock, not the test's)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(every_s)


async def wait_until(
    probe: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], within: float = 20.0
) -> Any:
    """Poll ``probe`` until ``done(result)``; fail with the last result at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last = None
    while loop.time() < deadline:
        last = await probe()
        if done(last):
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not reached within {within}s; last: {str(last)[:2000]}")
