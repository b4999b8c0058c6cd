"""Daily programme schedule: config parsing, the draft (DAILY priority, idempotent source), due slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broadcast.clock import ManualClock
from broadcast.model import MessageDraft, Priority, SourceKind
from broadcast.schedule.config import ConfigFault
from broadcast.schedule.programme_specs import (
    ProgrammeConfigError,
    SlotOutcome,
    due_slot,
    programme_draft,
    programmes_from_config,
)
from broadcast.schedule.programmes import ProgrammeService
from broadcast.store.broadcasts import DuplicateSourceError

AREA = "530181008000"
CFG = [
    {
        "id": "morning",
        "areas": [AREA],
        "title": "早间广播",
        "days": "mon-fri",
        "hour": 7,
        "minute": 30,
        "duration_min": 20,
        "items": [{"text": "早上好。"}, {"text": "今天天气晴。"}],
    }
]
# Wednesday 2026-07-01 07:30 Beijing = 23:30 UTC the day before
SLOT = datetime(2026, 6, 30, 23, 30, tzinfo=UTC)


def test_config_parsed() -> None:
    (spec,) = programmes_from_config(CFG, "530181000000")
    assert spec.programme_id == "morning" and spec.area_codes == (AREA,)
    assert spec.texts == ("早上好。", "今天天气晴。") and spec.duration == timedelta(minutes=20)


@pytest.mark.parametrize(
    ("patch", "fault", "field"),
    [
        ({"items": []}, ConfigFault.MISSING_FIELD, "items"),
        ({"hour": 24}, ConfigFault.BAD_VALUE, "hour"),
        ({"days": "someday"}, ConfigFault.BAD_VALUE, "days/hour/minute"),
        (
            {"items": [{"audio": "ab" * 32}, {"text": "再见"}]},
            ConfigFault.UNSUPPORTED,
            "items[1].audio",
        ),
        ({"items": [{"audio": "not-a-digest"}]}, ConfigFault.BAD_VALUE, "items[1].audio"),
    ],
)
def test_config_errors_name_the_field(
    patch: dict[str, object], fault: ConfigFault, field: str
) -> None:
    with pytest.raises(ProgrammeConfigError) as err:
        programmes_from_config([{**CFG[0], **patch}], AREA)
    assert err.value.fault is fault and err.value.field == field and err.value.programme_id == "morning"
    assert "[[programmes]]" in str(err.value)


def test_duplicate_ids_refused() -> None:
    with pytest.raises(ProgrammeConfigError) as err:
        programmes_from_config([CFG[0], CFG[0]], AREA)
    assert err.value.fault is ConfigFault.DUPLICATE


def test_draft_is_daily_priority_and_idempotent_per_slot() -> None:
    (spec,) = programmes_from_config(CFG, AREA)
    draft = programme_draft(spec, SLOT, SLOT + timedelta(seconds=5), sender_name="安宁", sender_code="5301810")
    assert draft.priority is Priority.DAILY and draft.source.kind is SourceKind.SCHEDULE
    assert draft.source.identifier == "morning@2026-06-30T23:30:00Z"
    assert draft.end_at == SLOT + timedelta(minutes=20)
    assert draft.primary.text == "早上好。今天天气晴。"


def test_due_slot_respects_weekdays_and_grace() -> None:
    (spec,) = programmes_from_config(CFG, AREA)
    assert due_slot(spec, SLOT + timedelta(minutes=3)) == SLOT
    assert due_slot(spec, SLOT + timedelta(minutes=11)) is None  # beyond the 10-minute grace
    saturday = SLOT + timedelta(days=3)
    assert due_slot(spec, saturday + timedelta(minutes=1)) is None


async def test_service_runs_a_slot_once() -> None:
    (spec,) = programmes_from_config(CFG, AREA)
    clock = ManualClock(SLOT + timedelta(minutes=1))
    seen: dict[str, int] = {}

    async def submit(draft: MessageDraft) -> int:
        key = draft.source.key
        if key in seen:
            raise DuplicateSourceError(key, seen[key], "e" * 35)
        seen[key] = len(seen) + 1
        return seen[key]

    svc = ProgrammeService(clock, submit, [spec], "安宁", "5301810", "sqlite://")
    first = await svc.run_due("morning")
    second = await svc.run_due("morning")
    assert (first.outcome, first.broadcast_id) == (SlotOutcome.SUBMITTED, 1)
    assert (second.outcome, second.broadcast_id) == (SlotOutcome.ALREADY, 1)
    clock.advance(30 * 60)
    assert (await svc.run_slot("morning", SLOT)).outcome is SlotOutcome.MISSED


async def test_scheduler_persists_jobs(tmp_path: Path) -> None:
    (spec,) = programmes_from_config(CFG, AREA)
    clock = ManualClock(SLOT + timedelta(hours=2))  # nothing due: start must not submit

    async def submit(draft: MessageDraft) -> int:
        raise AssertionError("nothing is due")

    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    svc = ProgrammeService(clock, submit, [spec], "安宁", "5301810", url)
    await svc.start()
    try:
        assert svc.scheduler is not None
        job = svc.scheduler.get_job("programme:morning")
        assert job is not None and job.kwargs == {"service": "default", "programme_id": "morning"}
    finally:
        await svc.close()
    again = ProgrammeService(clock, submit, [], "安宁", "5301810", url)
    await again.start()  # no longer configured: its persisted job is removed
    try:
        assert again.scheduler is not None and again.scheduler.get_jobs() == []
    finally:
        await again.close()


def test_audio_item_airs_the_recording_by_digest() -> None:
    digest = "AB" * 32
    (spec,) = programmes_from_config([{**CFG[0], "items": [{"audio": digest, "text": "农技讲座录音"}]}], AREA)
    assert spec.audio_digest == digest.lower()
    draft = programme_draft(spec, SLOT, SLOT, sender_name="安宁", sender_code="5301810")
    assert draft.audio_digest == digest.lower() and draft.source.kind is SourceKind.SCHEDULE
    assert draft.primary.text == "农技讲座录音"  # the written description; the recording is what plays
    (plain,) = programmes_from_config(CFG, AREA)
    assert programme_draft(plain, SLOT, SLOT, sender_name="安宁", sender_code="5301810").audio_digest is None
