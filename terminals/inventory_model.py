"""The county inventory model (终端清单): areas (行政区划), front-ends (前端), terminals (终端), the
inventory errors, and target resolution — "which terminals lie inside these area codes" by prefix matching
with zeros as wildcards (broadcast.codes).

Owns the immutable ``Inventory`` and its queries. Must never read files (loading and validation live in
terminals.inventory), talk to a terminal, touch a database, or read the clock.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from broadcast.codes import area_prefix, normalise_area_code
from broadcast.model import TerminalRef

_ADDR_SEPARATORS = re.compile(r"[:\-.\s]")


class AreaLevel(StrEnum):
    COUNTY = "county"  # 县/市
    STREET = "street"  # 街道/乡镇
    COMMUNITY = "community"  # 社区（居委会）
    VILLAGE = "village"  # 村委会


class FrontEndLevel(StrEnum):
    COUNTY = "county"  # 县级前端
    STREET = "street"  # 街道前端
    VILLAGE = "village"  # 村/社区前端


@dataclass(frozen=True)
class Area:
    """An administrative area (行政区划) of the county; ``code`` is always the 12-digit form."""

    code: str
    name: str
    level: AreaLevel
    parent: str | None
    latitude: float
    longitude: float


@dataclass(frozen=True)
class FrontEnd:
    """A front-end (前端): the county, street or village sub-platform that relays to its terminals."""

    resource_code: str
    area_code: str
    name: str
    level: FrontEndLevel
    relay: bool = False  # the county sends to its terminals through it (adapter "front_end")


class InventoryFault(StrEnum):
    MISSING_FILE = "missing_file"
    SYNTAX = "syntax"
    MISSING_FIELD = "missing_field"
    BAD_DIGITS = "bad_digits"
    BAD_VALUE = "bad_value"
    DUPLICATE = "duplicate"
    UNKNOWN_AREA = "unknown_area"
    AREA_MISMATCH = "area_mismatch"
    WRONG_LEVEL = "wrong_level"
    UNKNOWN_FRONT_END = "unknown_front_end"


class InventoryError(ValueError):
    """A county directory that cannot be loaded; names the file, the row (or TOML entry) and the field."""

    def __init__(
        self,
        fault: InventoryFault,
        file: str,
        detail: str,
        *,
        row: int | None = None,
        section: str | None = None,
        field_name: str | None = None,
        value: str = "",
    ) -> None:
        self.fault = fault
        self.file = file
        self.row = row
        self.section = section
        self.field = field_name
        self.value = value
        self.detail = detail
        where = file
        if section is not None and row is not None:
            where += f" [[{section}]] 第 {row} 项"
        elif section is not None:
            where += f" [{section}]"
        elif row is not None:
            where += f" 第 {row} 行"
        if field_name is not None:
            where += f" 字段 {field_name}"
        shown = f"（当前值：{value!r}）" if value else ""
        super().__init__(
            f"终端清单错误：{where}：{detail}{shown}。"
            "请修正该处后重新加载（格式见 config/anning/README.md）。"
        )


class UnknownAreaError(LookupError):
    """Target area codes that are malformed or name no known area of this county."""

    def __init__(self, codes: Iterable[str], county: Area, example: Area | None = None) -> None:
        self.codes = tuple(codes)
        listed = "、".join(repr(c) for c in self.codes)
        hint = f"，例如 {example.code[:9]}（{example.name}）" if example is not None else ""
        super().__init__(
            f"未知的区域编码：{listed} 不是{county.name}（{county.code[:6]}）的已知区域。"
            f"请使用本县的 6 位县级、9 位街道或 12 位村/社区行政区划代码{hint}；"
            f"有效代码见县配置 county.toml 的 streets / village_units 表。"
        )


def normalise_physical_address(addr: str) -> str:
    """Upper-case hex without separators: ``3c:6a:2d:0f:14:b7`` → ``3C6A2D0F14B7``."""
    return _ADDR_SEPARATORS.sub("", addr).upper()


@dataclass(frozen=True)
class _Index:
    areas: Mapping[str, Area]
    children: Mapping[str, tuple[Area, ...]]
    ordered: tuple[TerminalRef, ...]  # by resource code
    area_keys: tuple[str, ...]  # terminal area codes, sorted, with...
    area_ranks: tuple[int, ...]  # ...the terminal's position in ``ordered``
    by_code: Mapping[str, TerminalRef]
    by_address: Mapping[str, TerminalRef]
    front_ends: Mapping[str, FrontEnd]


def _build_index(inv: Inventory) -> _Index:
    areas = {a.code: a for a in (inv.county, *inv.areas)}
    kids: dict[str, list[Area]] = {}
    for a in sorted(areas.values(), key=lambda a: a.code):
        if a.parent is not None:
            kids.setdefault(a.parent, []).append(a)
    ordered = tuple(sorted(inv.terminals, key=lambda t: t.resource_code))
    by_area = sorted((t.area_code, rank) for rank, t in enumerate(ordered))
    return _Index(
        areas=areas,
        children={k: tuple(v) for k, v in kids.items()},
        ordered=ordered,
        area_keys=tuple(k for k, _ in by_area),
        area_ranks=tuple(r for _, r in by_area),
        by_code={t.resource_code: t for t in ordered},
        by_address={normalise_physical_address(t.physical_address): t for t in ordered},
        front_ends={f.resource_code: f for f in inv.front_ends},
    )


@dataclass(frozen=True)
class Inventory:
    """One county's areas, front-ends and terminals.

    ``name`` is the county's name (安宁市); ``areas`` includes the county itself and is ordered by code;
    ``terminals`` is ordered by resource code when loaded.
    """

    platform_code: str
    name: str
    county: Area
    areas: tuple[Area, ...]
    front_ends: tuple[FrontEnd, ...]
    terminals: tuple[TerminalRef, ...]
    platform_name: str = ""  # e.g. 安宁市应急广播平台
    _index: _Index = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", _build_index(self))

    def area(self, code: str) -> Area | None:
        """The area with this 6-, 9- or 12-digit code, or None."""
        try:
            return self._index.areas.get(normalise_area_code(code))
        except ValueError:
            return None

    def _require(self, code: str) -> Area:
        found = self.area(code)
        if found is None:
            raise UnknownAreaError((code,), self.county, self._example())
        return found

    def _example(self) -> Area | None:
        streets = self._index.children.get(self.county.code, ())
        return streets[0] if streets else None

    def children(self, code: str) -> tuple[Area, ...]:
        """Direct sub-areas, by code: county → streets, street → communities and villages."""
        return self._index.children.get(self._require(code).code, ())

    def path(self, code: str) -> list[Area]:
        """From the county down to this area: [county, street, village unit]."""
        chain = [self._require(code)]
        while chain[0].parent is not None:
            chain.insert(0, self._index.areas[chain[0].parent])
        return chain

    def resolve(self, codes: Iterable[str]) -> tuple[TerminalRef, ...]:
        """Terminals inside any target area (zeros are wildcards), ordered by resource code.

        A target naming an area above the county (e.g. the city 530100) covers the whole county. Raises
        UnknownAreaError listing every code that is malformed or names no known area of this county.
        """
        targets = (codes,) if isinstance(codes, str) else tuple(codes)
        county_prefix = area_prefix(self.county.code)
        prefixes: list[str] = []
        bad: list[str] = []
        for code in targets:
            try:
                full = normalise_area_code(code)
            except ValueError:
                bad.append(code)
                continue
            prefix = area_prefix(full)
            if full in self._index.areas or (prefix and county_prefix.startswith(prefix)):
                prefixes.append(prefix)
            else:
                bad.append(code)
        if bad:
            raise UnknownAreaError(bad, self.county, self._example())
        index = self._index
        ranks: set[int] = set()
        for prefix in prefixes:
            lo = bisect_left(index.area_keys, prefix)
            hi = bisect_left(index.area_keys, prefix + ":")  # ':' sorts just after '9'
            ranks.update(index.area_ranks[lo:hi])
        return tuple(index.ordered[r] for r in sorted(ranks))

    def targets(self, area_codes: Sequence[str], terminal_codes: Sequence[str] = ()) -> tuple[TerminalRef, ...]:
        """A message's targets (定位): the terminals of its areas plus those it names (by geometry),
        in resource-code order. Raises UnknownAreaError for unknown areas; unknown names are skipped."""
        by_area = self.resolve(area_codes) if area_codes else ()
        if not terminal_codes:
            return by_area
        chosen = {t.resource_code: t for t in by_area}
        for code in terminal_codes:
            t = self.terminal(code)
            if t is not None:
                chosen[code] = t
        return tuple(chosen[c] for c in sorted(chosen))

    def terminal(self, resource_code: str) -> TerminalRef | None:
        return self._index.by_code.get(resource_code)

    def by_physical_address(self, addr: str) -> TerminalRef | None:
        """Look a terminal up by its factory id; case and ':'/'-' separators are ignored."""
        return self._index.by_address.get(normalise_physical_address(addr))

    def front_end(self, resource_code: str) -> FrontEnd | None:
        return self._index.front_ends.get(resource_code)

    def terminals_behind(self, front_end_code: str) -> tuple[TerminalRef, ...]:
        """Terminals whose traffic goes through this front-end, ordered by resource code."""
        return tuple(t for t in self._index.ordered if t.front_end == front_end_code)
