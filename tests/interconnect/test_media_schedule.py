"""Media-centre programmes → daily-programme schedule, through the operator routes in a real aiohttp app on
127.0.0.1 (security installed, an approver logged in): an approved audio submission is fetched once from a
local HTTP server, validated into the audio cache and scheduled by digest; ``run_slot`` then submits a
SCHEDULE draft carrying that digest; a rejected one never airs; a restart keeps the approved programme."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.app.schema import feature_tables
from broadcast.audio.cache import AudioCache
from broadcast.audio.config import AudioConfig
from broadcast.audio.encode_options import EncodeOptions
from broadcast.audio.ffmpeg import run_ffmpeg
from broadcast.clock import ManualClock
from broadcast.interconnect import media
from broadcast.model import MessageDraft, Priority, SourceKind
from broadcast.schedule.programme_specs import SlotOutcome
from broadcast.schedule.programmes import ProgrammeService
from broadcast.security import accounts
from broadcast.security.install import install as install_security
from broadcast.security.passwords import Passwords
from broadcast.security.roles import DEFAULT_MATRIX, Role
from broadcast.store.db import make_engine, prepare_schema
from broadcast.web.media_routes import MEDIA_RULES, add_media_routes

COUNTY = "530181000000"
AREA = "530181008000"
# The injected clock runs ahead of the wall clock: APScheduler (wall clock) must see the slot as future.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=30)
SLOT = NOW + timedelta(hours=2)


async def sine_mp3(seconds: float) -> bytes:
    out, _ = await run_ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-ac",
            "1",
            "-ar",
            "44100",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "64k",
            "-f",
            "mp3",
            "pipe:1",
        ],
        b"",
        what="make test mp3",
    )
    return out


@dataclass
class Host:
    engine: AsyncEngine
    clock: ManualClock
    audio_cache: AudioCache
    programmes: ProgrammeService | None = None
    audio_config: AudioConfig = field(default_factory=AudioConfig)
    renderer: Any = field(default_factory=lambda: type("R", (), {"options": EncodeOptions()})())


@dataclass
class Rig:
    host: Host
    url: str
    http: aiohttp.ClientSession
    audio_base: str
    aired: list[MessageDraft]
    tmp: Path
    fetches: list[str]

    async def submit(self, sid: str, **doc: Any) -> None:
        body = {"submission_id": sid, "title": f"节目 {sid}", "start_at": SLOT.isoformat(), **doc}
        _, created = await media.accept_submission(self.host.engine, body, self.host.clock.now())
        assert created

    async def decide(self, sid: str, verb: str) -> tuple[int, dict[str, Any]]:
        async with self.http.post(f"{self.url}/api/media/submissions/{sid}/{verb}", json={"note": "ok"}) as r:
            return r.status, await r.json()

    def service(self) -> ProgrammeService:
        return programme_service(self.host, self.aired, self.tmp)


def programme_service(host: Host, aired: list[MessageDraft], tmp: Path) -> ProgrammeService:
    async def submit(draft: MessageDraft) -> int:
        aired.append(draft)
        return len(aired)

    return ProgrammeService(
        host.clock,
        submit,
        [],
        "安宁市应急广播",
        "5301810",
        f"sqlite:///{tmp / 'jobs.sqlite3'}",
        name=f"media-test-{id(aired)}",
        engine=host.engine,
        default_areas=(COUNTY,),
        audio_exists=lambda d: host.audio_cache.path_for(d, "mp3") is not None,
    )


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'ebc.sqlite3'}")
    await prepare_schema(engine, feature_tables())
    clock = ManualClock(NOW)
    host = Host(engine, clock, AudioCache(tmp_path / "audio"))
    aired: list[MessageDraft] = []
    host.programmes = service = programme_service(host, aired, tmp_path)
    fetch_session = aiohttp.ClientSession()  # the routes' injected session for recordings
    app = web.Application()
    install_security(app, engine, clock, matrix=DEFAULT_MATRIX.with_rules(*MEDIA_RULES), secure_cookies=False)
    add_media_routes(
        app,
        engine=engine,
        clock=clock,
        programmes=service,
        cache=host.audio_cache,
        options=host.renderer.options,
        max_bytes=host.audio_config.upload_max_bytes,
        max_duration_s=host.audio_config.upload_max_duration_s,
        session=fetch_session,
    )

    # The media centre's file server (stands in for its CDN).
    mp3 = await sine_mp3(3)
    fetches: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        fetches.append(request.path)
        if request.match_info["name"] == "programme.mp3":
            return web.Response(body=mp3, content_type="audio/mpeg")
        raise web.HTTPNotFound()

    files = web.Application()
    files.router.add_get("/{name}", serve)
    runners = [web.AppRunner(app), web.AppRunner(files)]
    ports = []
    for runner in runners:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports.append(runner.addresses[0][1])
    await accounts.create_account(
        engine, clock, Passwords(None), "zhang.san", {Role.APPROVER}, "Zhang-Passw0rd-2026"
    )
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(
        f"http://127.0.0.1:{ports[0]}/api/login",
        json={"username": "zhang.san", "password": "Zhang-Passw0rd-2026"},
    ) as resp:
        me = await resp.json()
        assert resp.status == 200, me
    http.headers["X-CSRF-Token"] = me["csrf_token"]
    r = Rig(host, f"http://127.0.0.1:{ports[0]}", http, f"http://127.0.0.1:{ports[1]}", aired, tmp_path, fetches)
    await service.start()
    try:
        yield r
    finally:
        if host.programmes is not None:
            await host.programmes.close()
        await http.close()
        await fetch_session.close()
        for runner in runners:
            await runner.cleanup()
        await engine.dispose()


async def test_approved_audio_submission_is_scheduled_and_airs_by_digest(rig: Rig) -> None:
    await rig.submit(
        "m-001", audio_url=f"{rig.audio_base}/programme.mp3", area_codes=[AREA], text="防汛知识讲座"
    )
    status, body = await rig.decide("m-001", "approve")
    assert status == 200, body
    digest = body["audio_digest"]
    assert body["status"] == "approved" and body["decided_by"] == "zhang.san"
    assert body["programme_id"] == "media:m-001"
    assert rig.fetches == ["/programme.mp3"]  # fetched once
    assert rig.host.audio_cache.path_for(digest, "mp3") is not None
    svc = rig.host.programmes
    assert svc is not None and svc.scheduler is not None
    assert svc.scheduler.get_job("programme:media:m-001") is not None

    assert rig.aired == []  # not before its slot
    run = await svc.run_slot("media:m-001", SLOT, now=SLOT + timedelta(seconds=2))
    assert run.outcome is SlotOutcome.SUBMITTED
    (draft,) = rig.aired
    assert draft.source.kind is SourceKind.SCHEDULE and draft.priority is Priority.DAILY
    assert draft.audio_digest == digest and draft.area_codes == (AREA,)
    assert draft.primary.title == "节目 m-001" and draft.end_at == SLOT + timedelta(minutes=30)
    again = await svc.run_due("media:m-001", now=SLOT + timedelta(minutes=1))
    assert again.outcome is SlotOutcome.SUBMITTED  # the fake submitter has no duplicate check: the store does
    listed = await rig.http.get(f"{rig.url}/api/media/submissions?status=approved")
    assert [s["submission_id"] for s in (await listed.json())["submissions"]] == ["m-001"]


async def test_rejected_submission_never_airs(rig: Rig) -> None:
    await rig.submit("m-002", text="不应播出的节目")
    status, body = await rig.decide("m-002", "reject")
    assert status == 200 and body["status"] == "rejected" and body["decided_by"] == "zhang.san"
    svc = rig.host.programmes
    assert svc is not None
    assert [s.programme_id for s in svc.all_programmes()] == []
    assert svc.scheduler is not None and svc.scheduler.get_job("programme:media:m-002") is None
    with pytest.raises(KeyError):
        await svc.run_slot("media:m-002", SLOT, now=SLOT)
    status, body = await rig.decide("m-002", "approve")  # a decided submission cannot be approved later
    assert status == 409 and body["error"] == "already_decided"
    assert rig.aired == [] and await svc.load_approved() == []


async def test_restart_keeps_the_approved_programme(rig: Rig) -> None:
    await rig.submit("m-003", text="今天下午停水通知。", end_at=(SLOT + timedelta(minutes=5)).isoformat())
    status, body = await rig.decide("m-003", "approve")
    assert status == 200 and body["audio_digest"] is None
    assert rig.host.programmes is not None
    await rig.host.programmes.close()

    fresh = rig.service()
    rig.host.programmes = fresh
    await fresh.start()
    (spec,) = fresh.approved
    assert spec.programme_id == "media:m-003" and spec.approved_by == "zhang.san"
    assert fresh.scheduler is not None and fresh.scheduler.get_job(spec.job_id) is not None
    run = await fresh.run_due("media:m-003", now=SLOT + timedelta(seconds=30))
    assert run.outcome is SlotOutcome.SUBMITTED
    (draft,) = rig.aired
    assert draft.primary.text == "今天下午停水通知。" and draft.audio_digest is None
    assert draft.area_codes == (COUNTY,) and draft.end_at == SLOT + timedelta(minutes=5)


async def test_unreachable_audio_leaves_the_submission_pending(rig: Rig) -> None:
    await rig.submit("m-004", audio_url=f"{rig.audio_base}/missing.mp3")
    status, body = await rig.decide("m-004", "approve")
    assert status == 502 and body["error"] == "audio_unavailable" and "404" in body["message"]
    sub = await media.get_submission(rig.host.engine, "m-004")
    assert sub is not None and sub.status is media.SubmissionStatus.PENDING
    assert rig.host.programmes is not None and rig.host.programmes.approved == []


async def test_a_slot_already_over_cannot_be_approved(rig: Rig) -> None:
    await rig.submit("m-005", text="过期节目", start_at=(NOW - timedelta(minutes=11)).isoformat())
    status, body = await rig.decide("m-005", "approve")
    assert status == 409 and body["error"] == "too_late" and "改期" in body["message"]
    sub = await media.get_submission(rig.host.engine, "m-005")
    assert sub is not None and sub.status is media.SubmissionStatus.PENDING
