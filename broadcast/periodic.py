"""Background rounds (后台任务): run a piece of work every so often, or when woken, until stopped.

The one loop of the product's background writers (receipts, link state, the desk's clock, report jobs).
Stopping never cancels a round half-way: a database write cut off mid-transaction can leave the
connection holding SQLite's write lock, and the next writer then waits out its timeout ("database is
locked"). ``stop`` lets the running round finish and returns; the owner then does its final round.
A round that fails is logged and retried after ``retry_s``. Never does I/O itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    """``work`` every ``every_s`` seconds (None: only when woken); ``coalesce_s`` after a wake-up, so a
    burst of wake-ups makes one round."""

    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[object]],
        *,
        every_s: float | None = None,
        coalesce_s: float = 0.0,
        retry_s: float = 1.0,
    ) -> None:
        self._name = name
        self._work = work
        self._every = every_s
        self._coalesce = coalesce_s
        self._retry = retry_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Run a round soon (after ``coalesce_s``)."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """End the loop after the round under way, if any; never interrupts one."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _sleep(self, seconds: float | None) -> None:
        """Until woken (or stopped) or ``seconds`` pass."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _run(self) -> None:
        while not self._stopping:
            await self._sleep(self._every)
            if self._stopping:
                return
            if self._wake.is_set() and self._coalesce:
                await asyncio.sleep(self._coalesce)
            self._wake.clear()
            try:
                await self._work()
            except Exception:
                log.exception("%s: background round failed; will retry", self._name)
                await asyncio.sleep(self._retry)
                self._wake.set()
