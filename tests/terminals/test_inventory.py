"""Tests of the county inventory: the committed Anning data, its generator, the loader's checks, queries."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from broadcast.codes import ResourceCode
from broadcast.model import TerminalKind
from terminals.inventory import COUNTY_FILE, TERMINALS_FILE, default_inventory_path, load_inventory
from terminals.inventory_model import (
    AreaLevel,
    FrontEndLevel,
    Inventory,
    InventoryError,
    InventoryFault,
    UnknownAreaError,
)

ANNING = default_inventory_path()
STREET_NAMES = ("连然街道", "金方街道", "八街街道", "县街街道", "太平新城街道", "草铺街道", "温泉街道",
                "青龙街道", "禄脿街道")


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load_inventory(ANNING)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("anning_generate", ANNING / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


# ------------------------------------------------------------------------------------------- the data


def test_counts(inv: Inventory) -> None:
    levels = Counter(a.level for a in inv.areas)
    assert levels[AreaLevel.COUNTY] == 1
    assert levels[AreaLevel.STREET] == 9
    assert levels[AreaLevel.COMMUNITY] + levels[AreaLevel.VILLAGE] == 102
    kinds = Counter(t.kind for t in inv.terminals)
    assert kinds == {TerminalKind.COMMUNITY: 199, TerminalKind.STREET: 9, TerminalKind.VILLAGE: 378}
    assert len(inv.terminals) == 586
    fe_levels = Counter(f.level for f in inv.front_ends)
    assert fe_levels == {FrontEndLevel.COUNTY: 1, FrontEndLevel.STREET: 9, FrontEndLevel.VILLAGE: 102}


def test_county_and_streets(inv: Inventory) -> None:
    assert inv.platform_code == "45301810000000101010101"
    assert inv.county.code == "530181000000" and inv.county.name == "安宁市"
    assert inv.name == "安宁市" and inv.platform_name == "安宁市应急广播平台"
    streets = inv.children("530181")
    assert [s.name for s in streets] == list(STREET_NAMES)
    assert [s.code for s in streets] == [f"530181{i:03d}000" for i in range(1, 10)]


def test_village_unit_codes_follow_gbt10114(inv: Inventory) -> None:
    for area in inv.areas:
        if area.level in (AreaLevel.COMMUNITY, AreaLevel.VILLAGE):
            seq = int(area.code[9:])
            assert area.parent == area.code[:9] + "000"
            if area.level is AreaLevel.COMMUNITY:
                assert 1 <= seq <= 99 and area.name.endswith("社区")
            else:
                assert 200 <= seq <= 399 and area.name.endswith("村委会")


def test_every_resource_code_parses_and_embeds_its_area(inv: Inventory) -> None:
    for t in inv.terminals:
        rc = ResourceCode.parse(t.resource_code)
        assert str(rc) == t.resource_code
        assert rc.area_code == t.area_code
        assert (rc.type_code, rc.type_seq, rc.subtype) == ("0314", 1, 4)
        assert rc.level == (5 if t.kind is TerminalKind.STREET else 6)
        assert 1 <= rc.subtype_seq <= 99
    for fe in inv.front_ends:
        assert ResourceCode.parse(fe.resource_code).area_code == fe.area_code


def test_subtype_sequences_are_contiguous_per_area(inv: Inventory) -> None:
    by_area: dict[str, list[int]] = {}
    for t in inv.terminals:
        by_area.setdefault(t.area_code, []).append(int(t.resource_code[21:]))
    for seqs in by_area.values():
        assert sorted(seqs) == list(range(1, len(seqs) + 1))


def test_uniqueness(inv: Inventory) -> None:
    for values in ([t.resource_code for t in inv.terminals], [t.physical_address for t in inv.terminals],
                   [t.name for t in inv.terminals], [f.resource_code for f in inv.front_ends]):
        assert len(set(values)) == len(values)
    assert all(len(t.physical_address) == 12 for t in inv.terminals)


def test_terminals_sit_behind_their_front_end(inv: Inventory) -> None:
    units = {a.code for a in inv.areas if a.level in (AreaLevel.COMMUNITY, AreaLevel.VILLAGE)}
    assert {f.area_code for f in inv.front_ends if f.level is FrontEndLevel.VILLAGE} == units
    for t in inv.terminals:
        fe = inv.front_end(t.front_end)
        assert fe is not None and fe.area_code == t.area_code
        assert t.adapter == "ip_speaker"
    assert sum(len(inv.terminals_behind(f.resource_code)) for f in inv.front_ends) == 586


def test_terminal_kinds_match_their_area(inv: Inventory) -> None:
    for t in inv.terminals:
        area = inv.area(t.area_code)
        assert area is not None
        assert area.level.value == t.kind.value
    # "mostly 连然/金方/太平新城": the three urban streets hold most community terminals.
    urban = ("530181001", "530181002", "530181005")
    community = [t for t in inv.terminals if t.kind is TerminalKind.COMMUNITY]
    assert sum(t.area_code.startswith(urban) for t in community) > len(community) / 2


def test_coordinates_are_plausible(inv: Inventory) -> None:
    streets = {a.code: a for a in inv.areas if a.level is AreaLevel.STREET}
    for s in streets.values():
        assert 24.6 <= s.latitude <= 25.2 and 102.2 <= s.longitude <= 102.6
    for a in inv.areas:
        if a.parent in streets:
            st = streets[a.parent]
            assert abs(a.latitude - st.latitude) < 0.1 and abs(a.longitude - st.longitude) < 0.1
    for t in inv.terminals:
        area = inv.area(t.area_code)
        assert area is not None
        assert abs(t.latitude - area.latitude) < 0.01 and abs(t.longitude - area.longitude) < 0.01


def test_files_say_they_are_illustrative() -> None:
    for name in (COUNTY_FILE, TERMINALS_FILE, "README.md"):
        text = (ANNING / name).read_text(encoding="utf-8")
        assert "illustrative" in text.lower() and "示意" in text


def test_generator_reproduces_committed_files(tmp_path: Path) -> None:
    gen = _generator()
    gen.write_files(tmp_path)
    for name in (COUNTY_FILE, TERMINALS_FILE):
        fresh = (tmp_path / name).read_bytes()
        assert fresh == (ANNING / name).read_bytes(), f"{name} differs from what generate.py writes"
    assert gen.generate() == gen.generate()


# ------------------------------------------------------------------------------------------- queries


def test_resolve_whole_county(inv: Inventory) -> None:
    everything = tuple(sorted(inv.terminals, key=lambda t: t.resource_code))
    assert inv.resolve(["530181"]) == everything
    assert inv.resolve(["530181000000"]) == everything
    assert inv.resolve("530181") == everything  # one code as a plain string
    assert inv.resolve(["530100"]) == everything  # the city above the county covers all of it


def test_resolve_one_street(inv: Inventory) -> None:
    got = inv.resolve(["530181002"])
    inside = (t for t in inv.terminals if t.area_code[:9] == "530181002")
    expected = sorted(inside, key=lambda t: t.resource_code)
    assert list(got) == expected
    assert [t.kind for t in got].count(TerminalKind.STREET) == 1
    assert inv.resolve(["530181002000"]) == got
    assert len(got) < 586


def test_resolve_one_village_and_union(inv: Inventory) -> None:
    village = next(a for a in inv.areas if a.level is AreaLevel.VILLAGE)
    got = inv.resolve([village.code])
    assert got and all(t.area_code == village.code for t in got)
    assert len(got) == sum(t.area_code == village.code for t in inv.terminals)
    street = village.code[:9]
    union = inv.resolve([village.code, street, village.code])
    assert union == inv.resolve([street])
    codes = [t.resource_code for t in union]
    assert codes == sorted(codes)
    assert inv.resolve([]) == ()


def test_unknown_codes_are_all_named(inv: Inventory) -> None:
    bad = ["530181099", "530102", "12345", "53018100100x"]
    with pytest.raises(UnknownAreaError) as caught:
        inv.resolve(["530181001", *bad])
    assert caught.value.codes == tuple(bad)
    message = str(caught.value)
    for code in bad:
        assert code in message
    assert "未知" in message and "county.toml" in message


def test_lookups(inv: Inventory) -> None:
    street = inv.area("530181005")
    assert street is not None and street.name == "太平新城街道"
    assert inv.area("530181005000") == street
    assert inv.area("530181") == inv.county
    assert inv.area("bogus") is None and inv.area("530181099") is None
    t = inv.terminals[100]
    assert inv.terminal(t.resource_code) == t
    assert inv.terminal("0" * 23) is None
    colon = ":".join(t.physical_address[i : i + 2] for i in range(0, 12, 2)).lower()
    assert inv.by_physical_address(colon) == t
    assert inv.by_physical_address("FFFFFFFFFFFF") in (None, *inv.terminals)
    path = inv.path(t.area_code)
    assert path[0] == inv.county
    assert path[-1].code == t.area_code and path[1].code == t.area_code[:9] + "000"
    assert inv.path("530181") == [inv.county]
    assert inv.children(t.area_code) == ()
    with pytest.raises(UnknownAreaError):
        inv.children("530181099")
    with pytest.raises(UnknownAreaError):
        inv.path("999999")


def test_resolve_is_fast(inv: Inventory) -> None:
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        inv.resolve(["530181"])
    per_call = (time.perf_counter() - start) / rounds
    assert per_call < 0.002, f"resolve over 586 terminals took {per_call * 1e6:.0f} µs"


# ------------------------------------------------------------------------------------------- bad inventories


@pytest.fixture()
def county_dir(tmp_path: Path) -> Path:
    target = tmp_path / "county"
    target.mkdir()
    for name in (COUNTY_FILE, TERMINALS_FILE):
        shutil.copyfile(ANNING / name, target / name)
    return target


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def _data_line(lines: list[str], index: int) -> int:
    """0-based position of the index-th data row (0 = first terminal) in terminals.csv."""
    header = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    return header + 1 + index


def _edit_row(directory: Path, index: int, column: str, value: str) -> int:
    path = directory / TERMINALS_FILE
    lines = _lines(path)
    header_at = _data_line(lines, -1)
    columns = lines[header_at].split(",")
    at = _data_line(lines, index)
    cells = lines[at].split(",")
    cells[columns.index(column)] = value
    lines[at] = ",".join(cells)
    path.write_text("\n".join(lines), encoding="utf-8")
    return at + 1  # 1-based line number


def _cell(directory: Path, index: int, column: str) -> str:
    lines = _lines(directory / TERMINALS_FILE)
    columns = lines[_data_line(lines, -1)].split(",")
    return lines[_data_line(lines, index)].split(",")[columns.index(column)]


def _expect(
    directory: Path, fault: InventoryFault, file: str, field: str | None, row: int | None
) -> InventoryError:
    with pytest.raises(InventoryError) as caught:
        load_inventory(directory)
    err = caught.value
    assert (err.fault, err.file, err.field, err.row) == (fault, file, field, row)
    message = str(err)
    assert file in message and "请修正" in message
    if field is not None:
        assert field in message
    return err


def test_copy_loads(county_dir: Path, inv: Inventory) -> None:
    assert load_inventory(county_dir) == inv


def test_duplicate_resource_code(county_dir: Path) -> None:
    first = _cell(county_dir, 20, "resource_code")
    # Move row 21 into row 20's area so only the duplication is wrong.
    _edit_row(county_dir, 21, "area_code", _cell(county_dir, 20, "area_code"))
    _edit_row(county_dir, 21, "front_end", _cell(county_dir, 20, "front_end"))
    line = _edit_row(county_dir, 21, "resource_code", first)
    err = _expect(county_dir, InventoryFault.DUPLICATE, TERMINALS_FILE, "resource_code", line)
    assert f"第 {line} 行" in str(err)


def test_duplicate_physical_address(county_dir: Path) -> None:
    line = _edit_row(county_dir, 300, "physical_address", _cell(county_dir, 5, "physical_address").lower())
    _expect(county_dir, InventoryFault.DUPLICATE, TERMINALS_FILE, "physical_address", line)


def test_unknown_terminal_area(county_dir: Path) -> None:
    line = _edit_row(county_dir, 30, "area_code", "530181001098")
    _expect(county_dir, InventoryFault.UNKNOWN_AREA, TERMINALS_FILE, "area_code", line)


def test_resource_code_area_mismatch(county_dir: Path) -> None:
    code = _cell(county_dir, 40, "resource_code")
    other = _cell(county_dir, 400, "area_code")
    assert other != code[1:13]
    line = _edit_row(county_dir, 40, "resource_code", code[0] + other + code[13:])
    err = _expect(county_dir, InventoryFault.AREA_MISMATCH, TERMINALS_FILE, "resource_code", line)
    assert other in str(err)


@pytest.mark.parametrize(("column", "value"), [
    ("area_code", "53018100100"),
    ("resource_code", "6530181001001031401040"),
    ("physical_address", "12345"),
])
def test_wrong_digit_counts(county_dir: Path, column: str, value: str) -> None:
    line = _edit_row(county_dir, 50, column, value)
    _expect(county_dir, InventoryFault.BAD_DIGITS, TERMINALS_FILE, column, line)


def test_kind_must_fit_area(county_dir: Path) -> None:
    line = _edit_row(county_dir, 60, "kind", "street")
    _expect(county_dir, InventoryFault.WRONG_LEVEL, TERMINALS_FILE, "kind", line)


def test_unknown_front_end(county_dir: Path) -> None:
    line = _edit_row(county_dir, 70, "front_end", "6" + "530181009399" + "0399010101")
    _expect(county_dir, InventoryFault.UNKNOWN_FRONT_END, TERMINALS_FILE, "front_end", line)


def test_bad_coordinate(county_dir: Path) -> None:
    line = _edit_row(county_dir, 80, "latitude", "north")
    _expect(county_dir, InventoryFault.BAD_VALUE, TERMINALS_FILE, "latitude", line)


def test_missing_column(county_dir: Path) -> None:
    path = county_dir / TERMINALS_FILE
    path.write_text(path.read_text(encoding="utf-8").replace(",front_end\n", ",fe\n", 1), encoding="utf-8")
    _expect(county_dir, InventoryFault.MISSING_FIELD, TERMINALS_FILE, "front_end", None)


def test_missing_file(county_dir: Path) -> None:
    (county_dir / TERMINALS_FILE).unlink()
    with pytest.raises(InventoryError) as caught:
        load_inventory(county_dir)
    assert caught.value.fault is InventoryFault.MISSING_FILE and TERMINALS_FILE in str(caught.value)


def _edit_toml(directory: Path, old: str, new: str) -> None:
    path = directory / COUNTY_FILE
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_toml_street_code_digits(county_dir: Path) -> None:
    _edit_toml(county_dir, 'code = "530181002"\n', 'code = "53018102"\n')
    err = _expect(county_dir, InventoryFault.BAD_DIGITS, COUNTY_FILE, "code", 2)
    assert err.section == "streets" and "[[streets]] 第 2 项" in str(err)


def test_toml_duplicate_village_code(county_dir: Path) -> None:
    _edit_toml(county_dir, 'code = "530181001002"\n', 'code = "530181001001"\n')
    err = _expect(county_dir, InventoryFault.DUPLICATE, COUNTY_FILE, "code", 2)
    assert err.section == "village_units"


def test_toml_village_kind_out_of_range(county_dir: Path) -> None:
    _edit_toml(county_dir, 'code = "530181001001"\nname = "金湖社区"\nkind = "community"',
               'code = "530181001001"\nname = "金湖社区"\nkind = "village"')
    _expect(county_dir, InventoryFault.WRONG_LEVEL, COUNTY_FILE, "kind", 1)


def test_toml_front_end_area_mismatch(county_dir: Path) -> None:
    _edit_toml(county_dir, 'resource_code = "55301810010000399010101"',
               'resource_code = "55301810020000399010101"')
    _expect(county_dir, InventoryFault.AREA_MISMATCH, COUNTY_FILE, "resource_code", 2)


def test_toml_syntax(county_dir: Path) -> None:
    _edit_toml(county_dir, "\n[county]\n", "\n[county\n")
    _expect(county_dir, InventoryFault.SYNTAX, COUNTY_FILE, None, None)
