"""Ten overlapping broadcasts of mixed priority over the mixed county (tests/contract/county.py), shared
by tests/e2e/test_overlapping.py (one street) and bench/dispatch.py (the whole county).

Owns: the scenario (daily programmes, drills, blue/yellow/orange/red county CAP, upper-platform items),
submitting it the way each source really arrives (CAP over HTTP, the rest through the pipeline), waiting
until every IP/front-end delivery settled, and the final-state check against each device's ground truth
(its simulator). Never edits the controller's state; only reads it.

Final state per device kind (what each path can actually do, see tests/contract/rigs.py PREEMPTION):
- IP terminal (direct or behind a front-end): the highest-ranked item it was sent played to completion
  exactly once; every other item played to completion exactly once or ended preempted; no item
  completed twice; playbacks never overlap; an item cut off is followed by a strictly higher one.
- FM transmitter: the highest-ranked FM item is on air (emergency input, its RadioText); the others are
  cancelled (preempted, by the adapter) or still queued behind it; none played.
- Cable head-end: the highest-ranked item is inserted and on air; the inserter carries nothing that
  was not sent; the others are queued behind it (preempted or never sent).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from adapters.fm.adapter import radiotext_for
from adapters.fm.device import ProgrammeInput
from broadcast.dispatch.preemption import Rank, rank
from broadcast.model import (
    Content,
    DeliveryOrder,
    MessageDraft,
    MsgType,
    Severity,
    SourceKind,
    SourceRef,
)
from broadcast.store.broadcasts import delivery_rows, get_broadcast
from sim.ip_terminal import SimTerminal
from tests.contract.county import CABLE_CODE, FM_CODE, MixedCounty
from tests.e2e.capdoc import make_cap


class Kind(StrEnum):
    DAILY = "daily"
    DRILL = "drill"
    CAP = "cap"
    UPPER = "upper"


@dataclass(frozen=True)
class Item:
    label: str
    kind: Kind
    area: str
    severity: Severity = Severity.UNKNOWN


@dataclass
class Aired:
    item: Item
    broadcast_id: int
    ebm_id: str
    rank: Rank
    order: DeliveryOrder | None = None


# Every CAP severity straight on air: the scenario is about preemption, not the desk's hold-off.
POLICY: dict[str, Any] = {"policy": {"auto_severities": ["red", "orange", "yellow", "blue"]}}
_COLOUR = {Severity.BLUE: "蓝色", Severity.YELLOW: "黄色", Severity.ORANGE: "橙色", Severity.RED: "红色"}
_TEXT = "各位居民请注意，这是一条测试广播，请按照提示做好准备，注意安全。"


def scenario(wide: str, street: str, village: str, other: str) -> list[Item]:
    """Ten items in submission order: lower ones first, higher ones cutting in, and lower ones arriving
    while higher ones play. ``wide`` ⊇ ``street`` ⊇ ``village``; ``other`` overlaps only ``wide``."""
    return [
        Item("daily programme", Kind.DAILY, wide),
        Item("county blue CAP", Kind.CAP, wide, Severity.BLUE),
        Item("drill", Kind.DRILL, street),
        Item("county yellow CAP", Kind.CAP, village, Severity.YELLOW),
        Item("county orange CAP", Kind.CAP, street, Severity.ORANGE),
        Item("second daily programme", Kind.DAILY, other),
        Item("county red CAP", Kind.CAP, village, Severity.RED),
        Item("upper-platform red", Kind.UPPER, street, Severity.RED),
        Item("upper-platform blue", Kind.UPPER, other, Severity.BLUE),
        Item("second drill", Kind.DRILL, wide),
    ]


def _draft(item: Item, now: datetime, n: int) -> MessageDraft:
    if item.kind is Kind.UPPER:
        source, msg_type, sender = (
            SourceRef(SourceKind.UPPER, "5300000", f"upper-{n}"),
            MsgType.ACTUAL,
            "云南省",
        )
    elif item.kind is Kind.DRILL:
        source, msg_type, sender = (
            SourceRef(SourceKind.SCHEDULE, "drill", f"drill-{n}"),
            MsgType.TERMINAL_DRILL,
            "安宁市",
        )
    else:
        source, msg_type, sender = (
            SourceRef(SourceKind.SCHEDULE, "programme", f"daily-{n}"),
            MsgType.ACTUAL,
            "安宁市",
        )
    return MessageDraft(
        msg_type=msg_type,
        event_type="11B03" if item.kind is Kind.UPPER else "10000",
        severity=item.severity,
        sender_name=sender,
        sender_code="5301810",
        sent_at=now,
        start_at=now,
        end_at=now + timedelta(hours=2),
        area_codes=(item.area,),
        contents=(Content("zho", item.label, _TEXT),),
        source=source,
    )


async def submit(county: MixedCounty, items: list[Item]) -> list[Aired]:
    """Submit every item as its source would, as fast as they are accepted."""
    ctl = county.controller
    out: list[Aired] = []
    tag = uuid.uuid4().hex[:10]
    for n, item in enumerate(items):
        if item.kind is Kind.CAP:
            headline = f"安宁市气象台发布暴雨{_COLOUR[item.severity]}预警"
            doc = make_cap(f"53018141600000_{tag}{n:04d}", item.area, headline=headline)
            async with county.http.post(
                f"{county.url}/api/alerts", data=doc, headers={"Content-Type": "application/xml"}
            ) as resp:
                body: dict[str, Any] = await resp.json()
                assert resp.status == 202, (item.label, body)
            bid, ebm = int(body["broadcast_id"]), str(body["ebm_id"])
            r = rank(ctl_priority(item), item.severity)
        else:
            draft = _draft(item, datetime.now(UTC), n)
            sub = await ctl.pipeline.submit(draft)
            bid, ebm, r = sub.broadcast_id, sub.ebm_id, rank(draft.priority, draft.severity)
        out.append(Aired(item, bid, ebm, r))
    return out


def ctl_priority(item: Item) -> Any:
    from broadcast.model import Priority

    return {
        Kind.DAILY: Priority.DAILY,
        Kind.DRILL: Priority.DRILL,
        Kind.CAP: Priority.EMERGENCY,
        Kind.UPPER: Priority.UPPER_EMERGENCY,
    }[item.kind]


_SETTLED = ("played", "failed", "cancelled")


async def rows_by_terminal(county: MixedCounty, aired: list[Aired]) -> dict[str, dict[str, dict[str, Any]]]:
    """terminal code → ebm id → its delivery row (after the receipt writer flushed)."""
    await county.controller.receipts.flush()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for a in aired:
        for row in await delivery_rows(county.controller.engine, a.broadcast_id):
            out.setdefault(row["terminal_code"], {})[a.ebm_id] = row
    return out


def _is_path_device(code: str) -> bool:
    return code in (FM_CODE, CABLE_CODE)


async def wait_settled(county: MixedCounty, aired: list[Aired], within_s: float) -> None:
    """Until every IP/front-end delivery is settled and FM/cable have the top item on air."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    last: list[tuple[str, str, str]] = []
    while True:
        rows = await rows_by_terminal(county, aired)
        last = [
            (code, ebm, row["status"])
            for code, by_ebm in rows.items()
            if not _is_path_device(code)
            for ebm, row in by_ebm.items()
            if row["status"] not in _SETTLED
        ]
        top_ok = all(
            county.controller.dispatcher.on_air(code) == _top(aired, rows.get(code, {})).ebm_id
            for code in (FM_CODE, CABLE_CODE)
            if rows.get(code)
        )
        if not last and top_ok:
            return
        assert loop.time() < deadline, f"not settled: {last[:8]} (of {len(last)}), fm/cable top ok: {top_ok}"
        await asyncio.sleep(0.05)


