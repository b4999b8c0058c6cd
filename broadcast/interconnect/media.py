"""The county media centre link (县级融媒体中心): publishing broadcasts to it, and programmes it submits.

Publishing: every county broadcast that goes on air is POSTed once as a JSON document to the configured
endpoint, through the outbox (retried until a 2xx; `Idempotency-Key` = document id):

    {"schema": "ebc.media.broadcast/1", "id": "<ebm_id>", "ebm_id": "<35 digits>",
     "msg_type": 1, "msg_type_name": "实际播发", "event_type": "11B03",
     "severity": 3, "severity_name": "黄色",
     "title": "…", "text": "…", "language": "zho", "area_codes": ["530181000000"], "area_names": ["安宁市"],
     "audio_url": "http://…/audio/<digest>.mp3" | null, "sender_name": "…",
     "sent_at": ISO-8601 +08:00, "start_at": …, "end_at": …, "state": "broadcasting"}

Submissions: the media centre POSTs a programme (JSON: submission_id, title, text and/or audio_url,
start_at, end_at?, area_codes?, submitter?) which is stored as *pending* in `media_submissions` (the
composition root's `prepare_schema` creates the table) until an operator approves or rejects it (who
decided is recorded). On approval the operator routes (broadcast/web/media_routes.py) fetch a submitted
recording once with `fetch_audio` (size and time limits, through the session they are given) and hand
the submission to the programme schedule (broadcast/schedule/programmes.py).

Must never put a submission on air itself, publish a broadcast outside the outbox, open an HTTP session
of its own or create its table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import aiohttp
from sqlalchemy import Column, Integer, String, Table, Text, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import BEIJING
from broadcast.codes import normalise_area_code
from broadcast.interconnect.outbox import Outbox, PayloadKind
from broadcast.interconnect.snapshot import BroadcastSnapshot
from broadcast.model import MsgType
from broadcast.store.tables import UtcDateTime, metadata
from terminals.inventory_model import Inventory

SCHEMA = "ebc.media.broadcast/1"
_MSG_TYPE_ZH = {
    MsgType.ACTUAL: "实际播发",
    MsgType.CANCEL: "取消播发",
    MsgType.PLATFORM_DRILL: "平台演练",
    MsgType.FRONT_END_DRILL: "前端演练",
    MsgType.TERMINAL_DRILL: "终端演练",
}

submissions_table = Table(
    "media_submissions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("submission_id", String(100), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False, default=""),
    Column("audio_url", Text, nullable=False, default=""),
    Column("area_codes", Text, nullable=False, default=""),
    Column("start_at", UtcDateTime, nullable=False),
    Column("end_at", UtcDateTime, nullable=True),
    Column("submitter", String(200), nullable=False, default=""),
    Column("status", String(12), nullable=False, index=True),
    Column("submitted_at", UtcDateTime, nullable=False),
    Column("decided_at", UtcDateTime, nullable=True),
    Column("decided_by", String(100), nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
)


# ---- publishing ---------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(BEIJING).isoformat()


def broadcast_document(snap: BroadcastSnapshot, inventory: Inventory | None = None) -> dict[str, Any]:
    d = snap.draft
    content = d.primary
    names = []
    for code in d.area_codes:
        area = inventory.area(code) if inventory is not None else None
        names.append(area.name if area is not None else code)
    return {
        "schema": SCHEMA,
        "id": snap.ebm_id,
        "ebm_id": snap.ebm_id,
        "msg_type": int(d.msg_type),
        "msg_type_name": _MSG_TYPE_ZH[d.msg_type],
        "event_type": d.event_type,
        "severity": int(d.severity),
        "severity_name": d.severity.colour_zh,
        "title": content.title,
        "text": content.text,
        "language": content.language,
        "area_codes": list(d.area_codes),
        "area_names": names,
        "audio_url": snap.audio_url,
        "sender_name": d.sender_name,
        "sent_at": _iso(d.sent_at),
        "start_at": _iso(d.start_at),
        "end_at": _iso(d.end_at),
        "state": snap.state.value,
    }


class MediaPublisher:
    """Queues one publication per broadcast (logical key `media:<url>:<ebm_id>`)."""

    def __init__(self, outbox: Outbox, url: str, inventory: Inventory | None = None) -> None:
        self._outbox = outbox
        self.url = url
        self._inventory = inventory

    async def publish(self, snap: BroadcastSnapshot, now: datetime) -> bool:
        key = f"media:{self.url}:{snap.ebm_id}"
        if await self._outbox.has_key(key):
            return False
        doc = broadcast_document(snap, self._inventory)
        payload = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        return await self._outbox.enqueue(
            key,
            message_id=f"media-{snap.ebm_id}",
            dest_url=self.url,
            payload=payload,
            kind=PayloadKind.JSON,
            label="media.broadcast",
        )


# ---- submissions --------------------------------------------------------------------------------


class SubmissionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class SubmissionFault(StrEnum):
    MISSING = "missing"
    INVALID = "invalid"
    NOT_FOUND = "not_found"
    ALREADY_DECIDED = "already_decided"
    AUDIO_UNAVAILABLE = "audio_unavailable"  # the audio_url could not be fetched (network, status, time)
    AUDIO_TOO_BIG = "audio_too_big"


class SubmissionError(ValueError):
    """A submission we cannot store or decide; `message` is for the media centre's or operator's staff."""

    def __init__(
        self, fault: SubmissionFault, message: str, *, submission_id: str = "", field: str = ""
    ) -> None:
        self.fault = fault
        self.message = message
        self.submission_id = submission_id
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class Submission:
    id: int
    submission_id: str
    title: str
    text: str
    audio_url: str
    area_codes: tuple[str, ...]
    start_at: datetime
    end_at: datetime | None
    submitter: str
    status: SubmissionStatus
    submitted_at: datetime
    decided_at: datetime | None
    decided_by: str
    note: str


def _submission(row: Any) -> Submission:
    m = row._mapping
    return Submission(
        id=m["id"],
        submission_id=m["submission_id"],
        title=m["title"],
        text=m["text"],
        audio_url=m["audio_url"],
        area_codes=tuple(c for c in m["area_codes"].split(",") if c),
        start_at=m["start_at"],
        end_at=m["end_at"],
        submitter=m["submitter"],
        status=SubmissionStatus(m["status"]),
        submitted_at=m["submitted_at"],
        decided_at=m["decided_at"],
        decided_by=m["decided_by"],
        note=m["note"],
    )


def _str(doc: Mapping[str, Any], key: str, sid: str, *, required: bool = False, limit: int = 10_000) -> str:
    value = doc.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise SubmissionError(SubmissionFault.INVALID, f"字段 {key} 应为字符串", submission_id=sid, field=key)
    value = value.strip()
    if required and not value:
        raise SubmissionError(
            SubmissionFault.MISSING, f"缺少必填字段 {key}，请补全后重新提交", submission_id=sid, field=key
        )
    if len(value) > limit:
        raise SubmissionError(
            SubmissionFault.INVALID, f"字段 {key} 过长（上限 {limit} 字符）", submission_id=sid, field=key
        )
    return value


def _time(doc: Mapping[str, Any], key: str, sid: str, *, required: bool) -> datetime | None:
    text = _str(doc, key, sid, required=required)
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SubmissionError(
            SubmissionFault.INVALID,
            f"字段 {key} 应为 ISO-8601 时间，如 2026-11-05T09:30:00+08:00",
            submission_id=sid,
            field=key,
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=BEIJING)


def parse_submission(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a submission document; the column values to store. Raises SubmissionError."""
    sid = _str(doc, "submission_id", "", required=True, limit=100)
    title = _str(doc, "title", sid, required=True, limit=200)
    text = _str(doc, "text", sid)
    audio_url = _str(doc, "audio_url", sid, limit=2000)
    if not text and not audio_url:
        raise SubmissionError(
            SubmissionFault.MISSING,
            "节目需要 text（文本）或 audio_url（音频地址）之一",
            submission_id=sid,
            field="text",
        )
    if audio_url and not audio_url.startswith(("http://", "https://")):
        raise SubmissionError(
            SubmissionFault.INVALID, "audio_url 应为 http(s) 地址", submission_id=sid, field="audio_url"
        )
    start_at = _time(doc, "start_at", sid, required=True)
    end_at = _time(doc, "end_at", sid, required=False)
    assert start_at is not None
    if end_at is not None and end_at <= start_at:
        raise SubmissionError(
            SubmissionFault.INVALID, "end_at 应晚于 start_at", submission_id=sid, field="end_at"
        )
    raw_areas = doc.get("area_codes") or []
    if not isinstance(raw_areas, list) or not all(isinstance(a, str) for a in raw_areas):
        raise SubmissionError(
            SubmissionFault.INVALID,
            "area_codes 应为区域编码字符串数组",
            submission_id=sid,
            field="area_codes",
        )
    try:
        areas = [normalise_area_code(a) for a in raw_areas]
    except ValueError:
        raise SubmissionError(
            SubmissionFault.INVALID,
            "area_codes 中有无效的行政区划代码（应为 6/9/12 位数字）",
            submission_id=sid,
            field="area_codes",
        ) from None
    return {
        "submission_id": sid,
        "title": title,
        "text": text,
        "audio_url": audio_url,
        "area_codes": ",".join(areas),
        "start_at": start_at,
        "end_at": end_at,
        "submitter": _str(doc, "submitter", sid, limit=200),
    }


