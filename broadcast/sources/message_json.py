"""The JSON message format of ``POST /api/messages`` (the bureau's own systems and the console).

Owns strict validation of one JSON document into a `MessageDraft` with an operator `SourceRef`
(identifier = ``client_id``, so a resent document is a duplicate). Never does I/O, never reads the
clock (``now`` is passed in), never decides whether to broadcast (the policy layer does: operator
messages need a second person's approval).

Field table and example: docs/message-json.md. Every error is a `MessageJsonError(kind, field, message)`;
the message is Chinese, names the field and says what to send instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from broadcast.codes import is_ebm_id, normalise_area_code
from broadcast.model import (
    EVENT_TYPE_PATTERN,
    Content,
    MessageDraft,
    MsgType,
    Severity,
    SourceKind,
    SourceRef,
)
from broadcast.sources.cap.events import match_zh

MAX_BYTES = 64 * 1024
DEFAULT_DURATION = timedelta(hours=6)
MAX_DURATION = timedelta(days=7)
MAX_TITLE = 200
MAX_TEXT = 4000
MAX_AREAS = 500
MAX_LANGUAGES = 8
CANCEL_EVENT = "10000"  # 突发事件: the event code of a cancel that names none

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
_LANGUAGE = re.compile(r"^[a-z]{3}$")

FIELDS = frozenset(
    {
        "msg_type",
        "event_type",
        "event",
        "severity",
        "title",
        "text",
        "areas",
        "start",
        "end",
        "sender",
        "languages",
        "related_ebm_id",
        "client_id",
        "audio_digest",
    }
)
_LANGUAGE_FIELDS = frozenset({"language", "title", "text"})

MSG_TYPES = {"actual": MsgType.ACTUAL, "drill": MsgType.PLATFORM_DRILL, "cancel": MsgType.CANCEL}
SEVERITY_WORDS = {
    "red": Severity.RED,
    "orange": Severity.ORANGE,
    "yellow": Severity.YELLOW,
    "blue": Severity.BLUE,
    "红": Severity.RED,
    "橙": Severity.ORANGE,
    "黄": Severity.YELLOW,
    "蓝": Severity.BLUE,
    "红色": Severity.RED,
    "橙色": Severity.ORANGE,
    "黄色": Severity.YELLOW,
    "蓝色": Severity.BLUE,
}


class MessageJsonErrorKind(StrEnum):
    TOO_LARGE = "too_large"
    MALFORMED = "malformed_json"
    NOT_OBJECT = "not_object"
    UNKNOWN_FIELD = "unknown_field"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    BAD_VALUE = "bad_value"
    CONFLICT = "conflict"


_K = MessageJsonErrorKind


class MessageJsonError(ValueError):
    """A refused document: ``field`` is the JSON path of the offending field ("" for the whole body)."""

    def __init__(self, kind: MessageJsonErrorKind, field: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field
        self.message = message

    def as_json(self) -> dict[str, str]:
        return {"error": str(self.kind), "field": self.field, "message": self.message}


def _err(kind: MessageJsonErrorKind, field: str, message: str) -> MessageJsonError:
    return MessageJsonError(kind, field, f"字段 {field}：{message}" if field else message)


def _string(doc: Mapping[str, Any], name: str, *, required: bool, max_len: int = 200) -> str | None:
    if name not in doc or doc[name] is None:
        if required:
            raise _err(_K.MISSING_FIELD, name, "缺少必填字段，请补充")
        return None
    value = doc[name]
    if not isinstance(value, str):
        raise _err(_K.WRONG_TYPE, name, f"应为字符串，收到 {type(value).__name__}")
    value = value.strip()
    if not value:
        raise _err(_K.BAD_VALUE, name, "不能为空，请填写内容")
    if len(value) > max_len:
        raise _err(_K.BAD_VALUE, name, f"长度 {len(value)} 超过上限 {max_len} 字，请精简")
    return value


def _msg_type(doc: Mapping[str, Any]) -> MsgType:
    raw = _string(doc, "msg_type", required=True)
    assert raw is not None
    if raw.lower() not in MSG_TYPES:
        raise _err(_K.BAD_VALUE, "msg_type", f"取值 {raw!r} 无效，应为 actual、drill 或 cancel")
    return MSG_TYPES[raw.lower()]


def _event_type(doc: Mapping[str, Any], msg_type: MsgType, event_names: Mapping[str, str]) -> str:
    code = _string(doc, "event_type", required=False, max_len=5)
    name = _string(doc, "event", required=False, max_len=50)
    if code is not None and name is not None:
        raise _err(_K.CONFLICT, "event", "event_type 与 event 只能填写一个，请删去其一")
    if code is not None:
        if not EVENT_TYPE_PATTERN.match(code):
            raise _err(_K.BAD_VALUE, "event_type", f"{code!r} 不是 5 位事件类型代码，例如 11B03（暴雨）")
        return code
    if name is not None:
        for known_code, known_name in event_names.items():
            if known_name == name:
                return known_code
        found = match_zh(name)
        if found is None:
            raise _err(
                _K.BAD_VALUE,
                "event",
                f"无法识别事件名称「{name}」，请改用 5 位事件类型代码 event_type（例如 11B03）",
            )
        return found.code
    if msg_type is MsgType.CANCEL:
        return CANCEL_EVENT
    raise _err(_K.MISSING_FIELD, "event_type", "缺少事件类型，请填写 event_type 或 event")


def _severity(doc: Mapping[str, Any], msg_type: MsgType) -> Severity:
    if "severity" not in doc or doc["severity"] is None:
        if msg_type is MsgType.CANCEL:
            return Severity.UNKNOWN
        raise _err(_K.MISSING_FIELD, "severity", "缺少预警级别，请填写 1–4 或颜色（red/红色…）")
    value = doc["severity"]
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _err(_K.WRONG_TYPE, "severity", "应为整数 1–4 或颜色字符串")
    if isinstance(value, int):
        if not 1 <= value <= 4:
            raise _err(_K.BAD_VALUE, "severity", f"{value} 超出范围，应为 1（红）到 4（蓝）")
        return Severity(value)
    word = value.strip().lower()
    if word in SEVERITY_WORDS:
        return SEVERITY_WORDS[word]
    raise _err(
        _K.BAD_VALUE, "severity", f"{value!r} 无效，应为 1–4 或 red/orange/yellow/blue/红色/橙色/黄色/蓝色"
    )


def _areas(doc: Mapping[str, Any], msg_type: MsgType) -> tuple[str, ...]:
    if "areas" not in doc or doc["areas"] is None:
        if msg_type is MsgType.CANCEL:
            return ()
        raise _err(_K.MISSING_FIELD, "areas", "缺少播发区域，请填写 6/9/12 位行政区划代码列表")
    value = doc["areas"]
    if not isinstance(value, list):
        raise _err(_K.WRONG_TYPE, "areas", '应为字符串列表，例如 ["530181"]')
    if not value and msg_type is not MsgType.CANCEL:
        raise _err(_K.BAD_VALUE, "areas", "列表为空，请至少填写一个区域代码")
    if len(value) > MAX_AREAS:
        raise _err(_K.BAD_VALUE, "areas", f"区域数 {len(value)} 超过上限 {MAX_AREAS}，请改用上级区域代码")
    codes: list[str] = []
    for index, item in enumerate(value):
        path = f"areas[{index}]"
        if not isinstance(item, str):
            raise _err(_K.WRONG_TYPE, path, '区域代码应为字符串（保留前导零），例如 "530181"')
        try:
            code = normalise_area_code(item)
        except ValueError:
            raise _err(_K.BAD_VALUE, path, f"{item!r} 不是 6/9/12 位数字的行政区划代码") from None
        if code not in codes:
            codes.append(code)
    return tuple(codes)


def _time(doc: Mapping[str, Any], name: str) -> datetime | None:
    raw = _string(doc, name, required=False, max_len=40)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise _err(
            _K.BAD_VALUE, name, f"{raw!r} 不是 ISO 8601 时间，例如 2025-07-12T08:00:00+08:00"
        ) from None
    if value.tzinfo is None:
        raise _err(_K.BAD_VALUE, name, f"{raw!r} 缺少时区，请加上 +08:00")
    return value


def _languages(doc: Mapping[str, Any]) -> list[Content]:
    value = doc.get("languages")
    if value is None:
        return []
    if not isinstance(value, list):
        raise _err(_K.WRONG_TYPE, "languages", "应为对象列表 [{language, title, text}]")
    if len(value) > MAX_LANGUAGES:
        raise _err(_K.BAD_VALUE, "languages", f"最多 {MAX_LANGUAGES} 种附加语言")
    out: list[Content] = []
    for index, item in enumerate(value):
        path = f"languages[{index}]"
        if not isinstance(item, dict):
            raise _err(_K.WRONG_TYPE, path, "应为对象 {language, title, text}")
        for key in item:
            if key not in _LANGUAGE_FIELDS:
                raise _err(_K.UNKNOWN_FIELD, f"{path}.{key}", "未知字段，只允许 language、title、text")
        try:
            language = _string(item, "language", required=True, max_len=3)
            title = _string(item, "title", required=True, max_len=MAX_TITLE)
            text = _string(item, "text", required=True, max_len=MAX_TEXT)
        except MessageJsonError as exc:
            raise _err(exc.kind, f"{path}.{exc.field}", exc.message.split("：", 1)[-1]) from None
        assert language is not None and title is not None and text is not None
        if not _LANGUAGE.match(language) or language == "zho":
            raise _err(
                _K.BAD_VALUE,
                f"{path}.language",
                f"{language!r} 应为 GB/T 4880.2 三位小写语种代码（如 eng、bod、iii），中文请写在 title/text",
            )
        if any(c.language == language for c in out):
            raise _err(_K.CONFLICT, f"{path}.language", f"语种 {language} 重复")
        out.append(Content(language, title, text))
    return out


def _audio_digest(doc: Mapping[str, Any], audio_exists: Callable[[str], bool] | None) -> str | None:
    raw = _string(doc, "audio_digest", required=False, max_len=64)
    if raw is None:
        return None
    digest = raw.lower()
    if not _DIGEST.match(digest):
        raise _err(_K.BAD_VALUE, "audio_digest", "应为上传录音（POST /api/audio）返回的 64 位十六进制 digest")
    if audio_exists is None:
        raise _err(_K.BAD_VALUE, "audio_digest", "此接口不接受录音，请删去该字段或改用操作台上传")
    if not audio_exists(digest):
        raise _err(
            _K.BAD_VALUE, "audio_digest", f"找不到录音 {digest[:12]}…（可能已被清理），请重新上传录音后再提交"
        )
    return digest


def _load(data: bytes, max_bytes: int) -> dict[str, Any]:
    if len(data) > max_bytes:
        raise _err(_K.TOO_LARGE, "", f"消息体 {len(data)} 字节，超过上限 {max_bytes} 字节，请精简正文")
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _err(_K.MALFORMED, "", f"不是合法的 UTF-8 JSON（{exc}），请检查格式") from None
    if not isinstance(doc, dict):
        raise _err(_K.NOT_OBJECT, "", "消息应为 JSON 对象 {...}")
    for key in doc:
        if key not in FIELDS:
            raise _err(_K.UNKNOWN_FIELD, key, "未知字段，请删除或核对拼写（字段表见 docs/message-json.md）")
    return doc


def parse_message_json(
    data: bytes,
    *,
    now: datetime,
    max_bytes: int = MAX_BYTES,
    event_names: Mapping[str, str] | None = None,
    default_duration: timedelta = DEFAULT_DURATION,
    audio_exists: Callable[[str], bool] | None = None,
) -> MessageDraft:
    """Validate one JSON message; raise `MessageJsonError` naming the first field that is wrong.

    ``event_names`` (code → Chinese name, e.g. from config/event-types.tsv) resolves ``event`` by exact
    name before the built-in keyword table. ``audio_exists(digest)`` says whether an uploaded recording
    is in the audio cache; without it a document naming ``audio_digest`` is refused.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    doc = _load(data, max_bytes)
    msg_type = _msg_type(doc)
    client_id = _string(doc, "client_id", required=True, max_len=64)
    assert client_id is not None
    if not _CLIENT_ID.match(client_id):
        raise _err(_K.BAD_VALUE, "client_id", "只能含字母、数字和 . _ : -（1–64 个字符），建议用 UUID")
    sender = _string(doc, "sender", required=True, max_len=100)
    assert sender is not None
    event_type = _event_type(doc, msg_type, event_names or {})
    severity = _severity(doc, msg_type)
    is_cancel = msg_type is MsgType.CANCEL
    title = _string(doc, "title", required=not is_cancel, max_len=MAX_TITLE) or "解除预警"
    text = _string(doc, "text", required=not is_cancel, max_len=MAX_TEXT) or title
    areas = _areas(doc, msg_type)
    related = _string(doc, "related_ebm_id", required=is_cancel, max_len=64)
    if related is not None and not is_ebm_id(related):
        raise _err(_K.BAD_VALUE, "related_ebm_id", f"{related!r} 不是 35 位数字的 EBM 编号")
    start = _time(doc, "start") or now
    end = _time(doc, "end") or start + default_duration
    if end <= start:
        raise _err(_K.BAD_VALUE, "end", "结束时间必须晚于开始时间 start")
    if end <= now:
        raise _err(_K.BAD_VALUE, "end", f"结束时间 {end.isoformat()} 已过，消息不会播出；请修改")
    if end - start > MAX_DURATION:
        raise _err(_K.BAD_VALUE, "end", "播发时长超过 7 天，请缩短或分次发布")
    contents = (Content("zho", title, text), *_languages(doc))
    audio_digest = _audio_digest(doc, audio_exists)
    return MessageDraft(
        msg_type=msg_type,
        event_type=event_type,
        severity=severity,
        sender_name=sender,
        sender_code="",
        sent_at=now,
        start_at=start,
        end_at=end,
        area_codes=areas,
        contents=contents,
        source=SourceRef(kind=SourceKind.OPERATOR, sender=sender, identifier=client_id),
        related_ebm_id=related,
        audio_digest=audio_digest,
    )
