"""Daily programmes (日常广播): a weekly schedule per area, aired through the pipeline at DAILY priority.

Definitions:

- A **programme** is configured once in TOML ``[[programmes]]`` (``ProgrammeSpec``): id, target areas,
  days of the week (APScheduler ``day_of_week``: ``"mon-fri"``, ``"sat,sun"``, ``"*"``), start time
  (Beijing), duration, a title and items (``[[programmes.items]]`` with ``text`` to speak; the spoken
  texts are joined in order). An item may instead be ``audio = "<sha256 digest>"`` of a recording in the
  audio cache (``POST /api/audio``): it is played as supplied instead of speech; such a programme has
  exactly that one item (an optional ``text`` beside it is the written description, not spoken).
- A **media-centre programme** is a submission (``broadcast.interconnect.media``) an operator approved:
  ``ProgrammeService.add_submission`` turns it into a one-off spec (``once_at`` = the requested start),
  persists it in ``media_programmes`` (loaded again at every start, beside the configured ones) and
  schedules it. Rejected or pending submissions are never in this table, so they never air.
- A **slot** is one scheduled start (aware UTC). Its draft has ``SourceKind.SCHEDULE`` and
  ``MsgType.ACTUAL``, so ``draft.priority`` is ``Priority.DAILY``: every warning, and every drill,
  preempts it and it resumes afterwards (broadcast/dispatch.py). The SourceRef identifier
  ``<programme id>@<slot>`` makes a slot idempotent: firing it twice (restart, misfire) hits the store's
  duplicate-source check instead of airing twice.
- Programmes are routine: they are submitted straight to ``Pipeline.submit``, never through the intake
  desk's emergency policy holds. A slot later than its grace (default 10 minutes; controller down) is
  skipped and logged: a missed daily programme is not worth airing late.

How firing works: APScheduler (Asia/Shanghai) keeps one job per programme whose function is the
module-level ``run_programme_job`` with plain-string arguments (jobs are pickled into the persistent
SQLAlchemy job store shared with the drills, see ``broadcast.schedule.jobstore``). The job works out
its slot itself from the trigger, so the outcome does not depend on APScheduler's bookkeeping. Jobs
stored under the reference of the flat module this used to be (``broadcast.programmes``) are rewritten
to ``broadcast.schedule:run_programme_job`` when the job store opens.

Owns the programme schedule and the ``media_programmes`` table (created by ``prepare_schema``, never
here) with its rows read back as specs; the specs, config parsing, slot arithmetic and building
programme drafts live in ``broadcast.schedule.programme_specs``. Never airs anything itself (it calls the
submit callback), never decides a submission (operators do, in media.py), never fetches audio, never
talks to terminals, never sleeps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Column, Integer, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.schedule.jobstore import JobBook, Running
from broadcast.schedule.programme_specs import (
    JOB_PREFIX,
    ProgrammeSpec,
    ScheduleError,
    ScheduleFault,
    SlotOutcome,
    due_slot,
    programme_draft,
    spec_from_submission,
)
from broadcast.schedule.slots import Submit
from broadcast.store.broadcasts import DuplicateSourceError
from broadcast.store.tables import UtcDateTime, metadata

if TYPE_CHECKING:
    from broadcast.interconnect.media import Submission

log = logging.getLogger(__name__)

JOB_FUNC = "broadcast.schedule:run_programme_job"  # persisted in every stored programme job
JOB_TABLE = "programme_jobs"

media_programmes = Table(
    "media_programmes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("programme_id", String(120), nullable=False, unique=True),
    Column("submission_id", String(100), nullable=False),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False, default=""),
    Column("audio_digest", String(64), nullable=True),
    Column("area_codes", Text, nullable=False),
    Column("start_at", UtcDateTime, nullable=False),
    Column("end_at", UtcDateTime, nullable=False),
    Column("approved_by", String(100), nullable=False),
    Column("approved_at", UtcDateTime, nullable=False),
)


def _approved_spec(row: Any) -> ProgrammeSpec:
    """The one-off spec of a ``media_programmes`` row."""
    m = row._mapping
    start: datetime = m["start_at"]
    return ProgrammeSpec(
        programme_id=m["programme_id"],
        area_codes=tuple(c for c in m["area_codes"].split(",") if c),
        title=m["title"],
        texts=(m["text"],) if m["text"] else (),
        duration=m["end_at"] - start,
        audio_digest=m["audio_digest"],
        once_at=start,
        approved_by=m["approved_by"],
    )


# -- service ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotRun:
    programme_id: str
    slot: datetime | None
    outcome: SlotOutcome
    broadcast_id: int | None = None
    detail: str = ""


_RUNNING: Running[ProgrammeService] = Running()


async def run_programme_job(service: str, programme_id: str) -> None:
    """The APScheduler job. Module-level so that it can be pickled into the job store."""
    svc = _RUNNING.get(service)
    if svc is None:
        log.error("programme %s fired but programme service %r is not running", programme_id, service)
        return
    await svc.run_due(programme_id)


@dataclass
class ProgrammeService:
    clock: Clock
    submit: Submit
    programmes: Sequence[ProgrammeSpec]
    sender_name: str
    sender_code: str
    jobstore_url: str
    name: str = "default"
    # The database holding ``media_programmes`` (approved media-centre programmes); None: config only.
    engine: AsyncEngine | None = None
    default_areas: tuple[str, ...] = ()
    # Whether a recording is in the audio cache; a programme whose recording is gone fails its slot.
    audio_exists: Callable[[str], bool] | None = None
    jobs: JobBook = field(init=False)
    approved: list[ProgrammeSpec] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.jobs = JobBook(
            self.jobstore_url,
            tablename=JOB_TABLE,
            func=JOB_FUNC,
            prefix=JOB_PREFIX,
            label="programme",
            job_defaults={"coalesce": True, "max_instances": 1},
        )

    @property
    def scheduler(self) -> AsyncIOScheduler | None:
        """The running scheduler (None before ``start`` and after ``close``)."""
        return self.jobs.scheduler

    def all_programmes(self) -> list[ProgrammeSpec]:
        return [*self.programmes, *self.approved]

    def spec(self, programme_id: str) -> ProgrammeSpec:
        for s in self.all_programmes():
            if s.programme_id == programme_id:
                return s
        raise KeyError(programme_id)

    # -- media-centre programmes ----------------------------------------------------------------------
    async def load_approved(self) -> list[ProgrammeSpec]:
        """The approved media-centre programmes from the database (replaces the in-memory list)."""
        if self.engine is None:
            return []
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(media_programmes).order_by(media_programmes.c.start_at))
            self.approved = [_approved_spec(r) for r in rows]
        return self.approved

    def check_schedulable(self, sub: Submission, now: datetime | None = None) -> None:
        """Raise ScheduleError if the submission could not be scheduled (check BEFORE approving it)."""
        if self.engine is None:
            raise ScheduleError(
                ScheduleFault.NOT_RUNNING, sub.submission_id, "节目排播服务未连接数据库，请联系运维检查配置"
            )
        spec = spec_from_submission(sub, audio_digest=None, default_areas=self.default_areas)
        if spec.over(now or self.clock.now()):
            raise ScheduleError(
                ScheduleFault.TOO_LATE,
                sub.submission_id,
                "申请的播出时间已过，无法排播；请驳回，并请融媒体中心改期后重新提交",
            )

    async def add_submission(
        self, sub: Submission, *, audio_digest: str | None, approved_by: str, now: datetime | None = None
    ) -> ProgrammeSpec:
        """Persist and schedule an approved submission (idempotent per submission id); a slot already due
        airs at once. Raises ScheduleError."""
        now = now or self.clock.now()
        self.check_schedulable(sub, now)
        assert self.engine is not None
        spec = spec_from_submission(
            sub, audio_digest=audio_digest, default_areas=self.default_areas, approved_by=approved_by
        )
        assert spec.once_at is not None
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(media_programmes).values(
                        programme_id=spec.programme_id,
                        submission_id=sub.submission_id,
                        title=spec.title,
                        text="".join(spec.texts),
                        audio_digest=audio_digest,
                        area_codes=",".join(spec.area_codes),
                        start_at=spec.once_at,
                        end_at=spec.once_at + spec.duration,
                        approved_by=approved_by,
                        approved_at=now,
                    )
                )
        except IntegrityError:
            log.info("media programme %s was scheduled before", spec.programme_id)
            return self.spec(spec.programme_id)
        self.approved.append(spec)
        log.info("media programme %s scheduled for %s by %s", spec.programme_id, spec.once_at, approved_by)
        if self.scheduler is not None:
            self._add_job(spec)
            if due_slot(spec, now) is not None:
                await self.run_due(spec.programme_id, now=now)
        return spec

    def _add_job(self, spec: ProgrammeSpec) -> None:
        self.jobs.put(
            spec.job_id,
            spec.trigger(),
            name=f"日常广播 {spec.programme_id}",
            misfire_grace_time=int(spec.grace.total_seconds()) or 1,
            kwargs={"service": self.name, "programme_id": spec.programme_id},
        )

    async def run_slot(self, programme_id: str, slot: datetime, *, now: datetime | None = None) -> SlotRun:
        """Air one slot (idempotent). A slot later than the grace period is skipped."""
        spec = self.spec(programme_id)
        now = now or self.clock.now()
        if now - slot > spec.grace:
            log.warning("programme %s slot %s missed (grace %s)", programme_id, slot.isoformat(), spec.grace)
            return SlotRun(programme_id, slot, SlotOutcome.MISSED, detail=f"超过宽限 {spec.grace}，未补播")
        if spec.audio_digest and self.audio_exists is not None and not self.audio_exists(spec.audio_digest):
            log.error("programme %s: recording %s is not in the audio cache", programme_id, spec.audio_digest)
            return SlotRun(
                programme_id,
                slot,
                SlotOutcome.FAILED,
                None,
                "节目录音已不在音频缓存中，请重新上传录音并更新节目",
            )
        draft = programme_draft(spec, slot, now, sender_name=self.sender_name, sender_code=self.sender_code)
        try:
            bid = await self.submit(draft)
        except DuplicateSourceError as dup:
            return SlotRun(
                programme_id, slot, SlotOutcome.ALREADY, dup.broadcast_id, "此前已提交，未重复播发"
            )
        except Exception as exc:
            log.exception("programme %s slot %s could not be submitted", programme_id, slot.isoformat())
            return SlotRun(programme_id, slot, SlotOutcome.FAILED, None, f"{type(exc).__name__}: {exc}")
        log.info("programme %s slot %s submitted as broadcast %d", programme_id, slot.isoformat(), bid)
        return SlotRun(programme_id, slot, SlotOutcome.SUBMITTED, bid)

    async def run_due(self, programme_id: str, *, now: datetime | None = None) -> SlotRun:
        now = now or self.clock.now()
        slot = due_slot(self.spec(programme_id), now)
        if slot is None:
            return SlotRun(programme_id, None, SlotOutcome.MISSED, detail="当前没有到点的节目时段")
        return await self.run_slot(programme_id, slot, now=now)

    async def start(self) -> None:
        """Load the approved media programmes, open the job store, add or refresh the jobs, air a slot due
        now, then run."""
        _RUNNING.add(self.name, self)
        await self.load_approved()
        self.jobs.open()
        now = self.clock.now()
        live = [s for s in self.all_programmes() if not s.over(now)]
        self.jobs.prune({s.job_id for s in live})
        for spec in live:
            self._add_job(spec)
            # A slot that started while the controller was down (inside the grace) airs now.
            if due_slot(spec, self.clock.now()) is not None:
                await self.run_due(spec.programme_id)
        self.jobs.resume()

    async def close(self) -> None:
        self.jobs.close()
        _RUNNING.remove(self.name, self)
