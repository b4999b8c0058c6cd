"""EBDID / EBMID / legacy id rules and the restart-safe EBDID allocator."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from ebd_samples import CITY, COUNTY

from broadcast.clock import ManualClock
from broadcast.codes import ebm_id
from broadcast.interconnect.ebd.ids import (
    EbdIdAllocator,
    EbdKind,
    heartbeat_ebd_id,
    make_ebd_id,
    parse_ebd_id,
    parse_ebm_id,
    parse_resource_id,
)


def test_heartbeat_id_is_constant_41_digits() -> None:
    hb = heartbeat_ebd_id(COUNTY)
    assert hb == "01" + COUNTY + "0" * 16 and len(hb) == 41
    info = parse_ebd_id(hb)
    assert info.is_heartbeat and info.sender == COUNTY and not info.legacy


def test_make_ebd_id_validates_parts() -> None:
    assert len(make_ebd_id(EbdKind.OTHER, COUNTY, "2026110500000001")) == 41
    with pytest.raises(ValueError):
        make_ebd_id(EbdKind.OTHER, "010333112400000001", "2026110500000001")  # legacy sender never emitted
    with pytest.raises(ValueError):
        make_ebd_id(EbdKind.OTHER, COUNTY, "202611050001")


def test_allocator_counts_per_beijing_day_and_persists() -> None:
    # 15:59:59 UTC = 23:59:59 Beijing: the next second is a new Beijing day.
    clock = ManualClock(datetime(2026, 11, 5, 15, 59, 58, tzinfo=UTC))
    saved: list[str] = []
    alloc = EbdIdAllocator(COUNTY, clock, persist=saved.append)
    first, second = alloc.next_id(), alloc.next_id()
    assert first == f"10{COUNTY}2026110500000001"
    assert second.endswith("2026110500000002")
    clock.advance(2)
    assert alloc.next_id().endswith("2026110600000001")
    assert saved == ["2026110500000001", "2026110500000002", "2026110600000001"]


def test_allocator_restart_continues_after_persisted_serial() -> None:
    clock = ManualClock(datetime(2026, 11, 5, 2, 0, tzinfo=UTC))
    alloc = EbdIdAllocator(COUNTY, clock, last_serial="2026110500000041")
    assert alloc.next_id().endswith("2026110500000042")


def test_allocator_never_reuses_when_clock_steps_back() -> None:
    clock = ManualClock(datetime(2026, 11, 4, 2, 0, tzinfo=UTC))
    alloc = EbdIdAllocator(COUNTY, clock, last_serial="2026110500000007")
    assert alloc.next_id().endswith("2026110500000008")


def test_allocator_refuses_bad_inputs() -> None:
    clock = ManualClock(datetime(2026, 11, 5, tzinfo=UTC))
    with pytest.raises(ValueError):
        EbdIdAllocator(COUNTY, clock, last_serial="x")
    with pytest.raises(ValueError):
        EbdIdAllocator("123", clock)
    full = EbdIdAllocator(COUNTY, clock, last_serial="2026110599999999")
    with pytest.raises(OverflowError):
        full.next_id()


def test_ebm_ids_current_and_legacy() -> None:
    current = ebm_id(CITY, date(2026, 11, 5), 12)
    info = parse_ebm_id(current)
    assert (info.issuer, info.day, info.sequence, info.legacy) == (CITY, date(2026, 11, 5), 12, False)
    legacy = parse_ebm_id("010233110000000001201703010002")
    assert legacy.legacy and legacy.issuer == "010233110000000001" and legacy.sequence == 2
    for bad in ("1" * 34, f"{CITY}202613010001", "abc"):
        with pytest.raises(ValueError):
            parse_ebm_id(bad)


def test_resource_ids_current_and_legacy() -> None:
    cur = parse_resource_id(COUNTY)
    assert not cur.is_legacy and cur.code is not None and cur.area_code == "530181000000"
    old = parse_resource_id("010333112400000001")
    assert old.is_legacy and old.legacy is not None
    assert (old.legacy.type_code, old.legacy.subtype, old.legacy.area_code, old.legacy.extension) == (
        "01", "03", "331124000000", "01")
    assert str(old.legacy) == "010333112400000001"
    with pytest.raises(ValueError):
        parse_resource_id("12345")


def test_legacy_ebd_id_is_recognised() -> None:
    info = parse_ebd_id("100102331100000000012017030100000012")
    assert info.legacy and info.sender == "010233110000000001" and info.serial == "2017030100000012"
