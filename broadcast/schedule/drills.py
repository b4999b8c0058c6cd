"""Drill specs (系统演练定义): the drill kinds and outcomes, parsing ``[[drills]]`` config, the pure misfire
decision, building a slot's draft and the pre-renderer.

Owns `DrillKind`, `DrillOutcome`, `MisfireDecision`, `DrillConfigError`, `DrillSpec`, `drills_from_config`,
`misfire_decision`, `drill_draft`, `next_slot`, `drill_prerenderer` and the constants `DEFAULT_GRACE` (a
drill may run up to an hour late), `JOB_PREFIX` and `DRILL_MSG_TYPE`. The slot arithmetic both schedules share is in
`broadcast.schedule.slots`, the field validators in `broadcast.schedule.config`.

Pure: must never schedule jobs, touch the database, read the clock or air anything. The APScheduler job
function (`run_drill_job`), `DrillService` and the ``drill_runs`` table are in
`broadcast.schedule.drill_service`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from apscheduler.triggers.cron import CronTrigger

from broadcast.model import Content, MessageDraft, MsgType, Severity
from broadcast.schedule.config import ConfigFault, areas_field, entries_by_id, int_field, text_field
from broadcast.schedule.slots import SHANGHAI, slot_source

DEFAULT_GRACE = timedelta(hours=1)
JOB_PREFIX = "drill:"  # job ids in the job store: drill:<drill id>


class DrillKind(StrEnum):
    PLATFORM = "platform"  # 平台演练
    FRONT_END = "front_end"  # 前端演练
    TERMINAL = "terminal"  # 终端演练


DRILL_MSG_TYPE = {
    DrillKind.PLATFORM: MsgType.PLATFORM_DRILL,
    DrillKind.FRONT_END: MsgType.FRONT_END_DRILL,
    DrillKind.TERMINAL: MsgType.TERMINAL_DRILL,
}


class DrillOutcome(StrEnum):
    STARTED = "started"  # reserved, submit in progress (a crash here is retried on restart)
    SUBMITTED = "submitted"
    MISSED = "missed"
    FAILED = "failed"


class MisfireDecision(StrEnum):
    RUN = "run"
    MISSED = "missed"


class DrillConfigError(ValueError):
    def __init__(self, fault: ConfigFault, drill_id: str, field_name: str, detail: str) -> None:
        super().__init__(
            f"演练配置错误：演练 {drill_id!r} 字段 {field_name}：{detail}。请修正 [[drills]] 配置后重启。"
        )
        self.fault = fault
        self.drill_id = drill_id
        self.field = field_name


@dataclass(frozen=True)
class DrillSpec:
    """One configured drill. ``day``/``hour``/``minute``/``month`` are APScheduler cron fields."""

    drill_id: str
    area_codes: tuple[str, ...]
    kind: DrillKind = DrillKind.TERMINAL
    title: str = "应急广播系统月度演练"
    text: str = "现在进行应急广播系统演练，这是演练信息，请勿惊慌。"
    silent: bool = False
    day: str = "1st wed"
    hour: int = 10
    minute: int = 0
    month: str = "*"
    duration: timedelta = timedelta(minutes=10)
    event_type: str = "00000"
    severity: Severity = Severity.BLUE
    grace: timedelta = DEFAULT_GRACE

    @property
    def msg_type(self) -> MsgType:
        return DRILL_MSG_TYPE[self.kind]

    @property
    def job_id(self) -> str:
        return f"{JOB_PREFIX}{self.drill_id}"

    def trigger(self) -> CronTrigger:
        return CronTrigger(
            month=self.month, day=self.day, hour=self.hour, minute=self.minute, timezone=SHANGHAI
        )


def drills_from_config(entries: Sequence[Mapping[str, Any]], default_area: str) -> list[DrillSpec]:
    """Parse ``[[drills]]`` tables. Keys: id, kind, areas, title, text, silent, day, hour, minute, month,
    duration_min, event_type, grace_min. Validates the cron fields by building the trigger."""
    return entries_by_id(
        entries, DrillConfigError, "演练编号重复", lambda entry, drill_id: _drill(entry, drill_id, default_area)
    )


def _drill(entry: Mapping[str, Any], drill_id: str, default_area: str) -> DrillSpec:
    def text(key: str, default: str) -> str:
        return text_field(entry, key, drill_id, DrillConfigError, default)

    def number(key: str, default: int, lo: int, hi: int) -> int:
        return int_field(entry, key, drill_id, DrillConfigError, default, lo, hi)

    try:
        kind = DrillKind(text("kind", "terminal"))
    except ValueError:
        allowed = "/".join(k.value for k in DrillKind)
        raise DrillConfigError(ConfigFault.BAD_VALUE, drill_id, "kind", f"取值应为 {allowed}") from None
    areas = areas_field(entry, drill_id, DrillConfigError, default_area)
    silent = entry.get("silent", False)
    if not isinstance(silent, bool):
        raise DrillConfigError(ConfigFault.BAD_VALUE, drill_id, "silent", "应为 true 或 false")
    defaults = DrillSpec(drill_id, areas)
    spec = DrillSpec(
        drill_id=drill_id,
        area_codes=areas,
        kind=kind,
        title=text("title", defaults.title),
        text=text("text", defaults.text),
        silent=silent,
        day=text("day", defaults.day),
        hour=number("hour", defaults.hour, 0, 23),
        minute=number("minute", defaults.minute, 0, 59),
        month=text("month", defaults.month),
        duration=timedelta(minutes=number("duration_min", 10, 1, 24 * 60)),
        event_type=text("event_type", defaults.event_type),
        grace=timedelta(minutes=number("grace_min", 60, 0, 7 * 24 * 60)),
    )
    try:
        spec.trigger()
    except ValueError as exc:
        raise DrillConfigError(
            ConfigFault.BAD_VALUE, drill_id, "day/hour/minute/month", f"不是有效的定时规则（{exc}）"
        ) from None
    return spec


# -- pure decisions --------------------------------------------------------------------------------


def misfire_decision(slot: datetime, now: datetime, grace: timedelta) -> MisfireDecision:
    """Run a slot that is due and at most ``grace`` late; a later one is recorded as missed."""
    return MisfireDecision.RUN if now - slot <= grace else MisfireDecision.MISSED


def drill_draft(
    spec: DrillSpec, slot: datetime, now: datetime, *, sender_name: str, sender_code: str
) -> MessageDraft:
    """The drill message for one slot; it airs from ``now`` (a late run still gets its full duration)."""
    return MessageDraft(
        msg_type=spec.msg_type,
        event_type=spec.event_type,
        severity=spec.severity,
        sender_name=sender_name,
        sender_code=sender_code,
        sent_at=now,
        start_at=now,
        end_at=now + spec.duration,
        area_codes=spec.area_codes,
        contents=(Content("zho", spec.title, spec.text),),
        source=slot_source("drill", spec.drill_id, slot),
        volume=0 if spec.silent else None,
    )


def next_slot(spec: DrillSpec, now: datetime) -> datetime | None:
    """The first slot strictly after ``now`` (UTC), or None when the schedule has no further slot."""
    nxt = spec.trigger().get_next_fire_time(None, now + timedelta(microseconds=1))
    return None if nxt is None else nxt.astimezone(UTC)


# -- pre-rendering -----------------------------------------------------------------------------------

DrillScript = Callable[[MessageDraft], tuple[str, str]]
"""What the pipeline says for a draft: ``(title, text)`` (the controller's template script)."""

Prerender = Callable[[MessageDraft], Awaitable[None]]


class _Renders(Protocol):
    async def render(self, title: str, text: str, *, repeats: int = 1, layout: Any = ...) -> object: ...


def drill_prerenderer(
    script: DrillScript,
    renderer: _Renders,
    *,
    repeats_for: Callable[[Severity], int] = lambda _sev: 1,
    layout: str = "speech",
) -> Prerender:
    """Render a drill draft's speech exactly as the pipeline will (same script, repeats and layout:
    ``"speech"`` for tone-first live playout, ``"full"`` without it), so the slot's render is a cache hit."""

    async def prerender(draft: MessageDraft) -> None:
        title, text = script(draft)
        await renderer.render(title, text, repeats=repeats_for(draft.severity), layout=layout)

    return prerender
