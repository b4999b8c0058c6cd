"""Daily programme specs (日常广播节目定义): parsing ``[[programmes]]`` config, media-centre submissions into
specs, slot arithmetic and building a slot's draft.

Owns `ProgrammeSpec`, `programmes_from_config`, `spec_from_submission`, `due_slot`, `programme_draft`,
the config/schedule error types (`ProgrammeConfigError`, `ScheduleError`/`ScheduleFault`), `SlotOutcome`
and the programme constants (`DEFAULT_GRACE`: a programme more than 10 minutes late is not aired). The
slot arithmetic both schedules share is in `broadcast.schedule.slots`, the field validators in
`broadcast.schedule.config`.

Pure: must never schedule jobs, touch the database, read the clock or air anything (the `ProgrammeService`,
its ``media_programmes`` table and the APScheduler job function live in `broadcast.schedule.programmes`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from broadcast.model import Content, MessageDraft, MsgType, Severity
from broadcast.schedule.config import ConfigFault, areas_field, entries_by_id, int_field, text_field
from broadcast.schedule.slots import SHANGHAI, slot_source, slots_between

if TYPE_CHECKING:
    from broadcast.interconnect.media import Submission


JOB_PREFIX = "programme:"
DEFAULT_GRACE = timedelta(minutes=10)
EVENT_TYPE = "00000"  # EBM has no daily-programme event type; drills use the same placeholder
MEDIA_PREFIX = "media:"  # programme id of an approved media-centre submission: media:<submission_id>
DEFAULT_DURATION = timedelta(minutes=30)
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class ProgrammeConfigError(ValueError):
    def __init__(self, fault: ConfigFault, programme_id: str, field_name: str, detail: str) -> None:
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
        return CronTrigger(
            day_of_week=self.day_of_week, hour=self.hour, minute=self.minute, timezone=SHANGHAI
        )

    def over(self, now: datetime) -> bool:
        """A one-off programme whose slot (and grace) has passed: it will never air again."""
        return self.once_at is not None and now - self.once_at > self.grace


def _audio_item(item: Mapping[str, Any], pid: str, k: int, count: int) -> str:
    """The digest of an ``audio`` item (the only item of its programme)."""
    value = item["audio"]
    if not isinstance(value, str) or not _DIGEST.match(value.strip().lower()):
        raise ProgrammeConfigError(
            ConfigFault.BAD_VALUE,
            pid,
            f"items[{k}].audio",
            "应为上传录音（POST /api/audio）返回的 64 位十六进制 digest",
        )
    if count != 1:
        raise ProgrammeConfigError(
            ConfigFault.UNSUPPORTED,
            pid,
            f"items[{k}].audio",
            "含录音的节目只能有这一个条目（录音按原样播放，不与文字混排）；请把其他条目拆成单独的节目",
        )
    return value.strip().lower()


def programmes_from_config(entries: Sequence[Mapping[str, Any]], default_area: str) -> list[ProgrammeSpec]:
    """Parse ``[[programmes]]``. Keys: id, areas, title, days, hour, minute, duration_min, grace_min,
    items (a list of tables with ``text``). Validates the schedule by building its trigger."""
    return entries_by_id(
        entries, ProgrammeConfigError, "节目编号重复", lambda entry, pid: _programme(entry, pid, default_area)
    )


def _programme(entry: Mapping[str, Any], pid: str, default_area: str) -> ProgrammeSpec:
    def text(source: Mapping[str, Any], key: str, default: str | None = None) -> str:
        return text_field(source, key, pid, ProgrammeConfigError, default)

    def number(key: str, default: int, lo: int, hi: int) -> int:
        return int_field(entry, key, pid, ProgrammeConfigError, default, lo, hi)

    areas = areas_field(entry, pid, ProgrammeConfigError, default_area)
    items = entry.get("items")
    if not isinstance(items, list) or not items or not all(isinstance(i, Mapping) for i in items):
        raise ProgrammeConfigError(
            ConfigFault.MISSING_FIELD, pid, "items", "至少需要一个 [[programmes.items]]"
        )
    texts: list[str] = []
    digest: str | None = None
    for k, item in enumerate(items, start=1):
        if "audio" in item:
            digest = _audio_item(item, pid, k, len(items))
            if "text" in item:
                texts.append(text(item, "text"))
            continue
        texts.append(text(item, "text"))
    spec = ProgrammeSpec(
        programme_id=pid,
        area_codes=areas,
        title=text(entry, "title", "日常广播"),
        texts=tuple(texts),
        day_of_week=text(entry, "days", "*"),
        hour=number("hour", 7, 0, 23),
        minute=number("minute", 0, 0, 59),
        duration=timedelta(minutes=number("duration_min", 30, 1, 24 * 60)),
        grace=timedelta(minutes=number("grace_min", 10, 0, 24 * 60)),
        audio_digest=digest,
    )
    try:
        spec.trigger()
    except ValueError as exc:
        raise ProgrammeConfigError(
            ConfigFault.BAD_VALUE, pid, "days/hour/minute", f"不是有效的定时规则（{exc}）"
        ) from None
    return spec


# -- pure ------------------------------------------------------------------------------------------


def due_slot(spec: ProgrammeSpec, now: datetime) -> datetime | None:
    """The latest slot at or before ``now`` that is still within the grace period, if any."""
    if spec.once_at is not None:
        slot = spec.once_at.astimezone(UTC)
        return slot if slot <= now and now - slot <= spec.grace else None
    slots = slots_between(spec.trigger(), now - spec.grace - timedelta(seconds=1), now)
    return slots[-1] if slots else None


def programme_draft(
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
        source=slot_source("programme", spec.programme_id, slot),
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
