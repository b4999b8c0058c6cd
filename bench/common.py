"""Pieces the benchmark scripts share: the simulated county in its own process, waiting for a
condition, and the controller's terminals all online. Benchmarks only; never imported by the product."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


async def wait_for(pred: Callable[[], Awaitable[T]], within: float) -> T:
    """Poll ``pred`` until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = await pred()
        if found:
            return found
        await asyncio.sleep(0.02)
    raise TimeoutError("benchmark condition not reached")


@asynccontextmanager
async def fleet_process(inventory: Path, port: int, time_scale: float) -> AsyncIterator[Any]:
    """`python -m sim.fleet` in a separate process, speaking the real protocol to ``port``; stopped
    (SIGTERM) on exit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sim.fleet",
        "--controller",
        f"127.0.0.1:{port}",
        "--inventory",
        str(inventory),
        "--time-scale",
        str(time_scale),
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def all_online(ctl: Any, within: float = 60) -> None:
    """Every terminal of the controller's inventory has registered."""
    n = len(ctl.inventory.terminals)

    async def ready() -> bool:
        c = ctl.links.counts()
        return bool(c["online"] + c["broadcasting"] == n)

    await wait_for(ready, within)
