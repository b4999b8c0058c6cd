"""Adapter registry (Mopidy-style): adapters are found through the ``ebc.adapters`` entry-point group
(built-ins are registered the same way in pyproject.toml), built from configuration, and started.
An adapter that fails to load or start is marked stopped with its error; the service keeps running.

Never imports a concrete adapter by name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib.metadata import entry_points
from typing import Any

from adapters import config_schema
from adapters.base import Adapter, AdapterSink
from broadcast.clock import Clock
from broadcast.model import TerminalRef

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ebc.adapters"

AdapterFactory = Callable[[Mapping[str, Any], Clock], Adapter]


class AdapterState(StrEnum):
    LOADED = "loaded"
    RUNNING = "running"
    STOPPED = "stopped"  # failed to load or start; see error
    DISABLED = "disabled"


@dataclass
class AdapterEntry:
    name: str
    state: AdapterState
    adapter: Adapter | None = None
    error: str = ""


def discover() -> dict[str, AdapterFactory]:
    """Adapter factories by name from installed entry points; broken ones are skipped and logged."""
    found: dict[str, AdapterFactory] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken plugin must not stop the controller
            log.error("adapter plugin %s failed to import: %s", ep.name, exc)
            found[ep.name] = _broken_factory(ep.name, exc)
    return found


def _broken_factory(name: str, exc: Exception) -> AdapterFactory:
    def factory(config: Mapping[str, Any], clock: Clock) -> Adapter:
        raise RuntimeError(f"adapter {name} could not be imported: {exc}")

    return factory


class AdapterRegistry:
    def __init__(self, clock: Clock, factories: Mapping[str, AdapterFactory] | None = None) -> None:
        self._clock = clock
        self._factories = dict(factories) if factories is not None else discover()
        self._entries: dict[str, AdapterEntry] = {}

    def build(self, configs: Mapping[str, Mapping[str, Any]]) -> None:
        """Instantiate every adapter named in ``configs`` (``enabled = false`` skips one)."""
        for name, cfg in configs.items():
            if not cfg.get("enabled", True):
                self._entries[name] = AdapterEntry(name, AdapterState.DISABLED)
                continue
            problems = config_schema.check(name, cfg)
            if problems:
                msg = "；".join(problems)
                log.error("adapter %s not started: %s", name, msg)
                self._entries[name] = AdapterEntry(name, AdapterState.STOPPED, error=msg)
                continue
            factory = self._factories.get(name)
            if factory is None:
                msg = f"no adapter named {name!r} is installed (known: {', '.join(sorted(self._factories))})"
                log.error(msg)
                self._entries[name] = AdapterEntry(name, AdapterState.STOPPED, error=msg)
                continue
            try:
                adapter = factory(cfg, self._clock)
                if not isinstance(adapter, Adapter):
                    raise TypeError(f"{name} does not implement the Adapter protocol")
                self._entries[name] = AdapterEntry(name, AdapterState.LOADED, adapter)
            except Exception as exc:
                log.error("adapter %s failed to load: %s", name, exc)
                self._entries[name] = AdapterEntry(name, AdapterState.STOPPED, error=str(exc))

    def add(self, name: str, adapter: Adapter) -> None:
        self._entries[name] = AdapterEntry(name, AdapterState.LOADED, adapter)

    async def start_all(self, sink: AdapterSink, terminals: Sequence[TerminalRef]) -> None:
        for entry in self._entries.values():
            if entry.state is not AdapterState.LOADED or entry.adapter is None:
                continue
            mine = [t for t in terminals if t.adapter == entry.name]
            try:
                await entry.adapter.start(sink, mine)
                entry.state = AdapterState.RUNNING
                log.info("adapter %s running (%d terminals)", entry.name, len(mine))
            except Exception as exc:
                log.error("adapter %s failed to start: %s", entry.name, exc)
                entry.state = AdapterState.STOPPED
                entry.error = str(exc)

    async def close_all(self) -> None:
        for entry in self._entries.values():
            if entry.state is AdapterState.RUNNING and entry.adapter is not None:
                try:
                    await entry.adapter.close()
                except Exception:
                    log.exception("adapter %s failed to close cleanly", entry.name)
                entry.state = AdapterState.STOPPED

    def get(self, name: str) -> Adapter | None:
        entry = self._entries.get(name)
        if entry is None or entry.state is not AdapterState.RUNNING:
            return None
        return entry.adapter

    def entries(self) -> list[AdapterEntry]:
        return list(self._entries.values())

    def describe(self) -> list[dict[str, Any]]:
        out = []
        for e in self._entries.values():
            info: dict[str, Any] = {"name": e.name, "state": str(e.state), "error": e.error}
            if e.adapter is not None and e.state is AdapterState.RUNNING:
                try:
                    info["status"] = e.adapter.status()
                except Exception as exc:
                    info["status_error"] = str(exc)
            out.append(info)
        return out
