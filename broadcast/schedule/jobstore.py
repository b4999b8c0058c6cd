"""The persistent APScheduler job store that drills and daily programmes share (定时任务存储).

APScheduler 3.x keeps each job in a synchronous SQLAlchemy job store, pickled, with its function as a
text reference (``broadcast.schedule:run_drill_job``). The job store URL is derived from the async
database URL (sqlite+aiosqlite → sqlite; postgresql+asyncpg → postgresql+psycopg when psycopg is
installed, else a SQLite file of its own). Only the schedules live there; what ran is in the main
database.

Owns: the job store URL (``sync_url``, ``jobstore_url``), the scheduler factory, the migration of stored
job references that moved (``MOVED_JOB_FUNCS``, applied before a scheduler loads its jobs: APScheduler
drops — and logs — a job whose function it cannot import), the registry of running services that the
module-level job functions look up (``Running``: a pickled job names its service, it cannot hold it), and
``JobBook``, the job-handling skeleton a schedule service is composed with. Must never decide a slot, air
anything or sleep.
"""

from __future__ import annotations

import importlib.util
import logging
import pickle
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Column, LargeBinary, MetaData, Table, Unicode, create_engine, inspect, select, update

from broadcast.schedule.slots import SHANGHAI

log = logging.getLogger(__name__)

MOVED_JOB_FUNCS: Mapping[str, str] = {
    # Before the schedule package, programme jobs were stored under the flat module's path.
    "broadcast.programmes:run_programme_job": "broadcast.schedule:run_programme_job",
}
"""Stored job function references that moved: old → new (rewritten in place when a scheduler opens)."""


class JobStoreError(RuntimeError):
    pass


def sync_url(async_url: str) -> str | None:
    """Synchronous SQLAlchemy URL for the job store, or None when no synchronous driver is installed."""
    if async_url.startswith("sqlite+aiosqlite:"):
        return "sqlite:" + async_url[len("sqlite+aiosqlite:") :]
    if async_url.startswith("sqlite:"):
        return async_url
    if async_url.startswith("postgresql+asyncpg:"):
        if importlib.util.find_spec("psycopg") is None:
            return None
        return "postgresql+psycopg:" + async_url[len("postgresql+asyncpg:") :]
    raise JobStoreError(
        f"不支持的数据库地址 {async_url.split(':')[0]}：演练定时只支持 SQLite 或 PostgreSQL。"
    )


def jobstore_url(database_url: str, fallback_file: Path) -> str:
    """The job store URL: the main database through a synchronous driver, else a SQLite file of its own.

    Only the schedule lives there; what ran is in drill_runs of the main database, so a separate file
    loses nothing but the "first scheduled" anchor if it is deleted.
    """
    url = sync_url(database_url)
    if url is not None:
        return url
    log.warning(
        "psycopg is not installed: drill schedule kept in %s (pip install 'psycopg[binary]' to keep it "
        "in PostgreSQL)",
        fallback_file,
    )
    fallback_file.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{fallback_file}"


def move_job_refs(url: str, tablename: str, moved: Mapping[str, str] | None = None) -> int:
    """Rewrite the function reference of every stored job whose function moved (old → new, by default
    ``MOVED_JOB_FUNCS``); returns how many jobs were rewritten. Everything else in a job (trigger, kwargs,
    next run) is kept as stored. A row that cannot be read is left alone for APScheduler to report."""
    moved = MOVED_JOB_FUNCS if moved is None else moved
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if not inspect(conn).has_table(tablename):
                return 0
            # The two columns of APScheduler's table that this touches (its own definition).
            jobs = Table(
                tablename,
                MetaData(),
                Column("id", Unicode(191), primary_key=True),
                Column("job_state", LargeBinary, nullable=False),
            )
            rewritten = 0
            for job_id, blob in conn.execute(select(jobs.c.id, jobs.c.job_state)).all():
                try:
                    state = pickle.loads(blob)
                    new = moved.get(state["func"])
                except Exception:
                    continue
                if new is None:
                    continue
                log.info("job %s: stored function %s moved to %s", job_id, state["func"], new)
                state["func"] = new
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id)
                    .values(job_state=pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
                )
                rewritten += 1
            return rewritten
    finally:
        engine.dispose()


def make_scheduler(url: str, *, tablename: str, job_defaults: Mapping[str, Any]) -> AsyncIOScheduler:
    """An AsyncIOScheduler (Asia/Shanghai) on the persistent job store, its moved references rewritten."""
    move_job_refs(url, tablename)
    return AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url, tablename=tablename)},
        timezone=SHANGHAI,
        job_defaults=dict(job_defaults),
    )


S = TypeVar("S")


class Running(Generic[S]):
    """The running services of one kind, by name: what a job function reaches when its job fires."""

    def __init__(self) -> None:
        self._by_name: dict[str, S] = {}

    def add(self, name: str, service: S) -> None:
        self._by_name[name] = service

    def get(self, name: str) -> S | None:
        return self._by_name.get(name)

    def remove(self, name: str, service: S) -> None:
        if self._by_name.get(name) is service:
            del self._by_name[name]


@dataclass
class JobBook:
    """One service's jobs in the job store: ids starting with ``prefix``, all running ``func``.

    ``open`` starts the scheduler paused (so refreshing the jobs and catching up cannot race a fire),
    ``prune`` drops jobs no longer configured, ``put`` adds or refreshes one, ``resume`` lets them fire.
    """

    url: str
    tablename: str
    func: str  # the persisted job function reference, "module:name"
    prefix: str  # "drill:" / "programme:"
    label: str  # for the log: "drill" / "programme"
    job_defaults: Mapping[str, Any]
    scheduler: AsyncIOScheduler | None = field(default=None, init=False)

    def make_scheduler(self) -> AsyncIOScheduler:
        return make_scheduler(self.url, tablename=self.tablename, job_defaults=self.job_defaults)

    def open(self) -> AsyncIOScheduler:
        sched = self.make_scheduler()
        sched.start(paused=True)
        self.scheduler = sched
        return sched

    def _scheduler(self) -> AsyncIOScheduler:
        if self.scheduler is None:
            raise JobStoreError(f"{self.label} scheduler is not open")
        return self.scheduler

    def prune(self, wanted: Collection[str]) -> None:
        """Remove this service's stored jobs whose id is not in ``wanted``."""
        for job in self._scheduler().get_jobs():
            if job.id.startswith(self.prefix) and job.id not in wanted:
                log.info("%s job %s is no longer configured; removing it", self.label, job.id)
                job.remove()

    def stored_kwargs(self, job_id: str) -> dict[str, Any] | None:
        """The keyword arguments a job was stored with, or None when there is no such job."""
        job = self._scheduler().get_job(job_id)
        return None if job is None else dict(job.kwargs)

    def put(self, job_id: str, trigger: Any, *, name: str, kwargs: Mapping[str, str], **options: Any) -> None:
        """Add the job, or replace the stored one (its trigger, name and arguments)."""
        self._scheduler().add_job(
            self.func, trigger, id=job_id, name=name, replace_existing=True, kwargs=dict(kwargs), **options
        )

    def resume(self) -> None:
        self._scheduler().resume()

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
