"""Operator review of media-centre programmes (融媒体中心节目审核) over HTTP.

    GET  /api/media/submissions[?status=pending|approved|rejected]   the submissions, newest decisions kept
    POST /api/media/submissions/{id}/approve   {"note"?}   → fetched, decided, put in the programme schedule
    POST /api/media/submissions/{id}/reject    {"note"?}   → decided; it never airs

Approving, in this order so that nothing is half done: the slot must still be schedulable; a submitted
recording is fetched once (size/time limits) and validated into the audio cache (a failure leaves the
submission pending, so the operator can retry or reject); then the pending → approved decision (who
approved is recorded; a concurrent decision wins once); then the one-off programme is persisted and
scheduled by ``ProgrammeService.add_submission``. Every decision is audited.

Thin: ``interconnect.media`` stores and decides, ``schedule.programmes`` schedules, ``audio.upload``
validates. Everything it uses is given at registration (``add_media_routes``); recordings are fetched
with the one injected HTTP session, never a session per request. Must never put a programme on air
itself, nor approve anything that is not pending. Role rules: ``MEDIA_RULES`` (in
``broadcast.app.web.MATRIX``).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.audio.cache import AudioCache
from broadcast.audio.encode_options import EncodeOptions
from broadcast.audio.upload import UploadProblem, UploadRejected, validate_upload
from broadcast.clock import Clock
from broadcast.interconnect import media
from broadcast.jsonhttp import json_error, json_response
from broadcast.schedule.programme_specs import ScheduleError
from broadcast.schedule.programmes import ProgrammeService
from broadcast.security.audit import AuditAction
from broadcast.security.context import SECURITY, audit_request
from broadcast.security.roles import Permission, Rule
from broadcast.web.errors import actor_of
from broadcast.web.timestamps import beijing_iso

__all__ = ["MEDIA_RULES", "add_media_routes", "submission_json"]

MEDIA_RULES = (
    Rule("GET", "/api/media/submissions", Permission.READ),
    Rule("POST", "/api/media/submissions/{id}/approve", Permission.MESSAGES_APPROVE),
    Rule("POST", "/api/media/submissions/{id}/reject", Permission.MESSAGES_APPROVE),
)


def submission_json(s: media.Submission) -> dict[str, Any]:
    return {
        "submission_id": s.submission_id,
        "title": s.title,
        "text": s.text,
        "audio_url": s.audio_url or None,
        "area_codes": list(s.area_codes),
        "start_at": beijing_iso(s.start_at),
        "end_at": beijing_iso(s.end_at),
        "submitter": s.submitter,
        "status": s.status.value,
        "submitted_at": beijing_iso(s.submitted_at),
        "decided_at": beijing_iso(s.decided_at),
        "decided_by": s.decided_by,
        "note": s.note,
    }


_SUBMISSION_STATUS = {
    media.SubmissionFault.NOT_FOUND: 404,
    media.SubmissionFault.ALREADY_DECIDED: 409,
    media.SubmissionFault.AUDIO_UNAVAILABLE: 502,
    media.SubmissionFault.AUDIO_TOO_BIG: 413,
}


def add_media_routes(
    app: web.Application,
    *,
    engine: AsyncEngine,
    clock: Clock,
    programmes: ProgrammeService,
    cache: AudioCache,
    options: EncodeOptions,
    max_bytes: int,
    max_duration_s: float,
    session: aiohttp.ClientSession,
) -> None:
    """Register the review routes. Approved recordings are fetched with ``session`` (at most
    ``max_bytes``), validated like an operator's upload (``max_duration_s``, ``options``) and stored in
    ``cache``; approved submissions are scheduled into ``programmes``."""

    async def fetch_recording(sub: media.Submission) -> str:
        """Download once, validate and store in the audio cache; the stored recording's digest."""
        data = await media.fetch_audio(
            session, sub.audio_url, max_bytes=max_bytes, submission_id=sub.submission_id
        )
        ok = await validate_upload(
            data,
            f"{sub.submission_id}.audio",
            max_bytes=max_bytes,
            max_duration_s=max_duration_s,
            cache=cache,
            options=options,
        )
        assert ok.ref is not None  # a cache was given, so the recording was stored
        return ok.ref.digest

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
        raw = request.query.get("status")
        try:
            status = media.SubmissionStatus(raw) if raw else None
        except ValueError:
            return json_error(400, "bad_status", "status 取值应为 pending、approved 或 rejected")
        subs = await media.list_submissions(engine, status)
        return json_response({"submissions": [submission_json(s) for s in subs]})

    async def approve(request: web.Request) -> web.Response:
        sid = request.match_info["id"]
        actor = actor_of(request)
        sub = await media.get_submission(engine, sid)
        if sub is None:
            return json_error(404, "not_found", f"节目 {sid} 不存在，请刷新列表后重试", submission_id=sid)
        if sub.status is not media.SubmissionStatus.PENDING:
            return json_error(
                409,
                "already_decided",
                f"节目 {sid} 已被处理（{sub.status.value}），无需重复审核",
                submission_id=sid,
            )
        try:
            programmes.check_schedulable(sub, clock.now())
            digest = await fetch_recording(sub) if sub.audio_url else None
            decided = await media.decide_submission(
                engine, sid, approve=True, actor=actor, now=clock.now(), note=await note_of(request)
            )
            spec = await programmes.add_submission(decided, audio_digest=digest, approved_by=actor)
        except ScheduleError as exc:
            return json_error(409, str(exc.fault), exc.message, submission_id=sid)
        except media.SubmissionError as exc:
            await audit(request, AuditAction.MESSAGE_APPROVED, sid, {"refused": exc.message})
            return json_error(
                _SUBMISSION_STATUS.get(exc.fault, 400), str(exc.fault), exc.message, submission_id=sid
            )
        except UploadRejected as exc:
            await audit(request, AuditAction.MESSAGE_APPROVED, sid, {"refused": exc.message_zh})
            status = 413 if exc.problem is UploadProblem.TOO_BIG else 422
            return json_error(
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
                "slot": beijing_iso(spec.once_at),
            }
        )

    async def reject(request: web.Request) -> web.Response:
        sid = request.match_info["id"]
        try:
            decided = await media.decide_submission(
                engine,
                sid,
                approve=False,
                actor=actor_of(request),
                now=clock.now(),
                note=await note_of(request),
            )
        except media.SubmissionError as exc:
            return json_error(
                _SUBMISSION_STATUS.get(exc.fault, 400), str(exc.fault), exc.message, submission_id=sid
            )
        await audit(request, AuditAction.MESSAGE_REJECTED, sid, {"note": decided.note})
        return json_response(submission_json(decided))

    app.router.add_get("/api/media/submissions", listing)
    app.router.add_post("/api/media/submissions/{id}/approve", approve)
    app.router.add_post("/api/media/submissions/{id}/reject", reject)
