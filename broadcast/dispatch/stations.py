"""Per-terminal arbitration (终端占用): which live broadcast is on air at each terminal, which one is
being sent to it now, and who waits for it. The ordering rule itself is ``preemption``.

In-memory state of the dispatcher only; never talks to adapters or the store.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from broadcast.dispatch.preemption import Rank, order_rank, preempts
from broadcast.model import DeliveryOrder, TerminalRef


@dataclass(eq=False)
class LiveBroadcast:
    """One broadcast the dispatcher is delivering: its order, its targets and its delivery tasks."""

    broadcast_id: int
    order: DeliveryOrder
    terminals: dict[str, TerminalRef]
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    stopped: bool = False
    # Terminals where this broadcast was preempted and waits to resume.
    preempted: set[str] = field(default_factory=set)
    rank: Rank = field(init=False)

    def __post_init__(self) -> None:
        self.rank = order_rank(self.order)

    def outranks(self, other: LiveBroadcast) -> bool:
        return preempts(self.rank, other.rank)


@dataclass(eq=False)
class Station:
    """One terminal as the dispatcher sees it: what it has on air, who waits for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    on_air: LiveBroadcast | None = None
    incoming: LiveBroadcast | None = None  # being sent now; if it outranks on_air, the device may cut it off
    waiting: list[LiveBroadcast] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def blocker(self, live: LiveBroadcast) -> LiveBroadcast | None:
        """What keeps ``live`` from being sent now: the item on air unless ``live`` outranks it, or a
        strictly higher-ranked delivery waiting for the same terminal."""
        cur = self.on_air
        if cur is not None and cur is not live and not cur.stopped and not live.outranks(cur):
            return cur
        for other in self.waiting:
            if other is not live and not other.stopped and other.outranks(live):
                return other
        return None

    def release(self, live: LiveBroadcast) -> None:
        """``live`` is no longer on air here: the terminal is free for whoever waits."""
        if self.on_air is live:
            self.on_air = None
            self.notify()
