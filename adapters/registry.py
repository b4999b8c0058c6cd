"""Adapter registry (Mopidy-style): adapters are found through the ``ebc.adapters`` entry-point group
(built-ins are registered the same way in pyproject.toml), built from configuration, and started.
An adapter that fails to load or start is marked stopped with its error; the service keeps running.

Each family declares the schema of its ``[adapters.NAME]`` section next to its adapter (the factory's
``config_schema``, see ``adapters.base``); the registry collects them from the installed adapters and
checks a section against its schema before the adapter is built, so a typo or a wrong type stops that
adapter with a message naming the key instead of being silently ignored. A name with no schema (a
third-party adapter that declares none) is not checked.

Never imports a concrete adapter by name, and never reads files.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib.metadata import entry_points
from typing import Any

from adapters.base import Adapter, AdapterSink, ConfigKey
from broadcast.clock import Clock
from broadcast.model import TerminalRef

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ebc.adapters"

AdapterFactory = Callable[[Mapping[str, Any], Clock], Adapter]
ConfigSchema = Mapping[str, ConfigKey]

# Keys every section may carry, whatever its family declares.
COMMON_KEYS: dict[str, ConfigKey] = {
    "enabled": ConfigKey((bool,), doc="false: not started"),
    "platform_code": ConfigKey((str,), doc="23-digit county platform code (filled in by the controller)"),
}


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


def collect_schemas(factories: Mapping[str, AdapterFactory]) -> dict[str, ConfigSchema]:
    """The config schema each factory declares (its ``config_schema`` attribute), by adapter name."""
    found: dict[str, ConfigSchema] = {}
    for name, factory in factories.items():
        schema = getattr(factory, "config_schema", None)
        if isinstance(schema, Mapping):
            found[name] = schema
    return found


def check_section(name: str, section: Mapping[str, Any], schema: ConfigSchema | None) -> list[str]:
    """Problems with one adapter's section, each a Chinese sentence naming the key; [] when fine or when
    there is no schema to check against."""
    if schema is None:
        return []
    keys = {**COMMON_KEYS, **schema}
    problems: list[str] = []
    for key, value in section.items():
        spec = keys.get(key)
        if spec is None:
            problems.append(f"[adapters.{name}] 中的 {key} 不是有效配置项，可用：{', '.join(sorted(keys))}")
        elif not isinstance(value, spec.types) or (isinstance(value, bool) and bool not in spec.types):
            wanted = "/".join(t.__name__ for t in spec.types)
            problems.append(f"[adapters.{name}] {key} 应为 {wanted}，当前为 {value!r}")
    for key, spec in keys.items():
        if spec.required and key not in section:
            problems.append(f"[adapters.{name}] 缺少必填项 {key}（{spec.doc}）")
    return problems


def _broken_factory(name: str, exc: Exception) -> AdapterFactory:
    def factory(config: Mapping[str, Any], clock: Clock) -> Adapter:
        raise RuntimeError(f"adapter {name} could not be imported: {exc}")

    return factory


class AdapterRegistry:
    """Builds, starts and describes the adapters. ``factories`` replaces the installed ones (tests, an
    embedding); a section is still checked against the schema of the installed family of its name, or
    of the given factory when that declares one."""

    def __init__(self, clock: Clock, factories: Mapping[str, AdapterFactory] | None = None) -> None:
        self._clock = clock
        installed = discover()
        self._factories = dict(factories) if factories is not None else installed
        self._schemas = {**collect_schemas(installed), **collect_schemas(self._factories)}
        self._entries: dict[str, AdapterEntry] = {}

    def check(self, name: str, section: Mapping[str, Any]) -> list[str]:
        """Problems with the section ``[adapters.NAME]`` (see ``check_section``)."""
        return check_section(name, section, self._schemas.get(name))

    def build(self, configs: Mapping[str, Mapping[str, Any]]) -> None:
        """Instantiate every adapter named in ``configs`` (``enabled = false`` skips one)."""
        for name, cfg in configs.items():
            if not cfg.get("enabled", True):
                self._entries[name] = AdapterEntry(name, AdapterState.DISABLED)
                continue
            problems = self.check(name, cfg)
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
