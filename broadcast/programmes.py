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
SQLAlchemy job store shared with the drills, see ``broadcast.schedule.jobstore_url``). The job works out
its slot itself from the trigger, so the outcome does not depend on APScheduler's bookkeeping.

Owns the programme schedule, the ``media_programmes`` table and building programme drafts. Never airs
anything itself (it calls the submit callback), never decides a submission (operators do, in media.py),
never fetches audio, never talks to terminals, never sleeps.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import Column, Integer, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.model import Content, MessageDraft, MsgType, Severity, SourceKind, SourceRef
from broadcast.schedule import SHANGHAI, slots_between
from broadcast.store.broadcasts import DuplicateSourceError
from broadcast.store.tables import UtcDateTime, metadata

if TYPE_CHECKING:
    from broadcast.interconnect.media import Submission

log = logging.getLogger(__name__)

JOB_FUNC = "broadcast.programmes:run_programme_job"
JOB_PREFIX = "programme:"
DEFAULT_GRACE = timedelta(minutes=10)
EVENT_TYPE = "00000"  # EBM has no daily-programme event type; drills use the same placeholder
MEDIA_PREFIX = "media:"  # programme id of an approved media-centre submission: media:<submission_id>
DEFAULT_DURATION = timedelta(minutes=30)
_DIGEST = re.compile(r"^[0-9a-f]{64}$")

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


class ProgrammeConfigFault(StrEnum):
    MISSING_FIELD = "missing_field"
    BAD_VALUE = "bad_value"
    DUPLICATE = "duplicate"
    UNSUPPORTED = "unsupported"


class ProgrammeConfigError(ValueError):
    def __init__(self, fault: ProgrammeConfigFault, programme_id: str, field_name: str, detail: str) -> None:
        super().__init__(
            f"日常广播配置错误：节目 {programme_id!r} 字段 {field_name}：{detail}。"
            "请修正 [[programmes]] 配置后重启。"
        )
        self.fault = fault
        self.programme_id = programme_id
        self.field = field_name


class SlotOutcome(StrEnum):
    SUBMITTED = "submitted"
    ALREADY = "already"  # submitted before (restart or double fire): not aired twice
    MISSED = "missed"  # later than the grace period
    FAILED = "failed"


class ScheduleFault(StrEnum):
    TOO_LATE = "too_late"  # the requested slot is over (beyond its grace)
    NO_AREA = "no_area"
    NOT_RUNNING = "not_running"  # the service has no database (built without an engine)


class ScheduleError(ValueError):
    """A media-centre programme that cannot be scheduled; ``message`` tells the operator what to do."""

    def __init__(self, fault: ScheduleFault, submission_id: str, message: str) -> None:
        super().__init__(f"{submission_id}: {message}")
        self.fault = fault
        self.submission_id = submission_id
        self.message = message


@dataclass(frozen=True)
class ProgrammeSpec:
    programme_id: str
    area_codes: tuple[str, ...]
    title: str
    texts: tuple[str, ...]
    day_of_week: str = "*"
    hour: int = 7
    minute: int = 0
    duration: timedelta = DEFAULT_DURATION
    grace: timedelta = DEFAULT_GRACE
    # A recording in the audio cache, played as supplied instead of speaking ``texts``.
    audio_digest: str | None = None
    # A one-off programme (an approved media-centre submission) airs once at this moment, not weekly.
    once_at: datetime | None = None
    approved_by: str = ""

    @property
    def job_id(self) -> str:
        return f"{JOB_PREFIX}{self.programme_id}"

    def trigger(self) -> BaseTrigger:
        if self.once_at is not None:
            return DateTrigger(run_date=self.once_at, timezone=SHANGHAI)
        return CronTrigger(day_of_week=self.day_of_week, hour=self.hour, minute=self.minute, timezone=SHANGHAI)

    def over(self, now: datetime) -> bool:
        """A one-off programme whose slot (and grace) has passed: it will never air again."""
        return self.once_at is not None and now - self.once_at > self.grace


def _text(entry: Mapping[str, Any], key: str, pid: str, default: str | None = None) -> str:
    value = entry.get(key, default)
    if value is None:
        raise ProgrammeConfigError(ProgrammeConfigFault.MISSING_FIELD, pid, key, "缺少必填字段")
    if not isinstance(value, str) or not value.strip():
        raise ProgrammeConfigError(ProgrammeConfigFault.BAD_VALUE, pid, key, f"应为非空字符串，实际为 {value!r}")
    return value.strip()


def _int(entry: Mapping[str, Any], key: str, pid: str, default: int, lo: int, hi: int) -> int:
    value = entry.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ProgrammeConfigError(
            ProgrammeConfigFault.BAD_VALUE, pid, key, f"应为 {lo} 到 {hi} 的整数，实际为 {value!r}"
        )
    return value