def _top(aired: list[Aired], by_ebm: dict[str, Any]) -> Aired:
    return max((a for a in aired if a.ebm_id in by_ebm), key=lambda a: a.rank)


def _sim(county: MixedCounty, code: str) -> SimTerminal:
    return county.relayed[code] if code in county.relayed else county.fleet.terminal(code)


def _preempted(row: dict[str, Any]) -> bool:
    return row["status"] in ("failed", "cancelled", "queued") and row["reason"] == "preempted"


def check_terminal(code: str, sim: SimTerminal, aired: list[Aired], by_ebm: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    mine = [a for a in aired if a.ebm_id in by_ebm]
    rank_of = {a.ebm_id: a.rank for a in aired}
    records = [p for p in sim.played if p.ebm_id in rank_of]
    top = _top(aired, by_ebm)
    for a in mine:
        row = by_ebm[a.ebm_id]
        done = sum(1 for p in records if p.ebm_id == a.ebm_id and p.completed)
        if done > 1:
            problems.append(f"{code}: {a.item.label} completed {done} times")
        if row["status"] == "played":
            if done != 1:
                problems.append(f"{code}: {a.item.label} recorded played but completed {done} times")
        elif not _preempted(row) or a is top:
            problems.append(f"{code}: {a.item.label} ended {row['status']}/{row['reason']}: {row['detail']}")
    ordered = sorted(records, key=lambda p: p.started_at)
    for prev, nxt in itertools.pairwise(ordered):
        if prev.ended_at is None or nxt.started_at < prev.ended_at:
            problems.append(f"{code}: {prev.ebm_id} and {nxt.ebm_id} played at the same time")
        if not prev.completed and not rank_of[nxt.ebm_id] > rank_of[prev.ebm_id]:
            problems.append(f"{code}: {prev.ebm_id} cut off by {nxt.ebm_id}, which does not outrank it")
    return problems


def check_fm(county: MixedCounty, aired: list[Aired], by_ebm: dict[str, Any]) -> list[str]:
    top = _top(aired, by_ebm)
    fm = county.controller.registry.get("fm")
    problems: list[str] = []
    state = county.fm.state
    if state.programme_input is not ProgrammeInput.EMERGENCY or state.pty != 31:
        problems.append(f"FM: not on the emergency input (pty {state.pty}, {state.programme_input})")
    on_air = getattr(fm, "on_air", None)
    if on_air is None or on_air.ebm_id != top.ebm_id:
        problems.append(f"FM: on air {getattr(on_air, 'ebm_id', None)}, expected {top.item.label}")
    elif state.radiotext != radiotext_for(on_air):
        problems.append(f"FM: RadioText {state.radiotext!r} is not {top.item.label}'s")
    for a in aired:
        row = by_ebm.get(a.ebm_id)
        if row is None or a is top:
            continue
        if row["status"] == "played" or not (_preempted(row) or row["status"] == "queued"):
            problems.append(f"FM: {a.item.label} ended {row['status']}/{row['reason']}")
    return problems


def check_cable(county: MixedCounty, aired: list[Aired], by_ebm: dict[str, Any]) -> list[str]:
    top = _top(aired, by_ebm)
    problems: list[str] = []
    inserted = set(county.cable.on_air)
    if top.ebm_id not in inserted:
        problems.append(f"cable: {top.item.label} not inserted ({sorted(inserted)})")
    if not inserted <= set(by_ebm):
        problems.append(f"cable: carries EBMs never sent to it: {sorted(inserted - set(by_ebm))}")
    if by_ebm[top.ebm_id]["status"] not in ("acknowledged", "playing"):
        problems.append(f"cable: {top.item.label} is {by_ebm[top.ebm_id]['status']}")
    for a in aired:
        row = by_ebm.get(a.ebm_id)
        if row is not None and a is not top and row["status"] not in ("queued",) and not _preempted(row):
            problems.append(f"cable: {a.item.label} ended {row['status']}/{row['reason']}")
    return problems


async def final_state(county: MixedCounty, aired: list[Aired]) -> tuple[int, list[str]]:
    """Check every targeted device; returns (devices checked, problems)."""
    rows = await rows_by_terminal(county, aired)
    problems: list[str] = []
    for code, by_ebm in rows.items():
        if code == FM_CODE:
            problems += check_fm(county, aired, by_ebm)
        elif code == CABLE_CODE:
            problems += check_cable(county, aired, by_ebm)
        else:
            problems += check_terminal(code, _sim(county, code), aired, by_ebm)
    return len(rows), problems


async def received_at(county: MixedCounty, aired: list[Aired]) -> datetime:
    row = await get_broadcast(county.controller.engine, aired[0].broadcast_id)
    assert row is not None
    when: datetime = row["received_at"]
    return when
