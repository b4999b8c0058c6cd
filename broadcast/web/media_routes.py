"""Operator review of media-centre programmes (融媒体中心节目审核) over HTTP.

    GET  /api/media/submissions[?status=pending|approved|rejected]   the submissions, newest decisions kept
    POST /api/media/submissions/{id}/approve   {"note"?}   → fetched, decided, put in the programme schedule
    POST /api/media/submissions/{id}/reject    {"note"?}   → decided; it never airs

Approving, in this order so that nothing is half done: the slot must still be schedulable; a submitted
recording is fetched once (size/time limits) and validated into the audio cache (a failure leaves the
submission pending, so the operator can retry or reject); then the pending → approved decision (who
approved is recorded; a concurrent decision wins once); then the one-off programme is persisted and
scheduled by ``ProgrammeService.add_submission``. Every decision is audited.

Thin: media.py stores and decides, programmes.py schedules, audio/upload.py validates. Must never put a
programme on air itself, nor approve anything that is not pending. Role rules: ``MEDIA_RULES`` (add them
to broadcast/web/app.py MATRIX).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

import aiohttp
from aiohttp import web

from broadcast.audio.cache import AudioCache
from broadcast.audio.upload import UploadProblem, UploadRejected, validate_upload
from broadcast.clock import BEIJING, Clock
from broadcast.interconnect import media
from broadcast.jsonhttp import json_response
from broadcast.schedule.programme_specs import ScheduleError
from broadcast.schedule.programmes import ProgrammeService
from broadcast.security.audit import AuditAction
from broadcast.security.context import SECURITY, audit_request
from broadcast.security.middleware import principal_of
from broadcast.security.roles import Permission, Rule

__all__ = ["MEDIA_RULES", "MediaHost", "add_media_routes", "submission_json"]

MEDIA_RULES = (
    Rule("GET", "/api/media/submissions", Permission.READ),
    Rule("POST", "/api/media/submissions/{id}/approve", Permission.MESSAGES_APPROVE),
    Rule("POST", "/api/media/submissions/{id}/reject", Permission.MESSAGES_APPROVE),
)


class _AudioLimits(Protocol):
    @property
    def upload_max_bytes(self) -> int: ...

    @property
    def upload_max_duration_s(self) -> float: ...


class _HasOptions(Protocol):
    @property
    def options(self) -> Any: ...


class MediaHost(Protocol):
    """What the routes need from the controller."""

    @property
    def engine(self) -> Any: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def programmes(self) -> ProgrammeService | None: ...

    @property
    def audio_cache(self) -> AudioCache: ...

    @property
    def renderer(self) -> _HasOptions: ...

    @property
    def audio_config(self) -> _AudioLimits: ...


H = TypeVar("H", bound=MediaHost)
Fetch = Callable[[str, int, str], Awaitable[bytes]]
"""Fetch a recording: (url, max_bytes, submission_id) → bytes; raises media.SubmissionError."""


def _iso(ts: datetime | None) -> str | None:
    return ts.astimezone(BEIJING).isoformat() if ts is not None else None


def submission_json(s: media.Submission) -> dict[str, Any]:
    return {
        "submission_id": s.submission_id,
        "title": s.title,
        "text": s.text,
        "audio_url": s.audio_url or None,
        "area_codes": list(s.area_codes),
        "start_at": _iso(s.start_at),
        "end_at": _iso(s.end_at),
        "submitter": s.submitter,
        "status": s.status.value,
        "submitted_at": _iso(s.submitted_at),
        "decided_at": _iso(s.decided_at),
        "decided_by": s.decided_by,
        "note": s.note,
    }


def _refuse(status: int, error: str, message: str, **extra: object) -> web.Response:
    return json_response({"error": error, "message": message, **extra}, status=status)


_SUBMISSION_STATUS = {
    media.SubmissionFault.NOT_FOUND: 404,
    media.SubmissionFault.ALREADY_DECIDED: 409,
    media.SubmissionFault.AUDIO_UNAVAILABLE: 502,
    media.SubmissionFault.AUDIO_TOO_BIG: 413,
}


async def _default_fetch(url: str, max_bytes: int, submission_id: str) -> bytes:
    async with aiohttp.ClientSession() as session:
        return await media.fetch_audio(session, url, max_bytes=max_bytes, submission_id=submission_id)


def add_media_routes(app: web.Application, key: web.AppKey[H], *, fetch: Fetch | None = None) -> None:
    """Register the review routes. ``fetch`` replaces the HTTP download (tests)."""
    get_audio = fetch or _default_fetch

    def who(request: web.Request) -> str:
        p = principal_of(request)
        return p.name if p else f"anonymous@{request.remote}"

    async def audit(request: web.Request, action: AuditAction, sid: str, detail: dict[str, Any]) -> None:
        if SECURITY in request.app:
            await audit_request(request, action, target=f"media:{sid}", detail=detail)

    async def note_of(request: web.Request) -> str:
        if not request.can_read_body:
            return ""
        try:
            body = await request.json()
        except ValueError:
            return ""
        note = body.get("note", "") if isinstance(body, dict) else ""
        return note.strip()[:500] if isinstance(note, str) else ""

    async def listing(request: web.Request) -> web.Response:
        host = request.app[key]
        raw = request.query.get("status")
        try:
            status = media.SubmissionStatus(raw) if raw else None
        except ValueError:
            return _refuse(400, "bad_status", "status 取值应为 pending、approved 或 rejected")
        subs = await media.list_submissions(host.engine, status)
        return json_response({"submissions": [submission_json(s) for s in subs]})

    async def approve(request: web.Request) -> web.Response:
        host = request.app[key]
        sid = request.match_info["id"]
        actor = who(request)
        svc = host.programmes
        if svc is None:
            return _refuse(503, "not_running", "日常广播服务未启动，暂不能排播节目；请联系运维")
        sub = await media.get_submission(host.engine, sid)
        if sub is None:
            return _refuse(404, "not_found", f"节目 {sid} 不存在，请刷新列表后重试", submission_id=sid)
        if sub.status is not media.SubmissionStatus.PENDING:
            return _refuse(
                409,
                "already_decided",
                f"节目 {sid} 已被处理（{sub.status.value}），无需重复审核",
                submission_id=sid,
            )
        try:
            svc.check_schedulable(sub, host.clock.now())
            digest = await _fetch_recording(host, sub, get_audio) if sub.audio_url else None
            decided = await media.decide_submission(
                host.engine, sid, approve=True, actor=actor, now=host.clock.now(), note=await note_of(request)
            )
            spec = await svc.add_submission(decided, audio_digest=digest, approved_by=actor)
        except ScheduleError as exc:
            return _refuse(409, str(exc.fault), exc.message, submission_id=sid)
        except media.SubmissionError as exc:
            await audit(request, AuditAction.MESSAGE_APPROVED, sid, {"refused": exc.message})
            return _refuse(
                _SUBMISSION_STATUS.get(exc.fault, 400), str(exc.fault), exc.message, submission_id=sid
            )
        except UploadRejected as exc:
            await audit(request, AuditAction.MESSAGE_APPROVED, sid, {"refused": exc.message_zh})
            status = 413 if exc.problem is UploadProblem.TOO_BIG else 422
            return _refuse(
                status,
                str(exc.problem),
                f"节目录音不可用：{exc.message_zh}（请驳回，或请融媒体中心重新提交）",
                submission_id=sid,
            )
        await audit(
            request, AuditAction.MESSAGE_APPROVED, sid, {"programme_id": spec.programme_id, "audio": digest}
        )
        return json_response(
            {
                **submission_json(decided),
                "programme_id": spec.programme_id,
                "audio_digest": digest,
                "slot": _iso(spec.once_at),
            }
        )

    async def reject(request: web.Request) -> web.Response:
        host = request.app[key]
        sid = request.match_info["id"]
        try:
            decided = await media.decide_submission(
                host.engine,
                sid,
                approve=False,
                actor=who(request),
                now=host.clock.now(),
                note=await note_of(request),
            )
        except media.SubmissionError as exc:
            return _refuse(
                _SUBMISSION_STATUS.get(exc.fault, 400), str(exc.fault), exc.message, submission_id=sid
            )
        await audit(request, AuditAction.MESSAGE_REJECTED, sid, {"note": decided.note})
        return json_response(submission_json(decided))

    app.router.add_get("/api/media/submissions", listing)
    app.router.add_post("/api/media/submissions/{id}/approve", approve)
    app.router.add_post("/api/media/submissions/{id}/reject", reject)


async def _fetch_recording(host: MediaHost, sub: media.Submission, fetch: Fetch) -> str:
    """Download once, validate and store in the audio cache; the stored recording's digest."""
    limits = host.audio_config
    data = await fetch(sub.audio_url, limits.upload_max_bytes, sub.submission_id)
    ok = await validate_upload(
        data,
        f"{sub.submission_id}.audio",
        max_bytes=limits.upload_max_bytes,
        max_duration_s=limits.upload_max_duration_s,
        cache=host.audio_cache,
        options=host.renderer.options,
    )
    assert ok.ref is not None  # a cache was given, so the recording was stored
    return ok.ref.digest
