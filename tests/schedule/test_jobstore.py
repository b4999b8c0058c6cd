"""The job store shared by drills and programmes: a job stored under a function reference that moved
(``broadcast.programmes:run_programme_job``, from before the schedule package) is rewritten before the
scheduler loads it, so the service starts with the job and APScheduler logs no restore error. Real
SQLAlchemy job stores in a SQLite file; nothing sleeps."""

from __future__ import annotations

import logging
import pickle
import sys
import types
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.app.schema import feature_tables
from broadcast.clock import BEIJING, ManualClock
from broadcast.model import MessageDraft
from broadcast.schedule import jobstore
from broadcast.schedule.drill_service import JOB_TABLE as DRILL_TABLE
from broadcast.schedule.drill_service import DrillService
from broadcast.schedule.drills import DrillSpec
from broadcast.schedule.programme_specs import ProgrammeSpec
from broadcast.schedule.programmes import JOB_TABLE as PROGRAMME_TABLE
from broadcast.schedule.programmes import ProgrammeService
from broadcast.schedule.slots import SHANGHAI
from broadcast.store.db import make_engine, prepare_schema

OLD_REF = "broadcast.programmes:run_programme_job"
NEW_REF = "broadcast.schedule:run_programme_job"
COUNTY = "530181000000"
NOW = datetime(2026, 11, 2, 12, tzinfo=BEIJING)  # a Monday: no drill or programme slot is due
ANCHOR = datetime(2026, 3, 1, 9, tzinfo=UTC)  # when an earlier installation first scheduled the drill


async def _never(draft: MessageDraft) -> int:
    raise AssertionError(f"nothing is due, {draft.source.identifier} was submitted")


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'main.sqlite3'}")
    await prepare_schema(eng, feature_tables())
    yield eng
    await eng.dispose()


def store_as_earlier_installation(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Store jobs the way an earlier installation left them: the programme job under its old reference
    (which APScheduler resolved then: the flat module existed), the drill job with its first anchor."""
    old_module = types.ModuleType("broadcast.programmes")

    async def run_programme_job(service: str, programme_id: str) -> None:
        raise AssertionError("the old module must never run")

    old_module.run_programme_job = run_programme_job  # type: ignore[attr-defined]
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "broadcast.programmes", old_module)
        sched = AsyncIOScheduler(
            jobstores={
                "programmes": SQLAlchemyJobStore(url=url, tablename=PROGRAMME_TABLE),
                "drills": SQLAlchemyJobStore(url=url, tablename=DRILL_TABLE),
            },
            timezone=SHANGHAI,
        )
        sched.start(paused=True)
        sched.add_job(
            OLD_REF,
            ProgrammeSpec("morning", (COUNTY,), "早间广播", ("早上好。",)).trigger(),
            id="programme:morning",
            jobstore="programmes",
            kwargs={"service": "default", "programme_id": "morning"},
        )
        sched.add_job(
            "broadcast.schedule:run_drill_job",
            DrillSpec("monthly", (COUNTY,)).trigger(),
            id="drill:monthly",
            jobstore="drills",
            kwargs={"service": "default", "drill_id": "monthly", "anchor": ANCHOR.isoformat()},
        )
        sched.shutdown(wait=False)
    assert "broadcast.programmes" not in sys.modules


def stored_refs(url: str, tablename: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(f"SELECT id, job_state FROM {tablename}")).all()
    finally:
        engine.dispose()
    return {job_id: pickle.loads(state)["func"] for job_id, state in rows}


def restore_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("apscheduler") and r.levelno >= logging.WARNING
    ]


async def test_old_programme_reference_is_moved_and_the_jobs_kept(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    store_as_earlier_installation(url, monkeypatch)
    assert stored_refs(url, PROGRAMME_TABLE) == {"programme:morning": OLD_REF}

    clock = ManualClock(NOW)
    spec = ProgrammeSpec("morning", (COUNTY,), "早间广播", ("早上好。",))
    programmes = ProgrammeService(clock, _never, [spec], "安宁", "5301810", url)
    drills = DrillService(
        engine,
        clock,
        _never,
        [DrillSpec("monthly", (COUNTY,))],
        sender_name="安宁",
        sender_code="5301810",
        jobstore_url=url,
    )
    caplog.set_level(logging.INFO)
    await drills.start()
    await programmes.start()
    try:
        assert restore_errors(caplog) == []
        assert any("moved to " + NEW_REF in r.getMessage() for r in caplog.records)
        assert programmes.scheduler is not None and drills.scheduler is not None
        job = programmes.scheduler.get_job("programme:morning")
        assert job is not None and job.func_ref == NEW_REF
        assert job.kwargs == {"service": "default", "programme_id": "morning"}
        drill = drills.scheduler.get_job("drill:monthly")
        assert drill is not None and drill.kwargs["anchor"] == ANCHOR.isoformat()  # the first anchor stays
    finally:
        await programmes.close()
        await drills.close()
    assert stored_refs(url, PROGRAMME_TABLE) == {"programme:morning": NEW_REF}
    assert stored_refs(url, DRILL_TABLE) == {"drill:monthly": "broadcast.schedule:run_drill_job"}


async def test_without_the_migration_apscheduler_drops_the_old_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The control: what the migration prevents (so the test above is not passing by accident)."""
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    store_as_earlier_installation(url, monkeypatch)
    monkeypatch.setattr(jobstore, "MOVED_JOB_FUNCS", {})
    caplog.set_level(logging.INFO)
    programmes = ProgrammeService(ManualClock(NOW), _never, [], "安宁", "5301810", url)
    await programmes.start()
    await programmes.close()
    assert any("Unable to restore job" in m for m in restore_errors(caplog))


async def test_move_job_refs_is_idempotent_and_touches_only_moved_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    assert jobstore.move_job_refs(url, PROGRAMME_TABLE) == 0  # no table yet
    assert jobstore.move_job_refs("sqlite://", PROGRAMME_TABLE) == 0  # an in-memory store is always new
    store_as_earlier_installation(url, monkeypatch)
    assert jobstore.move_job_refs(url, DRILL_TABLE) == 0
    assert jobstore.move_job_refs(url, PROGRAMME_TABLE) == 1
    assert jobstore.move_job_refs(url, PROGRAMME_TABLE) == 0
    assert stored_refs(url, PROGRAMME_TABLE) == {"programme:morning": NEW_REF}
