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
``run_drill_job`` (jobs must be picklable: no lambdas, no bound methods) with plain-string arguments, in
the job store shared with the programmes (``broadcast.schedule.jobstore``). The job never trusts
APScheduler's notion of which run this is: it reconciles — every slot since the last recorded one is run
if inside the grace period or recorded as missed — so the outcome is decided by ``misfire_decision``
alone and can be tested without a running scheduler. The stored reference
``broadcast.schedule:run_drill_job`` must stay loadable, and so must the job's ``anchor`` argument (the
moment the drill was first scheduled, kept across restarts).

Owns the drills' schedule, the drill_runs table (created by ``prepare_schema``, never here) and the job
function; the drill specs, config parsing, the pure misfire decision, building drill drafts and the
pre-renderer live in ``broadcast.schedule.drills``. Must never air anything itself (it calls the submit
callback) and never sleeps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Column, Integer, String, Table, Text, UniqueConstraint, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.schedule.drills import (
    JOB_PREFIX,
    DrillOutcome,
    DrillSpec,
    MisfireDecision,
    Prerender,
    drill_draft,
    misfire_decision,
    next_slot,
)
from broadcast.schedule.jobstore import JobBook, Running
from broadcast.schedule.slots import Submit, slots_between
from broadcast.store.broadcasts import DuplicateSourceError
from broadcast.store.tables import UtcDateTime, metadata

log = logging.getLogger(__name__)


JOB_FUNC = "broadcast.schedule:run_drill_job"  # persisted in every stored drill job: must stay loadable
JOB_TABLE = "apscheduler_jobs"  # APScheduler's default table name, which the drill jobs were always kept in

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


@dataclass(frozen=True)
class DrillRun:
    drill_id: str
    slot: datetime
    outcome: DrillOutcome
    broadcast_id: int | None = None
    detail: str = ""


_RUNNING: Running[DrillService] = Running()


async def run_drill_job(service: str, drill_id: str, anchor: str) -> None:
    """The APScheduler job: reconcile every due slot of one drill. Module-level so it can be pickled."""
    svc = _RUNNING.get(service)
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
    submit: Submit
    drills: Sequence[DrillSpec]
    sender_name: str
    sender_code: str
    jobstore_url: str
    name: str = "default"
    prerender: Prerender | None = None
    jobs: JobBook = field(init=False)
    _anchors: dict[str, datetime] = field(default_factory=dict, init=False)
    _prerenders: set[asyncio.Task[list[str]]] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.jobs = JobBook(
            self.jobstore_url,
            tablename=JOB_TABLE,
            func=JOB_FUNC,
            prefix=JOB_PREFIX,
            label="drill",
            # A fire that comes late is still run: the job reconciles, misfire_decision decides.
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        )

    @property
    def scheduler(self) -> AsyncIOScheduler | None:
        """The running scheduler (None before ``start`` and after ``close``)."""
        return self.jobs.scheduler

    def spec(self, drill_id: str) -> DrillSpec:
        for s in self.drills:
            if s.drill_id == drill_id:
                return s
        raise KeyError(drill_id)

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
        draft = drill_draft(spec, slot, now, sender_name=self.sender_name, sender_code=self.sender_code)
        if spec.silent:
            log.info("drill %s is a silent terminal check (volume 0)", draft.source.identifier)
        try:
            bid = await self.submit(draft)
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
            draft = drill_draft(spec, slot, slot, sender_name=self.sender_name, sender_code=self.sender_code)
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
    async def start(self) -> None:
        """Open the job store, add or refresh the drills' jobs, reconcile missed slots, then run."""
        _RUNNING.add(self.name, self)
        self.jobs.open()
        now = self.clock.now()
        self.jobs.prune({s.job_id for s in self.drills})
        for spec in self.drills:
            old = self.jobs.stored_kwargs(spec.job_id)
            anchor = datetime.fromisoformat(old["anchor"]) if old is not None else now
            self._anchors[spec.drill_id] = anchor
            self.jobs.put(
                spec.job_id,
                spec.trigger(),
                name=f"演练 {spec.drill_id}",
                kwargs={"service": self.name, "drill_id": spec.drill_id, "anchor": anchor.isoformat()},
            )
            await self.reconcile(spec.drill_id, anchor=anchor, now=now)
        self.jobs.resume()
        self.spawn_prerender()

    async def close(self) -> None:
        for task in list(self._prerenders):
            task.cancel()
        if self._prerenders:
            await asyncio.gather(*self._prerenders, return_exceptions=True)
        self.jobs.close()
        _RUNNING.remove(self.name, self)
