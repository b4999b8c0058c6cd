"""``audio_digest`` in the JSON message: an operator's uploaded recording is broadcast instead of TTS."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from broadcast.sources.message_json import MessageJsonError, MessageJsonErrorKind, parse_message_json

NOW = datetime(2025, 7, 12, 8, 0, tzinfo=timezone(timedelta(hours=8)))
STORED = "ab" * 32


def parse(extra: dict[str, Any], **kw: Any) -> Any:
    doc = {
        "msg_type": "actual", "event_type": "11B03", "severity": 2, "title": "暴雨橙色预警",
        "text": "请注意防范。", "areas": ["530181"], "sender": "zhang.san", "client_id": "c-1", **extra,
    }
    return parse_message_json(json.dumps(doc, ensure_ascii=False).encode(), now=NOW, **kw)


def exists(digest: str) -> bool:
    return digest == STORED


def test_known_recording_is_carried_on_the_draft() -> None:
    assert parse({"audio_digest": STORED}, audio_exists=exists).audio_digest == STORED
    assert parse({"audio_digest": STORED.upper()}, audio_exists=exists).audio_digest == STORED
    assert parse({}, audio_exists=exists).audio_digest is None
    assert parse({}).audio_digest is None  # without the field nothing changes


@pytest.mark.parametrize(
    ("value", "kw", "kind", "words"),
    [
        ("abc", {"audio_exists": exists}, MessageJsonErrorKind.BAD_VALUE, "64 位"),
        ("cd" * 32, {"audio_exists": exists}, MessageJsonErrorKind.BAD_VALUE, "重新上传"),
        (STORED, {}, MessageJsonErrorKind.BAD_VALUE, "不接受录音"),
        (42, {"audio_exists": exists}, MessageJsonErrorKind.WRONG_TYPE, "字符串"),
    ],
)
def test_bad_or_unknown_recording_is_refused(value: object, kw: dict[str, Any], kind: MessageJsonErrorKind,
                                             words: str) -> None:
    with pytest.raises(MessageJsonError) as info:
        parse({"audio_digest": value}, **kw)
    assert info.value.kind is kind and info.value.field == "audio_digest" and words in info.value.message
