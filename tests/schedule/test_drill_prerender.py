"""Silent drills carry volume 0 in their draft; drill speech is pre-rendered ahead of the slot so that the
slot's own render (the live playout path the pipeline uses) is a cache hit: no second synthesis."""

from __future__ import annotations

import array
import asyncio
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.app.schema import feature_tables
from broadcast.audio.cache import AudioCache
from broadcast.audio.engines import Speech, SpeechFormat
from broadcast.audio.playout import LiveProgrammes
from broadcast.audio.render import AudioRenderer
from broadcast.audio.templates import load_templates
from broadcast.clock import BEIJING, ManualClock
from broadcast.model import MessageDraft
from broadcast.schedule.drill_service import DrillService
from broadcast.schedule.drills import DrillSpec, drill_draft, drill_prerenderer, next_slot
from broadcast.store.db import make_engine, prepare_schema
from tests.helpers.poll import wait_until

COUNTY = "530181000000"
NOV = datetime(2026, 11, 4, 10, tzinfo=BEIJING).astimezone(UTC)  # first Wednesday, 10:00 Beijing


class ToneEngine:
    """A fake TTS engine: half a second of tone per text, and a count of synthesis calls."""

    name = "fake"
    voice = "fake-voice"
    settings = ""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def synth(self, text: str) -> Speech:
        self.calls.append(text)
        pcm = array.array("h", (int(8000 * math.sin(2 * math.pi * 440 * i / 16_000)) for i in range(8_000)))
        return Speech(pcm.tobytes(), SpeechFormat.PCM_S16LE, 16_000, self.name, self.voice)


def script(draft: MessageDraft) -> tuple[str, str]:
    """The controller's script for drills: the templates (演练 framing)."""
    spoken = load_templates().render(draft, county_name="安宁市")
    return spoken.title, spoken.body


class Air:
    def __init__(self) -> None:
        self.drafts: list[MessageDraft] = []

    async def __call__(self, draft: MessageDraft) -> int:
        self.drafts.append(draft)
        return len(self.drafts)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'main.sqlite3'}")
    await prepare_schema(eng, feature_tables())
    yield eng
    await eng.dispose()


def test_silent_drill_draft_has_volume_zero() -> None:
    silent = drill_draft(
        DrillSpec("quiet", (COUNTY,), silent=True), NOV, NOV, sender_name="安宁", sender_code="1"
    )
    loud = drill_draft(DrillSpec("loud", (COUNTY,)), NOV, NOV, sender_name="安宁", sender_code="1")
    assert silent.volume == 0 and silent.msg_type.is_drill
    assert loud.volume is None  # the pipeline's default volume


def test_next_slot_is_strictly_after_now() -> None:
    spec = DrillSpec("m", (COUNTY,))
    assert next_slot(spec, NOV - timedelta(days=1)) == NOV
    assert next_slot(spec, NOV) == datetime(2026, 12, 2, 10, tzinfo=BEIJING).astimezone(UTC)


async def test_prerendered_drill_makes_the_slot_render_a_cache_hit(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    tts = ToneEngine()
    renderer = AudioRenderer(AudioCache(tmp_path / "audio"), [tts])
    clock = ManualClock(NOV - timedelta(days=2))
    air = Air()
    svc = DrillService(
        engine,
        clock,
        air,
        [DrillSpec("monthly", (COUNTY,))],
        sender_name="安宁市应急广播平台",
        sender_code="4530181",
        jobstore_url=f"sqlite:///{tmp_path / 'jobs.sqlite3'}",
        name=f"prerender-{id(air)}",
        prerender=drill_prerenderer(script, renderer),
    )
    assert await svc.prerender_next() == ["monthly"]
    assert any("演练" in t for t in tts.calls)
    live = LiveProgrammes(renderer, clock)
    await live.warm()  # the controller warms at start (chimes, fallback notice), before any slot
    synthesised = len(tts.calls)

    # The slot fires on time: the draft the pipeline gets, spoken the way the pipeline speaks it.
    run = await svc.run_slot("monthly", NOV, now=NOV)
    assert run.broadcast_id == 1
    (draft,) = air.drafts
    title, text = script(draft)
    try:
        prog = await live.start("drill-ebm", title, text, expires_at=draft.end_at)
        ref = await asyncio.wait_for(prog.result(), timeout=20)
    finally:
        await live.close()
    assert ref.digest
    assert len(tts.calls) == synthesised  # no second synthesis

    # A different text (not pre-rendered) does synthesise: the count is not stuck.
    await renderer.render("另一条", "另外一段话。", layout="speech")
    assert len(tts.calls) > synthesised


async def test_start_prerenders_in_the_background(engine: AsyncEngine, tmp_path: Path) -> None:
    tts = ToneEngine()
    renderer = AudioRenderer(AudioCache(tmp_path / "audio"), [tts])
    air = Air()
    svc = DrillService(
        engine,
        ManualClock(NOV - timedelta(days=2)),
        air,
        [DrillSpec("monthly", (COUNTY,))],
        sender_name="安宁市应急广播平台",
        sender_code="4530181",
        jobstore_url=f"sqlite:///{tmp_path / 'jobs.sqlite3'}",
        name=f"prerender-start-{id(air)}",
        prerender=drill_prerenderer(script, renderer),
    )
    await svc.start()
    try:
        async def state() -> tuple[int, bool]:
            return len(tts.calls), svc.prerendering

        await wait_until(state, lambda st: st[0] > 0 and not st[1])
        assert not svc.prerendering and any("演练" in t for t in tts.calls)
        assert air.drafts == []  # rendered ahead, nothing aired
    finally:
        await svc.close()
