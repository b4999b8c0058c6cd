"""Drills: slots from the cron rule, the misfire decision, idempotent runs, missed slots recorded, the job
store surviving a restart, the service built from [[drills]]. Time is always passed explicitly; nothing
sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.app.ops import drill_service
from broadcast.app.schema import feature_tables
from broadcast.clock import BEIJING, ManualClock
from broadcast.model import MessageDraft, MsgType, SourceKind
from broadcast.schedule.drill_service import DrillService, run_drill_job
from broadcast.schedule.drills import (
    DrillConfigError,
    DrillKind,
    DrillOutcome,
    DrillSpec,
    MisfireDecision,
    drill_draft,
    drills_from_config,
    misfire_decision,
)
from broadcast.schedule.jobstore import sync_url
from broadcast.schedule.slots import slots_between
from broadcast.store.broadcasts import DuplicateSourceError
from broadcast.store.db import make_engine, prepare_schema
from terminals.inventory import default_inventory

COUNTY = "530181000000"
# First Wednesdays of Nov/Dec 2026 and Jan 2027 at 10:00 Beijing.
NOV = datetime(2026, 11, 4, 10, tzinfo=BEIJING)
DEC = datetime(2026, 12, 2, 10, tzinfo=BEIJING)
JAN = datetime(2027, 1, 6, 10, tzinfo=BEIJING)


class FakeAir:
    """Stands in for Pipeline.submit: remembers source keys like the broadcast store does."""

    def __init__(self) -> None:
        self.accepted: dict[str, int] = {}
        self.drafts: list[MessageDraft] = []
        self.fail_next = 0

    async def __call__(self, draft: MessageDraft) -> int:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("database unavailable")
        key = draft.source.key
        if key in self.accepted:
            raise DuplicateSourceError(key, self.accepted[key], "ebm")
        self.accepted[key] = len(self.accepted) + 1
        self.drafts.append(draft)
        return self.accepted[key]


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'main.sqlite3'}")
    await prepare_schema(eng, feature_tables())
    yield eng
    await eng.dispose()


def service(engine: AsyncEngine, tmp_path: Path, air: FakeAir, clock: ManualClock, **spec: object) -> DrillService:
    drill = DrillSpec("monthly", (COUNTY,), **spec)  # type: ignore[arg-type]
    return DrillService(engine, clock, air, [drill], sender_name="安宁市应急广播平台", sender_code="4530181",
                        jobstore_url=f"sqlite:///{tmp_path / 'jobs.sqlite3'}", name=f"t{id(air)}")


def test_default_slots_are_first_wednesdays_at_ten_beijing() -> None:
    trig = DrillSpec("m", (COUNTY,)).trigger()
    slots = slots_between(trig, datetime(2026, 10, 20, tzinfo=UTC), JAN)
    assert slots == [NOV.astimezone(UTC), DEC.astimezone(UTC), JAN.astimezone(UTC)]
    assert all(s.astimezone(BEIJING).weekday() == 2 and s.astimezone(BEIJING).day <= 7 for s in slots)
    assert slots_between(trig, NOV, NOV) == [] and slots_between(trig, NOV - timedelta(seconds=1), NOV) == [NOV]


def test_misfire_decision_boundaries() -> None:
    grace = timedelta(minutes=30)
    assert misfire_decision(NOV, NOV, grace) is MisfireDecision.RUN
    assert misfire_decision(NOV, NOV + grace, grace) is MisfireDecision.RUN
    assert misfire_decision(NOV, NOV + grace + timedelta(seconds=1), grace) is MisfireDecision.MISSED


def test_draft_per_kind_and_slot() -> None:
    for kind, msg in ((DrillKind.PLATFORM, MsgType.PLATFORM_DRILL), (DrillKind.FRONT_END, MsgType.FRONT_END_DRILL),
                      (DrillKind.TERMINAL, MsgType.TERMINAL_DRILL)):
        spec = DrillSpec("m", (COUNTY,), kind=kind)
        late = NOV + timedelta(minutes=5)
        d = drill_draft(spec, NOV, late, sender_name="x", sender_code="y")
        assert d.msg_type is msg and d.source.kind is SourceKind.SCHEDULE and d.start_at == late
        assert d.end_at - d.start_at == spec.duration
    a = drill_draft(DrillSpec("m", (COUNTY,)), NOV, NOV, sender_name="x", sender_code="y")
    b = drill_draft(DrillSpec("m", (COUNTY,)), DEC, DEC, sender_name="x", sender_code="y")
    again = drill_draft(DrillSpec("m", (COUNTY,)), NOV, NOV + timedelta(minutes=9), sender_name="x", sender_code="y")
    assert a.source.key != b.source.key and a.source.key == again.source.key


async def test_run_slot_is_idempotent_and_silent_flag_passes(engine: AsyncEngine, tmp_path: Path) -> None:
    air = FakeAir()
    svc = service(engine, tmp_path, air, ManualClock(NOV), silent=True)
    first = await svc.run_slot("monthly", NOV, now=NOV + timedelta(seconds=2))
    again = await svc.run_slot("monthly", NOV, now=NOV + timedelta(seconds=3))
    assert first.outcome is DrillOutcome.SUBMITTED and again == first
    assert len(air.drafts) == 1 and air.drafts[0].volume == 0  # silence travels in the draft


async def test_restart_after_submit_does_not_air_twice(engine: AsyncEngine, tmp_path: Path) -> None:
    """A crash after the broadcast was stored but before the run was recorded: the retry meets the
    duplicate-source check and records the existing broadcast."""
    air = FakeAir()
    svc = service(engine, tmp_path, air, ManualClock(NOV))
    await air(drill_draft(svc.spec("monthly"), NOV, NOV, sender_name="x", sender_code="y"))
    run = await svc.run_slot("monthly", NOV, now=NOV + timedelta(minutes=1))
    assert run.outcome is DrillOutcome.SUBMITTED and run.broadcast_id == 1 and len(air.drafts) == 1


async def test_down_over_two_slots_records_missed_and_runs_current(engine: AsyncEngine, tmp_path: Path) -> None:
    air = FakeAir()
    clock = ManualClock(NOV - timedelta(days=10))
    svc = service(engine, tmp_path, air, clock, grace=timedelta(hours=1))
    # Controller down from before the November drill until 20 minutes after the December one.
    now = DEC + timedelta(minutes=20)
    runs = await svc.reconcile("monthly", anchor=NOV - timedelta(days=10), now=now)
    assert [(r.slot, r.outcome) for r in runs] == [
        (NOV.astimezone(UTC), DrillOutcome.MISSED), (DEC.astimezone(UTC), DrillOutcome.SUBMITTED)]
    assert "错过" in runs[0].detail
    # The scheduler firing again later changes nothing.
    assert await svc.reconcile("monthly", anchor=NOV - timedelta(days=10), now=now + timedelta(minutes=5)) == []
    assert len(air.drafts) == 1
    assert [r.outcome for r in await svc.runs("monthly")] == [DrillOutcome.MISSED, DrillOutcome.SUBMITTED]


async def test_failed_submit_retried_within_grace_then_kept(engine: AsyncEngine, tmp_path: Path) -> None:
    air = FakeAir()
    air.fail_next = 1
    svc = service(engine, tmp_path, air, ManualClock(NOV), grace=timedelta(minutes=30))
    failed = await svc.run_slot("monthly", NOV, now=NOV)
    assert failed.outcome is DrillOutcome.FAILED and "ConnectionError" in failed.detail
    retried = await svc.reconcile("monthly", anchor=NOV - timedelta(days=1), now=NOV + timedelta(minutes=10))
    assert [r.outcome for r in retried] == [DrillOutcome.SUBMITTED]
    air.fail_next = 1
    failed_dec = await svc.run_slot("monthly", DEC, now=DEC)
    late = await svc.run_slot("monthly", DEC, now=DEC + timedelta(hours=2))
    assert failed_dec.outcome is late.outcome is DrillOutcome.FAILED


async def test_job_function_reconciles_through_registered_service(engine: AsyncEngine, tmp_path: Path) -> None:
    air = FakeAir()
    clock = ManualClock(NOV + timedelta(minutes=3))
    svc = service(engine, tmp_path, air, clock)
    await svc.start()
    try:
        await run_drill_job(svc.name, "monthly", (NOV - timedelta(days=1)).isoformat())
        runs = await svc.runs("monthly")
        assert [(r.slot, r.outcome) for r in runs] == [(NOV.astimezone(UTC), DrillOutcome.SUBMITTED)]
    finally:
        await svc.close()
    await run_drill_job(svc.name, "monthly", NOV.isoformat())  # service gone: logged, not raised


async def test_job_store_survives_restart(engine: AsyncEngine, tmp_path: Path) -> None:
    clock = ManualClock(datetime.now(UTC))
    svc = service(engine, tmp_path, FakeAir(), clock)
    await svc.start()
    assert svc.scheduler is not None
    job = svc.scheduler.get_job("drill:monthly")
    assert job is not None
    next_run, anchor = job.next_run_time, job.kwargs["anchor"]
    assert next_run.astimezone(BEIJING).weekday() == 2 and next_run.astimezone(BEIJING).hour == 10
    await svc.close()

    clock.advance(3600)
    again = service(engine, tmp_path, FakeAir(), clock)
    sched = again.jobs.make_scheduler()
    sched.start(paused=True)
    try:
        stored = sched.get_job("drill:monthly")
        assert stored is not None and stored.next_run_time == next_run and stored.kwargs["anchor"] == anchor
    finally:
        sched.shutdown(wait=False)
    await again.start()  # keeps the first anchor across restarts
    try:
        assert again.scheduler is not None
        assert again.scheduler.get_job("drill:monthly").kwargs["anchor"] == anchor
    finally:
        await again.close()


def test_config_parsing_and_errors() -> None:
    specs = drills_from_config([
        {"id": "monthly"},
        {"id": "quiet", "kind": "platform", "areas": ["530181003"], "silent": True, "day": "15", "hour": 9},
    ], COUNTY)
    assert specs[0].day == "1st wed" and specs[0].hour == 10 and specs[0].area_codes == (COUNTY,)
    assert specs[1].msg_type is MsgType.PLATFORM_DRILL and specs[1].silent
    for bad, field_name in (({"id": "x", "kind": "loud"}, "kind"), ({"id": "x", "hour": 25}, "hour"),
                            ({"id": "x", "day": "1st someday"}, "day/hour/minute/month"), ({}, "id")):
        with pytest.raises(DrillConfigError) as info:
            drills_from_config([bad], COUNTY)
        assert info.value.field == field_name and "演练配置错误" in str(info.value)
    with pytest.raises(DrillConfigError, match="重复"):
        drills_from_config([{"id": "a"}, {"id": "a"}], COUNTY)


def test_sync_url() -> None:
    assert sync_url("sqlite+aiosqlite:////var/x.db") == "sqlite:////var/x.db"
    pg = sync_url("postgresql+asyncpg://u:p@127.0.0.1/ebc")
    assert pg is None or pg == "postgresql+psycopg://u:p@127.0.0.1/ebc"


def fake_settings(tmp_path: Path, raw: dict[str, Any]) -> Any:
    return SimpleNamespace(raw=raw, database_url=f"sqlite+aiosqlite:///{tmp_path / 'ops.sqlite3'}", base_dir=tmp_path)


async def test_drills_from_config_default_and_disabled(engine: AsyncEngine, tmp_path: Path) -> None:
    """The composition root's DrillService from [[drills]]: the monthly county drill by default, none
    for ``drills = []``; started and stopped on its own."""
    inventory = default_inventory()
    aired: list[MessageDraft] = []

    async def submit(draft: MessageDraft) -> int:
        aired.append(draft)
        return len(aired)

    clock = ManualClock(datetime(2026, 11, 1, tzinfo=BEIJING))
    drills = drill_service(fake_settings(tmp_path, {}), inventory, engine, clock, submit)
    assert drills is not None and [s.drill_id for s in drills.drills] == ["monthly"]
    assert drills.drills[0].area_codes == (inventory.county.code,)
    assert drill_service(fake_settings(tmp_path, {"drills": []}), inventory, engine, clock, submit) is None
    await drills.start()
    try:
        assert drills.scheduler is not None and drills.scheduler.get_job("drill:monthly") is not None
        clock.advance(3 * 86_400 + 10 * 3600 + 60)  # just past Wed Nov 4 10:00
        runs = await drills.reconcile("monthly")
        assert [r.outcome.value for r in runs] == ["submitted"] and len(aired) == 1
    finally:
        await drills.close()
    assert drills.scheduler is None
