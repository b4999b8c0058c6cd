"""Polling with a deadline instead of sleeping: the one ``until`` of the test suite."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(cond: Callable[[], object], within_s: float = 5.0, *, every_s: float = 0.005) -> None:
    """Poll ``cond`` until it is true; fail at the deadline (the loop's own clock, not the test's)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(every_s)
