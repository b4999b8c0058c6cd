"""Terminal link health as the adapters report it: online / offline / fault / broadcasting.

The one place the core keeps link state (adapters keep their own socket view): availability follows
the last report (Home Assistant style); a transition is logged, stored once and emitted as
``LinkChanged`` with the state it left; heartbeats only refresh an in-memory last-seen, written in
batches. Never talks to adapters directly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.events import Events, LinkChanged
from broadcast.model import LinkState
from broadcast.periodic import Periodic
from broadcast.store.inventory import LinkChange, record_last_seen, record_link_changes

log = logging.getLogger(__name__)


class LinkTracker:
    def __init__(self, engine: AsyncEngine, events: Events, *, flush_interval_s: float = 1.0) -> None:
        self._engine = engine
        self._events = events
        self._state: dict[str, LinkState] = {}
        self._changed_at: dict[str, datetime] = {}
        self._terminals: set[str] = set()
        self._last_seen: dict[str, datetime] = {}
        self._dirty_seen: dict[str, datetime] = {}
        self._changes: list[LinkChange] = []
        self._writer = Periodic("link-tracker", self.flush, every_s=flush_interval_s, retry_s=flush_interval_s)

    def seed(self, states: Mapping[str, LinkState], changed_at: Mapping[str, datetime] | None = None) -> None:
        """The terminals, their starting states and when those last changed (from the store). Other
        resources (front-ends, transmitters) are tracked too when adapters report them, but
        ``counts()`` is about terminals."""
        self._state.update(states)
        self._terminals.update(states)
        self._changed_at.update(changed_at or {})

    def state(self, terminal_code: str) -> LinkState:
        return self._state.get(terminal_code, LinkState.OFFLINE)

    def changed_at(self, terminal_code: str) -> datetime | None:
        """When the link state last changed (this run, or as stored before it)."""
        return self._changed_at.get(terminal_code)

    def last_seen(self, terminal_code: str) -> datetime | None:
        return self._last_seen.get(terminal_code)

    def counts(self) -> dict[str, int]:
        out = {str(s): 0 for s in LinkState}
        for code, s in self._state.items():
            if code in self._terminals or not self._terminals:
                out[str(s)] += 1
        return out

    def link(self, terminal_code: str, state: LinkState, at: datetime, detail: str = "") -> None:
        old = self._state.get(terminal_code)
        self._last_seen[terminal_code] = at
        self._dirty_seen[terminal_code] = at
        if old is state:
            return
        self._state[terminal_code] = state
        self._changed_at[terminal_code] = at
        self._changes.append(LinkChange(terminal_code, state, at, detail))
        level = logging.INFO if state in (LinkState.ONLINE, LinkState.BROADCASTING) else logging.WARNING
        log.log(level, "terminal %s %s → %s %s", terminal_code, old or "unknown", state, detail)
        self._events.emit(LinkChanged(terminal_code, state, old, at, detail))

    def heartbeat(self, terminal_code: str, at: datetime) -> None:
        self._last_seen[terminal_code] = at
        self._dirty_seen[terminal_code] = at

    async def start(self) -> None:
        await self._writer.start()

    async def flush(self) -> None:
        changes, self._changes = self._changes, []
        seen, self._dirty_seen = self._dirty_seen, {}
        try:
            await record_link_changes(self._engine, changes)
            await record_last_seen(self._engine, seen)
        except Exception:
            self._changes[:0] = changes
            for k, v in seen.items():
                self._dirty_seen.setdefault(k, v)
            raise

    async def close(self) -> None:
        """Stop the writer (letting a write under way finish), then write what is left."""
        await self._writer.stop()
        await self.flush()
