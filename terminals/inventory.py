"""Loading the county inventory (终端清单) from a county directory (``county.toml`` + ``terminals.csv``, see
config/anning/README.md) and validating it. The model and its queries (targeting) live in
terminals.inventory_model. This module must never talk to a terminal, touch a database, read the clock, or silently
repair a bad inventory: a bad file is an InventoryError naming file, row and field.
"""

from __future__ import annotations

import csv
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from broadcast.codes import ResourceCode, ResourceSubtype, area_matches
from broadcast.model import TerminalKind, TerminalRef
from terminals.inventory_model import (
    Area,
    AreaLevel,
    FrontEnd,
    FrontEndLevel,
    Inventory,
    InventoryError,
    InventoryFault,
    normalise_physical_address,
)

__all__ = [
    "COUNTY_FILE",
    "RELAY_ADAPTER",
    "TERMINALS_FILE",
    "TERMINAL_COLUMNS",
    "default_inventory",
    "default_inventory_path",
    "load_inventory",
]

COUNTY_FILE = "county.toml"
RELAY_ADAPTER = "front_end"  # terminals reached through their front-end (FrontEnd.relay)
TERMINALS_FILE = "terminals.csv"
TERMINAL_COLUMNS = (
    "resource_code",
    "area_code",
    "name",
    "kind",
    "physical_address",
    "latitude",
    "longitude",
    "adapter",
    "front_end",
)

_E = TypeVar("_E", bound=StrEnum)
_HEX12 = re.compile(r"^[0-9A-F]{12}$")

# Resource-code level digit (eb-protocols §1) expected for each area level.
_RESOURCE_LEVEL = {AreaLevel.COUNTY: 4, AreaLevel.STREET: 5, AreaLevel.COMMUNITY: 6, AreaLevel.VILLAGE: 6}
_FRONT_END_AREA = {
    FrontEndLevel.COUNTY: (AreaLevel.COUNTY,),
    FrontEndLevel.STREET: (AreaLevel.STREET,),
    FrontEndLevel.VILLAGE: (AreaLevel.COMMUNITY, AreaLevel.VILLAGE),
}
_TERMINAL_AREA = {
    TerminalKind.STREET: AreaLevel.STREET,
    TerminalKind.COMMUNITY: AreaLevel.COMMUNITY,
    TerminalKind.VILLAGE: AreaLevel.VILLAGE,
}
# GB/T 10114 practice for the last three digits: 001-199 居委会/社区, 200-399 村委会.
_UNIT_RANGE = {AreaLevel.COMMUNITY: range(1, 200), AreaLevel.VILLAGE: range(200, 400)}


# ---------------------------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class _Where:
    file: str
    row: int | None = None
    section: str | None = None

    def error(
        self, fault: InventoryFault, detail: str, field_name: str | None = None, value: object = ""
    ) -> InventoryError:
        return InventoryError(
            fault,
            self.file,
            detail,
            row=self.row,
            section=self.section,
            field_name=field_name,
            value=str(value),
        )


def _text(entry: Mapping[str, object], key: str, where: _Where) -> str:
    value = entry.get(key)
    if value is None or value == "":
        raise where.error(InventoryFault.MISSING_FIELD, "缺少必填字段", key)
    if not isinstance(value, str):
        raise where.error(InventoryFault.BAD_VALUE, "应为字符串（加引号）", key, value)
    return value.strip()


def _digits(entry: Mapping[str, object], key: str, count: int, where: _Where) -> str:
    value = _text(entry, key, where)
    if len(value) != count or not value.isascii() or not value.isdigit():
        raise where.error(InventoryFault.BAD_DIGITS, f"应为 {count} 位数字，实际 {len(value)} 位", key, value)
    return value


def _coordinate(entry: Mapping[str, object], key: str, limit: float, where: _Where) -> float:
    value = entry.get(key)
    if value is None or value == "":
        raise where.error(InventoryFault.MISSING_FIELD, "缺少必填字段", key)
    number: float | None = None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not -limit <= number <= limit:
        detail = f"应为 -{limit:g} 到 {limit:g} 之间的 WGS84 坐标"
        raise where.error(InventoryFault.BAD_VALUE, detail, key, value)
    return number


def _position(entry: Mapping[str, object], where: _Where) -> tuple[float, float]:
    return _coordinate(entry, "latitude", 90, where), _coordinate(entry, "longitude", 180, where)


def _enum(kind: type[_E], entry: Mapping[str, object], key: str, where: _Where) -> _E:
    value = _text(entry, key, where)
    try:
        return kind(value)
    except ValueError:
        allowed = "/".join(m.value for m in kind)
        raise where.error(InventoryFault.BAD_VALUE, f"取值应为 {allowed}", key, value) from None


def _resource(entry: Mapping[str, object], key: str, area: Area, where: _Where) -> ResourceCode:
    text = _digits(entry, key, 23, where)
    code = ResourceCode.parse(text)
    if code.area_code != area.code:
        raise where.error(
            InventoryFault.AREA_MISMATCH,
            f"资源编码中的区域码 {code.area_code} 与所属区域 {area.code} 不一致",
            key,
            text,
        )
    if code.level != _RESOURCE_LEVEL[area.level]:
        raise where.error(
            InventoryFault.WRONG_LEVEL,
            f"资源编码级别位应为 {_RESOURCE_LEVEL[area.level]}（{area.name}）",
            key,
            text,
        )
    return code


