"""Field validators shared by the ``[[drills]]`` and ``[[programmes]]`` configuration (定时配置校验).

Each validator reads one key of one entry and raises the caller's error type (``DrillConfigError``,
``ProgrammeConfigError``), which names the entry and the field and says how to fix it, in the words of
its own section. Owns only the checks that both sections make the same way; must never know either
section's keys or defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeVar


class ConfigFault(StrEnum):
    MISSING_FIELD = "missing_field"
    BAD_VALUE = "bad_value"
    DUPLICATE = "duplicate"
    UNSUPPORTED = "unsupported"


T = TypeVar("T")

EntryError = Callable[[ConfigFault, str, str, str], ValueError]
"""Builds the section's error: ``(fault, entry id, field name, detail)``; the error classes themselves."""


def entries_by_id(
    entries: Sequence[Mapping[str, Any]],
    error: EntryError,
    duplicate_zh: str,
    build: Callable[[Mapping[str, Any], str], T],
) -> list[T]:
    """Each ``[[section]]`` table built by ``build(entry, id)``, in order; ids required and unique."""
    built: list[T] = []
    seen: set[str] = set()
    for n, entry in enumerate(entries, start=1):
        entry_id = text_field(entry, "id", f"#{n}", error)
        if entry_id in seen:
            raise error(ConfigFault.DUPLICATE, entry_id, "id", duplicate_zh)
        seen.add(entry_id)
        built.append(build(entry, entry_id))
    return built


def text_field(
    entry: Mapping[str, Any], key: str, entry_id: str, error: EntryError, default: str | None = None
) -> str:
    """A required (or defaulted) non-empty string, stripped."""
    value = entry.get(key, default)
    if value is None:
        raise error(ConfigFault.MISSING_FIELD, entry_id, key, "缺少必填字段")
    if not isinstance(value, str) or not value.strip():
        raise error(ConfigFault.BAD_VALUE, entry_id, key, f"应为非空字符串，实际为 {value!r}")
    return value.strip()


def int_field(
    entry: Mapping[str, Any], key: str, entry_id: str, error: EntryError, default: int, lo: int, hi: int
) -> int:
    """An integer in ``lo..hi`` (a bool is not an integer here)."""
    value = entry.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise error(ConfigFault.BAD_VALUE, entry_id, key, f"应为 {lo} 到 {hi} 的整数，实际为 {value!r}")
    return value


def areas_field(
    entry: Mapping[str, Any], entry_id: str, error: EntryError, default_area: str
) -> tuple[str, ...]:
    """``areas``: a non-empty list of area codes, by default the county's."""
    areas = entry.get("areas", [default_area])
    if not isinstance(areas, list) or not areas or not all(isinstance(a, str) and a for a in areas):
        raise error(ConfigFault.BAD_VALUE, entry_id, "areas", "应为区域代码字符串列表")
    return tuple(areas)
