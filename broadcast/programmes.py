"""Daily programmes (日常广播): a weekly schedule per area, aired through the pipeline at DAILY priority.

Definitions:

- A **programme** is configured once in TOML ``[[programmes]]`` (``ProgrammeSpec``): id, target areas,
  days of the week (APScheduler ``day_of_week``: ``"mon-fri"``, ``"sat,sun"``, ``"*"``), start time
  (Beijing), duration, a title and items (``[[programmes.items]]`` with ``text`` to speak; the spoken
  texts are joined in order).
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

Owns the programme schedule and building programme drafts. Never airs anything itself (it calls the
submit callback), never talks to terminals, never sleeps.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from broadcast.clock import Clock
from broadcast.model import Content, MessageDraft, MsgType, Severity, SourceKind, SourceRef
from broadcast.schedule import SHANGHAI, slots_between
from broadcast.store.broadcasts import DuplicateSourceError

log = logging.getLogger(__name__)

JOB_FUNC = "broadcast.programmes:run_programme_job"
JOB_PREFIX = "programme:"
DEFAULT_GRACE = timedelta(minutes=10)
EVENT_TYPE = "00000"  # EBM has no daily-programme event type; drills use the same placeholder


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


@dataclass(frozen=True)
class ProgrammeSpec:
    programme_id: str
    area_codes: tuple[str, ...]
    title: str
    texts: tuple[str, ...]
    day_of_week: str = "*"
    hour: int = 7
    minute: int = 0
    duration: timedelta = timedelta(minutes=30)
    grace: timedelta = DEFAULT_GRACE

    @property
    def job_id(self) -> str:
        return f"{JOB_PREFIX}{self.programme_id}"

    def trigger(self) -> CronTrigger:
        return CronTrigger(day_of_week=self.day_of_week, hour=self.hour, minute=self.minute, timezone=SHANGHAI)


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
        for k, item in enumerate(items, start=1):
            if "audio" in item:
                raise ProgrammeConfigError(
                    ProgrammeConfigFault.UNSUPPORTED,
                    pid,
                    f"items[{k}].audio",
                    "暂不支持按音频摘要播放节目文件，请改用 text（文字转语音）",
                )
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
        contents=(Content("zho", spec.title, "".join(spec.texts)),),
        source=SourceRef(
            SourceKind.SCHEDULE,
            f"programme:{spec.programme_id}",
            slot_identifier(spec.programme_id, slot),
            slot.isoformat(),
        ),
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
    scheduler: AsyncIOScheduler | None = field(default=None, init=False)

    def spec(self, programme_id: str) -> ProgrammeSpec:
        for s in self.programmes:
            if s.programme_id == programme_id:
                return s
        raise KeyError(programme_id)

    async def run_slot(self, programme_id: str, slot: datetime, *, now: datetime | None = None) -> SlotRun:
        """Air one slot (idempotent). A slot later than the grace period is skipped."""
        spec = self.spec(programme_id)
        now = now or self.clock.now()
        if now - slot > spec.grace:
            log.warning("programme %s slot %s missed (grace %s)", programme_id, slot.isoformat(), spec.grace)
            return SlotRun(programme_id, slot, SlotOutcome.MISSED, detail=f"超过宽限 {spec.grace}，未补播")
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
        """Open the job store, add or refresh the programmes' jobs, air a slot due now, then run."""
        _SERVICES[self.name] = self
        sched = self.make_scheduler()
        sched.start(paused=True)
        self.scheduler = sched
        wanted = {s.job_id for s in self.programmes}
        for job in sched.get_jobs():
            if job.id.startswith(JOB_PREFIX) and job.id not in wanted:
                log.info("programme job %s is no longer configured; removing it", job.id)
                job.remove()
        for spec in self.programmes:
            sched.add_job(
                JOB_FUNC,
                spec.trigger(),
                id=spec.job_id,
                name=f"日常广播 {spec.programme_id}",
                replace_existing=True,
                misfire_grace_time=int(spec.grace.total_seconds()) or 1,
                kwargs={"service": self.name, "programme_id": spec.programme_id},
            )
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