def _entries(doc: Mapping[str, object], section: str, file: str) -> list[tuple[_Where, Mapping[str, object]]]:
    raw = doc.get(section)
    if not isinstance(raw, list) or not raw:
        raise _Where(file).error(InventoryFault.MISSING_FIELD, f"缺少 [[{section}]] 表", section)
    out: list[tuple[_Where, Mapping[str, object]]] = []
    for number, item in enumerate(raw, start=1):
        where = _Where(file, number, section)
        if not isinstance(item, dict):
            raise where.error(InventoryFault.SYNTAX, "应为表（[[...]]）")
        out.append((where, item))
    return out


def _claim(seen: dict[str, str], key: str, where: _Where, field_name: str, what: str) -> None:
    first = seen.get(key)
    if first is not None:
        raise where.error(InventoryFault.DUPLICATE, f"{what}重复（已在 {first} 使用）", field_name, key)
    row = where.row if where.row is not None else 0
    seen[key] = f"[[{where.section}]] 第 {row} 项" if where.section else f"第 {row} 行"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InventoryError(InventoryFault.MISSING_FILE, str(path), "文件不存在") from None
    except UnicodeDecodeError as exc:
        raise InventoryError(InventoryFault.SYNTAX, str(path), f"不是 UTF-8 编码（{exc.reason}）") from None


