"""Drill specs (系统演练定义): the drill kinds and outcomes, parsing ``[[drills]]`` config, the pure slot and
misfire decisions, building a slot's draft and the pre-renderer.

Owns `DrillKind`, `DrillOutcome`, `MisfireDecision`, `DrillConfigError`/`DrillConfigFault`,
`DrillStoreError`, `DrillSpec`, `drills_from_config`, `misfire_decision`, `slots_between`,
`slot_identifier`, `build_draft`, `next_slot`, `drill_prerenderer` and the constants `SHANGHAI`,
`DEFAULT_GRACE`, `DRILL_MSG_TYPE`. `broadcast.schedule` re-exports every public name here.

Pure: must never schedule jobs, touch the database, read the clock or air anything. The APScheduler job
function (`run_drill_job`), `DrillService` and the ``drill_runs`` table stay in `broadcast.schedule`, whose
job path ``broadcast.schedule:run_drill_job`` is persisted in the job store and must not move.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from broadcast.model import Content, MessageDraft, MsgType, Severity, SourceKind, SourceRef

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_GRACE = timedelta(hours=1)


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


class DrillConfigFault(StrEnum):
    MISSING_FIELD = "missing_field"
    BAD_VALUE = "bad_value"
    DUPLICATE = "duplicate"


class DrillConfigError(ValueError):
    def __init__(self, fault: DrillConfigFault, drill_id: str, field_name: str, detail: str) -> None:
        super().__init__(
            f"演练配置错误：演练 {drill_id!r} 字段 {field_name}：{detail}。请修正 [[drills]] 配置后重启。"
        )
        self.fault = fault
        self.drill_id = drill_id
        self.field = field_name


class DrillStoreError(RuntimeError):
    pass


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
        return f"drill:{self.drill_id}"

    def trigger(self) -> CronTrigger:
        return CronTrigger(
            month=self.month, day=self.day, hour=self.hour, minute=self.minute, timezone=SHANGHAI
        )


def _cfg_str(entry: Mapping[str, Any], key: str, drill_id: str, default: str | None = None) -> str:
    value = entry.get(key, default)
    if value is None:
        raise DrillConfigError(DrillConfigFault.MISSING_FIELD, drill_id, key, "缺少必填字段")
    if not isinstance(value, str) or not value.strip():
        raise DrillConfigError(DrillConfigFault.BAD_VALUE, drill_id, key, f"应为非空字符串，实际为 {value!r}")
    return value.strip()


def _cfg_int(entry: Mapping[str, Any], key: str, drill_id: str, default: int, lo: int, hi: int) -> int:
    value = entry.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise DrillConfigError(
            DrillConfigFault.BAD_VALUE, drill_id, key, f"应为 {lo} 到 {hi} 的整数，实际为 {value!r}"
        )
    return value


def drills_from_config(entries: Sequence[Mapping[str, Any]], default_area: str) -> list[DrillSpec]:
    """Parse ``[[drills]]`` tables. Keys: id, kind, areas, title, text, silent, day, hour, minute, month,
    duration_min, event_type, grace_min. Validates the cron fields by building the trigger."""
    specs: list[DrillSpec] = []
    seen: set[str] = set()
    for n, entry in enumerate(entries, start=1):
        drill_id = _cfg_str(entry, "id", f"#{n}")
        if drill_id in seen:
            raise DrillConfigError(DrillConfigFault.DUPLICATE, drill_id, "id", "演练编号重复")
        seen.add(drill_id)
        kind_text = _cfg_str(entry, "kind", drill_id, "terminal")
        try:
            kind = DrillKind(kind_text)
        except ValueError:
            allowed = "/".join(k.value for k in DrillKind)
            raise DrillConfigError(
                DrillConfigFault.BAD_VALUE, drill_id, "kind", f"取值应为 {allowed}"
            ) from None
        areas = entry.get("areas", [default_area])
        if not isinstance(areas, list) or not areas or not all(isinstance(a, str) and a for a in areas):
            raise DrillConfigError(DrillConfigFault.BAD_VALUE, drill_id, "areas", "应为区域代码字符串列表")
        silent = entry.get("silent", False)
        if not isinstance(silent, bool):
            raise DrillConfigError(DrillConfigFault.BAD_VALUE, drill_id, "silent", "应为 true 或 false")
        defaults = DrillSpec(drill_id, tuple(areas))
        spec = DrillSpec(
            drill_id=drill_id,
            area_codes=tuple(areas),
            kind=kind,
            title=_cfg_str(entry, "title", drill_id, defaults.title),
            text=_cfg_str(entry, "text", drill_id, defaults.text),
            silent=silent,
            day=_cfg_str(entry, "day", drill_id, defaults.day),
            hour=_cfg_int(entry, "hour", drill_id, defaults.hour, 0, 23),
            minute=_cfg_int(entry, "minute", drill_id, defaults.minute, 0, 59),
            month=_cfg_str(entry, "month", drill_id, defaults.month),
            duration=timedelta(minutes=_cfg_int(entry, "duration_min", drill_id, 10, 1, 24 * 60)),
            event_type=_cfg_str(entry, "event_type", drill_id, defaults.event_type),
            grace=timedelta(minutes=_cfg_int(entry, "grace_min", drill_id, 60, 0, 7 * 24 * 60)),
        )
        try:
            spec.trigger()
        except ValueError as exc:
            raise DrillConfigError(
                DrillConfigFault.BAD_VALUE, drill_id, "day/hour/minute/month", f"不是有效的定时规则（{exc}）"
            ) from None
        specs.append(spec)
    return specs


# -- pure decisions --------------------------------------------------------------------------------


def misfire_decision(slot: datetime, now: datetime, grace: timedelta) -> MisfireDecision:
    """Run a slot that is due and at most ``grace`` late; a later one is recorded as missed."""
    return MisfireDecision.RUN if now - slot <= grace else MisfireDecision.MISSED


def slots_between(trigger: CronTrigger, after: datetime, upto: datetime) -> list[datetime]:
    """Fire times t of the trigger with after < t <= upto, in UTC."""
    out: list[datetime] = []
    prev = after
    while True:
        nxt = trigger.get_next_fire_time(prev, prev)
        if nxt is None or nxt > upto:
            return out
        out.append(nxt.astimezone(UTC))
        prev = nxt


def slot_identifier(drill_id: str, slot: datetime) -> str:
    return f"{drill_id}@{slot.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def build_draft(
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
        source=SourceRef(
            SourceKind.SCHEDULE,
            f"drill:{spec.drill_id}",
            slot_identifier(spec.drill_id, slot),
            slot.astimezone(UTC).isoformat(),
        ),
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
