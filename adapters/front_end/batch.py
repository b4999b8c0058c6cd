"""Coalescing of per-terminal calls into one relayed instruction per front-end.

The dispatcher calls ``deliver``/``stop`` once per terminal, all at about the same moment. The batcher
collects the calls for the same (front-end, business type, EBM id) during a short window and hands
them to a flush callback as one batch; each caller awaits its own terminal's result.

Owns only the grouping and the per-terminal futures; never sends anything itself and never classifies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from adapters.ip_speaker.payloads import RequestPayload
from broadcast.messages import FailureKind, SendResult


@dataclass(frozen=True)
class BatchKey:
    front_end: str
    business_type: int
    ebm_id: str


@dataclass
class Batch:
    key: BatchKey
    payload: RequestPayload
    waiters: dict[str, list[asyncio.Future[SendResult]]] = field(default_factory=dict)

    def resolve(self, code: str, result: SendResult) -> None:
        for fut in self.waiters.get(code, ()):
            if not fut.done():
                fut.set_result(result)

    def resolve_rest(self, result: SendResult) -> None:
        for code in self.waiters:
            self.resolve(code, result)


Flush = Callable[[Batch], Awaitable[None]]


class Batcher:
    def __init__(self, window_s: float, flush: Flush) -> None:
        self._window = window_s
        self._flush = flush
        self._open: dict[BatchKey, Batch] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches_sent = 0

    async def submit(self, key: BatchKey, payload: RequestPayload, terminal_code: str) -> SendResult:
        loop = asyncio.get_running_loop()
        batch = self._open.get(key)
        if batch is None:
            batch = self._open[key] = Batch(key, payload)
            loop.call_later(self._window, self._launch, key)
        fut: asyncio.Future[SendResult] = loop.create_future()
        batch.waiters.setdefault(terminal_code, []).append(fut)
        return await fut

    def _launch(self, key: BatchKey) -> None:
        batch = self._open.pop(key, None)
        if batch is None:
            return
        self.batches_sent += 1
        task = asyncio.get_running_loop().create_task(self._run(batch), name=f"front_end-batch-{key.ebm_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: Batch) -> None:
        try:
            await self._flush(batch)
        finally:
            batch.resolve_rest(SendResult.retry(FailureKind.IO, f"前端 {batch.key.front_end} 批次未完成"))

    async def close(self) -> None:
        for batch in self._open.values():
            batch.resolve_rest(SendResult.retry(FailureKind.NOT_CONNECTED, "适配器关闭"))
        self._open.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