def _load_county(path: Path) -> tuple[str, str, Area, list[Area], list[FrontEnd]]:
    file = path.name
    try:
        doc = tomllib.loads(_read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(InventoryFault.SYNTAX, file, f"TOML 语法错误：{exc}") from None
    raw_county = doc.get("county")
    where = _Where(file, section="county")
    if not isinstance(raw_county, dict):
        raise _Where(file).error(InventoryFault.MISSING_FIELD, "缺少 [county] 表", "county")
    code = _digits(raw_county, "code", 12, where)
    if code[6:] != "000000" or code[4:6] == "00":
        raise where.error(InventoryFault.BAD_VALUE, "应为县级代码（后 6 位为 0）", "code", code)
    county_name = _text(raw_county, "name", where)
    county = Area(code, county_name, AreaLevel.COUNTY, None, *_position(raw_county, where))
    platform = _resource(raw_county, "platform_code", county, where)
    platform_name = _text(raw_county, "platform_name", where)
    areas: dict[str, Area] = {county.code: county}
    seen: dict[str, str] = {}

    for where, entry in _entries(doc, "streets", file):
        street = _digits(entry, "code", 9, where)
        if not street.startswith(code[:6]) or street.endswith("000"):
            raise where.error(
                InventoryFault.AREA_MISMATCH, f"街道代码应以本县 {code[:6]} 开头且后 3 位非 0", "code", street
            )
        _claim(seen, street, where, "code", "区域代码")
        areas[street + "000"] = Area(
            street + "000", _text(entry, "name", where), AreaLevel.STREET, code, *_position(entry, where)
        )

    for where, entry in _entries(doc, "village_units", file):
        unit = _digits(entry, "code", 12, where)
        street = _digits(entry, "street", 9, where)
        if street + "000" not in areas or street + "000" == code:
            raise where.error(InventoryFault.UNKNOWN_AREA, "所属街道不在 [[streets]] 中", "street", street)
        if not unit.startswith(street):
            detail = f"村/社区代码应以所属街道 {street} 开头"
            raise where.error(InventoryFault.AREA_MISMATCH, detail, "code", unit)
        kind = _enum(AreaLevel, entry, "kind", where)
        if kind not in _UNIT_RANGE or int(unit[9:]) not in _UNIT_RANGE[kind]:
            detail = "kind 应为 community（末 3 位 001-199）或 village（末 3 位 200-399）"
            raise where.error(InventoryFault.WRONG_LEVEL, detail, "kind", kind)
        _claim(seen, unit, where, "code", "区域代码")
        areas[unit] = Area(unit, _text(entry, "name", where), kind, street + "000", *_position(entry, where))

    front_ends: list[FrontEnd] = []
    seen_fe: dict[str, str] = {}
    for where, entry in _entries(doc, "front_ends", file):
        area_code = _digits(entry, "area_code", 12, where)
        area = areas.get(area_code)
        if area is None:
            raise where.error(InventoryFault.UNKNOWN_AREA, "区域不在本县配置中", "area_code", area_code)
        level = _enum(FrontEndLevel, entry, "level", where)
        if area.level not in _FRONT_END_AREA[level]:
            detail = f"{level.value} 级前端不能设在{area.name}"
            raise where.error(InventoryFault.WRONG_LEVEL, detail, "level", level)
        rc = str(_resource(entry, "resource_code", area, where))
        _claim(seen_fe, rc, where, "resource_code", "前端资源编码")
        relay = entry.get("relay", False)
        if not isinstance(relay, bool):
            raise where.error(InventoryFault.BAD_VALUE, "应为 true 或 false", "relay", relay)
        front_ends.append(FrontEnd(rc, area_code, _text(entry, "name", where), level, relay))
    del areas[county.code]
    return str(platform), platform_name, county, sorted(areas.values(), key=lambda a: a.code), front_ends


def _csv_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, cells); '#' comment lines and blank lines are skipped."""
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = [c.strip() for c in next(csv.reader([line]))]
        if header is None:
            header = cells
        else:
            rows.append((number, cells))
    if header is None:
        raise InventoryError(
            InventoryFault.MISSING_FIELD, path.name, "缺少表头行", field_name=TERMINAL_COLUMNS[0]
        )
    return header, rows


def _load_terminals(
    path: Path, areas: Mapping[str, Area], front_ends: Mapping[str, FrontEnd]
) -> list[TerminalRef]:
    file = path.name
    header, rows = _csv_rows(path)
    missing = [c for c in TERMINAL_COLUMNS if c not in header]
    if missing:
        raise InventoryError(
            InventoryFault.MISSING_FIELD, file, f"表头缺少列 {', '.join(missing)}", field_name=missing[0]
        )
    terminals: list[TerminalRef] = []
    seen_codes: dict[str, str] = {}
    seen_addresses: dict[str, str] = {}
    for number, cells in rows:
        where = _Where(file, number)
        if len(cells) != len(header):
            raise where.error(InventoryFault.SYNTAX, f"应有 {len(header)} 列，实际 {len(cells)} 列")
        entry = dict(zip(header, cells, strict=True))
        area_code = _digits(entry, "area_code", 12, where)
        area = areas.get(area_code)
        if area is None:
            raise where.error(InventoryFault.UNKNOWN_AREA, "区域不在 county.toml 中", "area_code", area_code)
        kind = _enum(TerminalKind, entry, "kind", where)
        if _TERMINAL_AREA[kind] is not area.level:
            detail = f"{kind.value} 终端不能设在{area.name}（{area.level.value}）"
            raise where.error(InventoryFault.WRONG_LEVEL, detail, "kind", kind)
        code = _resource(entry, "resource_code", area, where)
        if code.subtype != ResourceSubtype.TERMINAL:
            raise where.error(InventoryFault.BAD_VALUE, "终端资源子类型码应为 04", "resource_code", code)
        _claim(seen_codes, str(code), where, "resource_code", "资源编码")
        address = normalise_physical_address(_text(entry, "physical_address", where))
        if not _HEX12.match(address):
            raise where.error(
                InventoryFault.BAD_DIGITS,
                "物理地址应为 12 位十六进制数",
                "physical_address",
                entry["physical_address"],
            )
        _claim(seen_addresses, address, where, "physical_address", "物理地址")
        front_end = entry["front_end"]
        if front_end:
            fe = front_ends.get(front_end)
            if fe is None:
                detail = "前端不在 county.toml 的 [[front_ends]] 中"
                raise where.error(InventoryFault.UNKNOWN_FRONT_END, detail, "front_end", front_end)
            if not area_matches(fe.area_code, area_code):
                raise where.error(
                    InventoryFault.AREA_MISMATCH,
                    f"前端 {fe.name} 不覆盖区域 {area_code}",
                    "front_end",
                    front_end,
                )
        if entry["adapter"] == RELAY_ADAPTER and not (front_end and front_ends[front_end].relay):
            detail = f"adapter 为 {RELAY_ADAPTER} 的终端须属于 county.toml 中 relay = true 的前端"
            raise where.error(InventoryFault.BAD_VALUE, detail, "front_end", front_end)
        latitude, longitude = _position(entry, where)
        terminals.append(
            TerminalRef(
                resource_code=str(code),
                area_code=area_code,
                name=_text(entry, "name", where),
                kind=kind,
                physical_address=address,
                adapter=_text(entry, "adapter", where),
                latitude=latitude,
                longitude=longitude,
                front_end=front_end,
            )
        )
    terminals.sort(key=lambda t: t.resource_code)
    return terminals


def load_inventory(path: Path) -> Inventory:
    """Load and validate a county directory holding county.toml and terminals.csv."""
    directory = Path(path)
    platform_code, platform_name, county, areas, front_ends = _load_county(directory / COUNTY_FILE)
    by_code = {a.code: a for a in areas}
    terminals = _load_terminals(directory / TERMINALS_FILE, by_code, {f.resource_code: f for f in front_ends})
    return Inventory(
        platform_code,
        county.name,
        county,
        (county, *areas),
        tuple(front_ends),
        tuple(terminals),
        platform_name=platform_name,
    )


def default_inventory_path() -> Path:
    """The repository's default county (Anning, 530181): config/anning."""
    return Path(__file__).resolve().parent.parent / "config" / "anning"


@lru_cache(maxsize=1)
def default_inventory() -> Inventory:
    """The default county, loaded once per process (Inventory is immutable, so sharing is safe)."""
    return load_inventory(default_inventory_path())
