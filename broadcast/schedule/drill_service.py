"""Drills (系统演练) on a schedule: APScheduler 3.x with a persistent job store, and a drill_runs record.

Definitions:

- A **drill** is configured once (``DrillSpec``): kind (platform / front-end / terminal drill =
  MsgType 3 / 4 / 5), target areas, text, a silent option (终端巡检：checks terminals without sound)
  and a cron schedule, by default the first Wednesday of every month at 10:00 Beijing time.
- A **slot** is one scheduled fire time of a drill (aware UTC datetime). Every slot after the drill
  was first scheduled gets exactly one ``drill_runs`` row: ``submitted`` (with the broadcast id),
  ``missed`` (the controller was down longer than the grace period), or ``failed`` (the submit raised;
  retried while still inside the grace period). A slot is never silently skipped.
- A **silent** drill's draft carries ``volume=0``: terminals run the drill (receive, report) without
  sound. Every drill's spoken programme is **pre-rendered** into the audio cache ahead of its next slot
  (``drill_prerenderer`` + ``DrillService.prerender_next``), so the slot's own render is a cache hit.
- A run is **idempotent**: the draft's SourceRef identifier is ``<drill id>@<slot>``, so a restart
  that fires the same slot again hits the broadcast store's duplicate-source check instead of airing
  twice; the unique (drill_id, slot) row does the same for the record.

How firing works: APScheduler keeps each drill as a job whose function is the module-level
``run_drill_job`` (jobs must be picklable: no lambdas, no bound methods) with plain-string arguments.
The job store is synchronous SQLAlchemy: the URL is derived from the async database URL
(sqlite+aiosqlite → sqlite; postgresql+asyncpg → postgresql+psycopg when psycopg is installed, else a
SQLite file). The job never trusts APScheduler's notion of which run this is: it reconciles — every
slot since the last recorded one is run if inside the grace period or recorded as missed — so the
outcome is decided by ``misfire_decision`` alone and can be tested without a running scheduler.

Owns the drills' schedule, the drill_runs table and the job function; the drill specs, config parsing, the
pure slot/misfire decisions, building drill drafts and the pre-renderer live in ``broadcast.drills`` and
are re-exported here. Must never air anything
itself (it calls the submit callback) and never sleeps.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Column, Integer, String, Table, Text, UniqueConstraint, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.model import MessageDraft
from broadcast.schedule.drills import (
    SHANGHAI,
    DrillOutcome,
    DrillSpec,
    DrillStoreError,
    MisfireDecision,
    Prerender,
    build_draft,
    misfire_decision,
    next_slot,
    slots_between,
)
from broadcast.store.broadcasts import DuplicateSourceError
from broadcast.store.tables import UtcDateTime, metadata

log = logging.getLogger(__name__)


JOB_FUNC = "broadcast.schedule:run_drill_job"

drill_runs = Table(
    "drill_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("drill_id", String(64), nullable=False),
    Column("slot", UtcDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    Column("broadcast_id", Integer, nullable=True),
    Column("detail", Text, nullable=False, default=""),
    UniqueConstraint("drill_id", "slot", name="uq_drill_slot"),
)


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
    raise DrillStoreError(
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


# -- service -----------------------------------------------------------------------------------------

Submitter = Callable[[MessageDraft, bool], Awaitable[int]]
"""Submit a drill draft; the bool is ``silent`` (终端巡检，不出声). Returns the broadcast id."""


class _Submits(Protocol):
    async def submit(
        self, draft: MessageDraft, *, actor: str = "", received_at: datetime | None = None
    ) -> Any: ...


def pipeline_submitter(pipeline: _Submits) -> Submitter:
    """Adapt ``Pipeline.submit`` (returns Submitted) to a Submitter. Silence travels in the draft
    (``volume=0``); the pipeline puts it into the delivery order."""

    async def submit(draft: MessageDraft, silent: bool) -> int:
        if silent:
            log.info("drill %s is a silent terminal check (volume 0)", draft.source.identifier)
        result = await pipeline.submit(draft, actor=draft.source.sender)
        return int(result.broadcast_id)

    return submit


@dataclass(frozen=True)
class DrillRun:
    drill_id: str
    slot: datetime
    outcome: DrillOutcome
    broadcast_id: int | None = None
    detail: str = ""


_SERVICES: dict[str, DrillService] = {}


async def run_drill_job(service: str, drill_id: str, anchor: str) -> None:
    """The APScheduler job: reconcile every due slot of one drill. Module-level so it can be pickled."""
    svc = _SERVICES.get(service)
    if svc is None:
        log.error(
            "drill %s fired but drill service %r is not running; it will be reconciled on start",
            drill_id,
            service,
        )
        return
    await svc.reconcile(drill_id, anchor=datetime.fromisoformat(anchor))
    svc.spawn_prerender(drill_id)


@dataclass
class DrillService:
    engine: AsyncEngine
    clock: Clock
    submit: Submitter
    drills: Sequence[DrillSpec]
    sender_name: str
    sender_code: str
    jobstore_url: str
    name: str = "default"
    prerender: Prerender | None = None
    scheduler: AsyncIOScheduler | None = field(default=None, init=False)
    _anchors: dict[str, datetime] = field(default_factory=dict, init=False)
    _prerenders: set[asyncio.Task[list[str]]] = field(default_factory=set, init=False)

    def spec(self, drill_id: str) -> DrillSpec:
        for s in self.drills:
            if s.drill_id == drill_id:
                return s
        raise KeyError(drill_id)

    async def ensure_tables(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(lambda c: metadata.create_all(c, tables=[drill_runs]))

    # -- records --------------------------------------------------------------------------------------
    async def runs(self, drill_id: str) -> list[DrillRun]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(drill_runs).where(drill_runs.c.drill_id == drill_id).order_by(drill_runs.c.slot)
            )
            return [
                DrillRun(r.drill_id, r.slot, DrillOutcome(r.outcome), r.broadcast_id, r.detail) for r in rows
            ]

    async def _get(self, drill_id: str, slot: datetime) -> DrillRun | None:
        async with self.engine.connect() as conn:
            r = (
                await conn.execute(
                    select(drill_runs).where(drill_runs.c.drill_id == drill_id, drill_runs.c.slot == slot)
                )
            ).first()
        return (
            None
            if r is None
            else DrillRun(r.drill_id, r.slot, DrillOutcome(r.outcome), r.broadcast_id, r.detail)
        )

    async def _record(self, run: DrillRun, now: datetime, *, exists: bool) -> DrillRun:
        values = {
            "outcome": str(run.outcome),
            "decided_at": now,
            "broadcast_id": run.broadcast_id,
            "detail": run.detail,
        }
        async with self.engine.begin() as conn:
            if exists:
                await conn.execute(
                    update(drill_runs)
                    .where(drill_runs.c.drill_id == run.drill_id, drill_runs.c.slot == run.slot)
                    .values(**values)
                )
            else:
                await conn.execute(insert(drill_runs).values(drill_id=run.drill_id, slot=run.slot, **values))
        return run

    # -- running --------------------------------------------------------------------------------------
    async def run_slot(self, drill_id: str, slot: datetime, *, now: datetime | None = None) -> DrillRun:
        """Decide and carry out one slot: run it (within grace) or record it missed. Idempotent."""
        spec = self.spec(drill_id)
        now = now or self.clock.now()
        slot = slot.astimezone(UTC)
        existing = await self._get(drill_id, slot)
        if existing is not None and existing.outcome in (DrillOutcome.SUBMITTED, DrillOutcome.MISSED):
            return existing
        if misfire_decision(slot, now, spec.grace) is MisfireDecision.MISSED:
            if existing is not None and existing.outcome is DrillOutcome.FAILED:
                return existing
            late = now - slot
            log.warning(
                "drill %s slot %s missed: controller was not running (%s late, grace %s)",
                drill_id,
                slot.isoformat(),
                late,
                spec.grace,
            )
            return await self._record(
                DrillRun(
                    drill_id, slot, DrillOutcome.MISSED, None, f"错过：晚了 {late}，超过宽限 {spec.grace}"
                ),
                now,
                exists=existing is not None,
            )
        if existing is None:
            await self._record(DrillRun(drill_id, slot, DrillOutcome.STARTED), now, exists=False)
        draft = build_draft(spec, slot, now, sender_name=self.sender_name, sender_code=self.sender_code)
        try:
            bid = await self.submit(draft, spec.silent)
            detail = ""
        except DuplicateSourceError as dup:
            bid, detail = dup.broadcast_id, "此前已提交（重启后未重复播发）"
        except Exception as exc:
            log.exception("drill %s slot %s could not be submitted", drill_id, slot.isoformat())
            return await self._record(
                DrillRun(drill_id, slot, DrillOutcome.FAILED, None, f"{type(exc).__name__}: {exc}"),
                now,
                exists=True,
            )
        log.info("drill %s slot %s submitted as broadcast %d", drill_id, slot.isoformat(), bid)
        return await self._record(
            DrillRun(drill_id, slot, DrillOutcome.SUBMITTED, bid, detail), now, exists=True
        )

    async def reconcile(
        self, drill_id: str, *, anchor: datetime | None = None, now: datetime | None = None
    ) -> list[DrillRun]:
        """Handle every slot after the last settled one (or after ``anchor``) up to now."""
        spec = self.spec(drill_id)
        now = now or self.clock.now()
        anchor = anchor or self._anchors.get(drill_id) or now
        runs = await self.runs(drill_id)
        settled = [r.slot for r in runs if r.outcome in (DrillOutcome.SUBMITTED, DrillOutcome.MISSED)]
        after = max([anchor, *settled])
        pending = sorted(
            {*(r.slot for r in runs if r.slot > after), *slots_between(spec.trigger(), after, now)}
        )
        return [await self.run_slot(drill_id, s, now=now) for s in pending]

    # -- pre-rendering --------------------------------------------------------------------------------
    async def prerender_next(self, drill_id: str | None = None, *, now: datetime | None = None) -> list[str]:
        """Render the speech of each drill's next slot into the audio cache (no-op without ``prerender``).
        Returns the drill ids rendered; a failure is logged and left to the slot's own render."""
        if self.prerender is None:
            return []
        now = now or self.clock.now()
        done: list[str] = []
        for spec in self.drills if drill_id is None else [self.spec(drill_id)]:
            slot = next_slot(spec, now)
            if slot is None:
                continue
            draft = build_draft(spec, slot, slot, sender_name=self.sender_name, sender_code=self.sender_code)
            try:
                await self.prerender(draft)
            except Exception:
                log.exception("drill %s: pre-rendering slot %s failed", spec.drill_id, slot.isoformat())
                continue
            log.info("drill %s: speech for slot %s pre-rendered", spec.drill_id, slot.isoformat())
            done.append(spec.drill_id)
        return done

    @property
    def prerendering(self) -> bool:
        """Whether a background pre-render is still running."""
        return bool(self._prerenders)

    def spawn_prerender(self, drill_id: str | None = None) -> None:
        """``prerender_next`` in the background (start-up and after each fire must not wait for TTS)."""
        if self.prerender is None:
            return
        task = asyncio.create_task(self.prerender_next(drill_id), name=f"drill-prerender-{drill_id or '*'}")
        self._prerenders.add(task)
        task.add_done_callback(self._prerenders.discard)

    # -- scheduler ------------------------------------------------------------------------------------
    def make_scheduler(self) -> AsyncIOScheduler:
        store = SQLAlchemyJobStore(url=self.jobstore_url)
        return AsyncIOScheduler(
            jobstores={"default": store},
            timezone=SHANGHAI,
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        )

    async def start(self) -> None:
        """Open the job store, add or refresh the drills' jobs, reconcile missed slots, then run."""
        await self.ensure_tables()
        _SERVICES[self.name] = self
        sched = self.make_scheduler()
        sched.start(paused=True)
        self.scheduler = sched
        now = self.clock.now()
        wanted = {s.job_id for s in self.drills}
        for job in sched.get_jobs():
            if job.id.startswith("drill:") and job.id not in wanted:
                log.info("drill job %s is no longer configured; removing it", job.id)
                job.remove()
        for spec in self.drills:
            old = sched.get_job(spec.job_id)
            anchor = datetime.fromisoformat(old.kwargs["anchor"]) if old is not None else now
            self._anchors[spec.drill_id] = anchor
            sched.add_job(
                JOB_FUNC,
                spec.trigger(),
                id=spec.job_id,
                name=f"演练 {spec.drill_id}",
                replace_existing=True,
                kwargs={"service": self.name, "drill_id": spec.drill_id, "anchor": anchor.isoformat()},
            )
            await self.reconcile(spec.drill_id, anchor=anchor, now=now)
        sched.resume()
        self.spawn_prerender()

    async def close(self) -> None:
        for task in list(self._prerenders):
            task.cancel()
        if self._prerenders:
            await asyncio.gather(*self._prerenders, return_exceptions=True)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if _SERVICES.get(self.name) is self:
            del _SERVICES[self.name]