def _audio_item(item: Mapping[str, Any], pid: str, k: int, count: int) -> str:
    """The digest of an ``audio`` item (the only item of its programme)."""
    value = item["audio"]
    if not isinstance(value, str) or not _DIGEST.match(value.strip().lower()):
        raise ProgrammeConfigError(
            ProgrammeConfigFault.BAD_VALUE,
            pid,
            f"items[{k}].audio",
            "应为上传录音（POST /api/audio）返回的 64 位十六进制 digest",
        )
    if count != 1:
        raise ProgrammeConfigError(
            ProgrammeConfigFault.UNSUPPORTED,
            pid,
            f"items[{k}].audio",
            "含录音的节目只能有这一个条目（录音按原样播放，不与文字混排）；请把其他条目拆成单独的节目",
        )
    return value.strip().lower()


def programmes_from_config(entries: Sequence[Mapping[str, Any]], default_area: str) -> list[ProgrammeSpec]:
    """Parse ``[[programmes]]``. Keys: id, areas, title, days, hour, minute, duration_min, grace_min,
    items (a list of tables with ``text``). Validates the schedule by building its trigger."""
    specs: list[ProgrammeSpec] = []
    seen: set[str] = set()
    for n, entry in enumerate(entries, start=1):
        pid = _text(entry, "id", f"#{n}")
        if pid in seen:
            raise ProgrammeConfigError(ProgrammeConfigFault.DUPLICATE, pid, "id", "节目编号重复")
        seen.add(pid)
        areas = entry.get("areas", [default_area])
        if not isinstance(areas, list) or not areas or not all(isinstance(a, str) and a for a in areas):
            raise ProgrammeConfigError(ProgrammeConfigFault.BAD_VALUE, pid, "areas", "应为区域代码字符串列表")
        items = entry.get("items")
        if not isinstance(items, list) or not items or not all(isinstance(i, Mapping) for i in items):
            raise ProgrammeConfigError(
                ProgrammeConfigFault.MISSING_FIELD, pid, "items", "至少需要一个 [[programmes.items]]"
            )
        texts: list[str] = []
        digest: str | None = None
        for k, item in enumerate(items, start=1):
            if "audio" in item:
                digest = _audio_item(item, pid, k, len(items))
                if "text" in item:
                    texts.append(_text(item, "text", pid))
                continue
            texts.append(_text(item, "text", pid))
        spec = ProgrammeSpec(
            programme_id=pid,
            area_codes=tuple(areas),
            title=_text(entry, "title", pid, "日常广播"),
            texts=tuple(texts),
            day_of_week=_text(entry, "days", pid, "*"),
            hour=_int(entry, "hour", pid, 7, 0, 23),
            minute=_int(entry, "minute", pid, 0, 0, 59),
            duration=timedelta(minutes=_int(entry, "duration_min", pid, 30, 1, 24 * 60)),
            grace=timedelta(minutes=_int(entry, "grace_min", pid, 10, 0, 24 * 60)),
            audio_digest=digest,
        )
        try:
            spec.trigger()
        except ValueError as exc:
            raise ProgrammeConfigError(
                ProgrammeConfigFault.BAD_VALUE, pid, "days/hour/minute", f"不是有效的定时规则（{exc}）"
            ) from None
        specs.append(spec)
    return specs


# -- pure ------------------------------------------------------------------------------------------


def slot_identifier(programme_id: str, slot: datetime) -> str:
    return f"{programme_id}@{slot.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def due_slot(spec: ProgrammeSpec, now: datetime) -> datetime | None:
    """The latest slot at or before ``now`` that is still within the grace period, if any."""
    if spec.once_at is not None:
        slot = spec.once_at.astimezone(UTC)
        return slot if slot <= now and now - slot <= spec.grace else None
    slots = slots_between(spec.trigger(), now - spec.grace - timedelta(seconds=1), now)
    return slots[-1] if slots else None


def build_draft(
    spec: ProgrammeSpec, slot: datetime, now: datetime, *, sender_name: str, sender_code: str
) -> MessageDraft:
    """The programme for one slot. SourceKind.SCHEDULE + MsgType.ACTUAL ⇒ ``draft.priority`` is DAILY.
    It ends at slot + duration (a late start is not stretched: the next programme may follow)."""
    slot = slot.astimezone(UTC)
    start = max(slot, now)
    return MessageDraft(
        msg_type=MsgType.ACTUAL,
        event_type=EVENT_TYPE,
        severity=Severity.UNKNOWN,
        sender_name=sender_name,
        sender_code=sender_code,
        sent_at=now,
        start_at=start,
        end_at=max(slot + spec.duration, start + timedelta(minutes=1)),
        area_codes=spec.area_codes,
        contents=(Content("zho", spec.title, "".join(spec.texts) or spec.title),),
        source=SourceRef(
            SourceKind.SCHEDULE,
            f"programme:{spec.programme_id}",
            slot_identifier(spec.programme_id, slot),
            slot.isoformat(),
        ),
        audio_digest=spec.audio_digest,
    )