async def accept_submission(
    engine: AsyncEngine, doc: Mapping[str, Any], now: datetime
) -> tuple[Submission, bool]:
    """Store a programme submission as pending; (submission, created). A resubmitted id returns the
    stored one unchanged."""
    values = parse_submission(doc)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(submissions_table).values(
                    **values,
                    status=SubmissionStatus.PENDING.value,
                    submitted_at=now,
                    decided_by="",
                    note="",
                )
            )
        created = True
    except IntegrityError:
        created = False
    found = await get_submission(engine, values["submission_id"])
    assert found is not None
    return found, created


async def get_submission(engine: AsyncEngine, submission_id: str) -> Submission | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(submissions_table).where(submissions_table.c.submission_id == submission_id)
            )
        ).first()
    return None if row is None else _submission(row)


async def list_submissions(engine: AsyncEngine, status: SubmissionStatus | None = None) -> list[Submission]:
    query = select(submissions_table).order_by(submissions_table.c.id)
    if status is not None:
        query = query.where(submissions_table.c.status == status.value)
    async with engine.connect() as conn:
        return [_submission(r) for r in await conn.execute(query)]


async def decide_submission(
    engine: AsyncEngine, submission_id: str, *, approve: bool, actor: str, now: datetime, note: str = ""
) -> Submission:
    """Approve or reject a pending submission (an operator's decision). Raises SubmissionError."""
    status = SubmissionStatus.APPROVED if approve else SubmissionStatus.REJECTED
    async with engine.begin() as conn:
        result = await conn.execute(
            update(submissions_table)
            .where(submissions_table.c.submission_id == submission_id)
            .where(submissions_table.c.status == SubmissionStatus.PENDING.value)
            .values(status=status.value, decided_at=now, decided_by=actor, note=note)
        )
        changed = result.rowcount
    found = await get_submission(engine, submission_id)
    if found is None:
        raise SubmissionError(
            SubmissionFault.NOT_FOUND,
            f"节目 {submission_id} 不存在，请刷新列表后重试",
            submission_id=submission_id,
        )
    if not changed:
        raise SubmissionError(
            SubmissionFault.ALREADY_DECIDED,
            f"节目 {submission_id} 已被处理（{found.status.value}），无需重复审核",
            submission_id=submission_id,
        )
    return found


DEFAULT_FETCH_TIMEOUT_S = 60.0
_FETCH_CHUNK = 64 * 1024


async def fetch_audio(
    session: aiohttp.ClientSession,
    url: str,
    *,
    max_bytes: int,
    timeout_s: float = DEFAULT_FETCH_TIMEOUT_S,
    submission_id: str = "",
) -> bytes:
    """GET a submission's recording once, holding at most ``max_bytes`` + 1 byte; no retries, no redirects
    to other schemes. Raises SubmissionError (AUDIO_UNAVAILABLE / AUDIO_TOO_BIG) naming the submission."""

    def fail(fault: SubmissionFault, message: str) -> SubmissionError:
        return SubmissionError(fault, message, submission_id=submission_id, field="audio_url")

    too_big = fail(
        SubmissionFault.AUDIO_TOO_BIG,
        f"节目录音超过 {max_bytes // (1024 * 1024)} MB 上限，请融媒体中心压缩或剪短后重新提交",
    )
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout_s), allow_redirects=True, max_redirects=3
        ) as resp:
            if resp.status != 200:
                raise fail(
                    SubmissionFault.AUDIO_UNAVAILABLE,
                    f"无法下载节目录音（HTTP {resp.status}），请确认 audio_url 可访问后重试审核",
                )
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise too_big
            data = bytearray()
            async for chunk in resp.content.iter_chunked(_FETCH_CHUNK):
                data += chunk
                if len(data) > max_bytes:
                    raise too_big
            return bytes(data)
    except SubmissionError:
        raise
    except TimeoutError:
        raise fail(
            SubmissionFault.AUDIO_UNAVAILABLE, f"下载节目录音超时（{timeout_s:g} 秒），请稍后重试审核"
        ) from None
    except aiohttp.ClientError as exc:
        raise fail(
            SubmissionFault.AUDIO_UNAVAILABLE,
            f"无法下载节目录音（{type(exc).__name__}），请确认 audio_url 可访问后重试审核",
        ) from None