def spec_from_submission(
    sub: Submission, *, audio_digest: str | None, default_areas: Sequence[str], approved_by: str = ""
) -> ProgrammeSpec:
    """The one-off programme of an approved media-centre submission (areas default to the county's)."""
    areas = sub.area_codes or tuple(default_areas)
    if not areas:
        raise ScheduleError(ScheduleFault.NO_AREA, sub.submission_id, "节目未指定播出区域，请补充 area_codes")
    start = sub.start_at.astimezone(UTC)
    end = sub.end_at.astimezone(UTC) if sub.end_at is not None else start + DEFAULT_DURATION
    return ProgrammeSpec(
        programme_id=f"{MEDIA_PREFIX}{sub.submission_id}",
        area_codes=tuple(areas),
        title=sub.title,
        texts=(sub.text,) if sub.text else (),
        duration=end - start,
        audio_digest=audio_digest,
        once_at=start,
        approved_by=approved_by,
    )


def _spec_from_row(row: Any) -> ProgrammeSpec:
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

ProgrammeSubmitter = Callable[[MessageDraft], Awaitable[int]]
"""Submit a programme draft; returns the broadcast id. Raises DuplicateSourceError for a slot aired before."""


class _Submits(Protocol):
    async def submit(
        self, draft: MessageDraft, *, actor: str = "", received_at: datetime | None = None
    ) -> Any: ...


def pipeline_submitter(pipeline: _Submits) -> ProgrammeSubmitter:
    """Adapt ``Pipeline.submit`` (returns Submitted): routine, so no policy desk in between."""

    async def submit(draft: MessageDraft) -> int:
        result = await pipeline.submit(draft, actor=draft.source.sender)
        return int(result.broadcast_id)

    return submit


@dataclass(frozen=True)
class SlotRun:
    programme_id: str
    slot: datetime | None
    outcome: SlotOutcome
    broadcast_id: int | None = None
    detail: str = ""


_SERVICES: dict[str, ProgrammeService] = {}


async def run_programme_job(service: str, programme_id: str) -> None:
    """The APScheduler job. Module-level so that it can be pickled into the job store."""
    svc = _SERVICES.get(service)
    if svc is None:
        log.error("programme %s fired but programme service %r is not running", programme_id, service)
        return
    await svc.run_due(programme_id)


@dataclass
class ProgrammeService:
    clock: Clock
    submit: ProgrammeSubmitter
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
    scheduler: AsyncIOScheduler | None = field(default=None, init=False)
    approved: list[ProgrammeSpec] = field(default_factory=list, init=False)

    def all_programmes(self) -> list[ProgrammeSpec]:
        return [*self.programmes, *self.approved]

    def spec(self, programme_id: str) -> ProgrammeSpec:
        for s in self.all_programmes():
            if s.programme_id == programme_id:
                return s
        raise KeyError(programme_id)

    # -- media-centre programmes ----------------------------------------------------------------------
    async def ensure_tables(self) -> None:
        if self.engine is not None:
            async with self.engine.begin() as conn:
                await conn.run_sync(lambda c: metadata.create_all(c, tables=[media_programmes]))

    async def load_approved(self) -> list[ProgrammeSpec]:
        """The approved media-centre programmes from the database (replaces the in-memory list)."""
        if self.engine is None:
            return []
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(media_programmes).order_by(media_programmes.c.start_at))
            self.approved = [_spec_from_row(r) for r in rows]
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
        assert self.scheduler is not None
        self.scheduler.add_job(
            JOB_FUNC,
            spec.trigger(),
            id=spec.job_id,
            name=f"日常广播 {spec.programme_id}",
            replace_existing=True,
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
                programme_id, slot, SlotOutcome.FAILED, None, "节目录音已不在音频缓存中，请重新上传录音并更新节目"
            )
        draft = build_draft(spec, slot, now, sender_name=self.sender_name, sender_code=self.sender_code)
        try:
            bid = await self.submit(draft)
        except DuplicateSourceError as dup:
            return SlotRun(programme_id, slot, SlotOutcome.ALREADY, dup.broadcast_id, "此前已提交，未重复播发")
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

    def make_scheduler(self) -> AsyncIOScheduler:
        return AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=self.jobstore_url, tablename="programme_jobs")},
            timezone=SHANGHAI,
            job_defaults={"coalesce": True, "max_instances": 1},
        )

    async def start(self) -> None:
        """Load the approved media programmes, open the job store, add or refresh the jobs, air a slot due
        now, then run."""
        _SERVICES[self.name] = self
        await self.ensure_tables()
        await self.load_approved()
        sched = self.make_scheduler()
        sched.start(paused=True)
        self.scheduler = sched
        now = self.clock.now()
        live = [s for s in self.all_programmes() if not s.over(now)]
        wanted = {s.job_id for s in live}
        for job in sched.get_jobs():
            if job.id.startswith(JOB_PREFIX) and job.id not in wanted:
                log.info("programme job %s is no longer configured; removing it", job.id)
                job.remove()
        for spec in live:
            self._add_job(spec)
            # A slot that started while the controller was down (inside the grace) airs now.
            if due_slot(spec, self.clock.now()) is not None:
                await self.run_due(spec.programme_id)
        sched.resume()

    async def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if _SERVICES.get(self.name) is self:
            del _SERVICES[self.name]
