"""The JSON message format of POST /api/messages: the happy paths and one test per field error."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from broadcast.model import MsgType, Severity, SourceKind
from broadcast.sources.message_json import (
    MessageJsonError,
    MessageJsonErrorKind,
    parse_message_json,
)

BJ = timezone(timedelta(hours=8))
NOW = datetime(2025, 7, 12, 8, 0, tzinfo=BJ)
EBM = "1" * 35
K = MessageJsonErrorKind


def doc(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "msg_type": "actual",
        "event_type": "11B03",
        "severity": 2,
        "title": "安宁市气象台发布暴雨橙色预警",
        "text": "预计未来6小时安宁市将出现50毫米以上降水，请注意防范。",
        "areas": ["530181", "530181101"],
        "sender": "zhang.san",
        "client_id": "c0ffee-0001",
    }
    for key, value in changes.items():
        if value is ...:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def parse(d: dict[str, Any], **kw: Any) -> Any:
    return parse_message_json(json.dumps(d, ensure_ascii=False).encode(), now=NOW, **kw)


def test_full_actual_message() -> None:
    draft = parse(
        doc(
            start="2025-07-12T08:30:00+08:00",
            end="2025-07-12T20:00:00+08:00",
            languages=[{"language": "eng", "title": "Rainstorm orange", "text": "Heavy rain expected."}],
        )
    )
    assert draft.msg_type is MsgType.ACTUAL
    assert draft.severity is Severity.ORANGE
    assert draft.event_type == "11B03"
    assert draft.area_codes == ("530181000000", "530181101000")
    assert draft.start_at == datetime(2025, 7, 12, 8, 30, tzinfo=BJ)
    assert draft.end_at == datetime(2025, 7, 12, 20, 0, tzinfo=BJ)
    assert draft.primary.title == "安宁市气象台发布暴雨橙色预警"
    assert [c.language for c in draft.contents] == ["zho", "eng"]
    assert draft.source.kind is SourceKind.OPERATOR
    assert (draft.source.sender, draft.source.identifier) == ("zhang.san", "c0ffee-0001")
    assert draft.sent_at == NOW


def test_defaults_start_now_end_plus_six_hours() -> None:
    draft = parse(doc())
    assert draft.start_at == NOW
    assert draft.end_at == NOW + timedelta(hours=6)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, Severity.RED),
        (4, Severity.BLUE),
        ("red", Severity.RED),
        ("Yellow", Severity.YELLOW),
        ("蓝色", Severity.BLUE),
        ("橙", Severity.ORANGE),
    ],
)
def test_severity_numbers_and_colour_words(value: Any, expected: Severity) -> None:
    assert parse(doc(severity=value)).severity is expected


def test_event_name_resolves_by_table_then_keywords() -> None:
    assert parse(doc(event_type=..., event="暴雨")).event_type == "11B03"
    assert parse(doc(event_type=..., event="山洪"), event_names={"11A04": "山洪"}).event_type == "11A04"


def test_drill_and_cancel() -> None:
    assert parse(doc(msg_type="drill")).msg_type is MsgType.PLATFORM_DRILL
    cancel = parse({"msg_type": "cancel", "related_ebm_id": EBM, "sender": "li.si", "client_id": "x-2"})
    assert cancel.msg_type is MsgType.CANCEL
    assert cancel.related_ebm_id == EBM
    assert cancel.area_codes == ()
    assert cancel.severity is Severity.UNKNOWN


def test_same_client_id_gives_same_source_key() -> None:
    first = parse(doc())
    again = parse_message_json(json.dumps(doc()).encode(), now=NOW + timedelta(minutes=5))
    assert first.source.key == again.source.key


@pytest.mark.parametrize(
    ("body", "kind", "field"),
    [
        (doc(msg_type=...), K.MISSING_FIELD, "msg_type"),
        (doc(msg_type="alert"), K.BAD_VALUE, "msg_type"),
        (doc(msg_type=1), K.WRONG_TYPE, "msg_type"),
        (doc(event_type=...), K.MISSING_FIELD, "event_type"),
        (doc(event_type="11B3"), K.BAD_VALUE, "event_type"),
        (doc(event="暴雨"), K.CONFLICT, "event"),
        (doc(event_type=..., event="外星人入侵"), K.BAD_VALUE, "event"),
        (doc(severity=...), K.MISSING_FIELD, "severity"),
        (doc(severity=0), K.BAD_VALUE, "severity"),
        (doc(severity=5), K.BAD_VALUE, "severity"),
        (doc(severity="purple"), K.BAD_VALUE, "severity"),
        (doc(severity=True), K.WRONG_TYPE, "severity"),
        (doc(severity=1.0), K.WRONG_TYPE, "severity"),
        (doc(title=...), K.MISSING_FIELD, "title"),
        (doc(title="  "), K.BAD_VALUE, "title"),
        (doc(title="长" * 201), K.BAD_VALUE, "title"),
        (doc(text=...), K.MISSING_FIELD, "text"),
        (doc(text=["x"]), K.WRONG_TYPE, "text"),
        (doc(areas=...), K.MISSING_FIELD, "areas"),
        (doc(areas="530181"), K.WRONG_TYPE, "areas"),
        (doc(areas=[]), K.BAD_VALUE, "areas"),
        (doc(areas=[530181]), K.WRONG_TYPE, "areas[0]"),
        (doc(areas=["530181", "53018"]), K.BAD_VALUE, "areas[1]"),
        (doc(start="2025-07-12 08:00"), K.BAD_VALUE, "start"),
        (doc(start="2025-07-12T08:00:00"), K.BAD_VALUE, "start"),
        (doc(start="tomorrow"), K.BAD_VALUE, "start"),
        (doc(end="2025-07-12T07:00:00+08:00", start="2025-07-12T08:00:00+08:00"), K.BAD_VALUE, "end"),
        (doc(start="2025-07-11T01:00:00+08:00", end="2025-07-11T02:00:00+08:00"), K.BAD_VALUE, "end"),
        (doc(end="2025-07-30T00:00:00+08:00"), K.BAD_VALUE, "end"),
        (doc(sender=...), K.MISSING_FIELD, "sender"),
        (doc(sender=7), K.WRONG_TYPE, "sender"),
        (doc(client_id=...), K.MISSING_FIELD, "client_id"),
        (doc(client_id="has space"), K.BAD_VALUE, "client_id"),
        (doc(languages={"eng": "x"}), K.WRONG_TYPE, "languages"),
        (doc(languages=["eng"]), K.WRONG_TYPE, "languages[0]"),
        (doc(languages=[{"language": "eng", "title": "t"}]), K.MISSING_FIELD, "languages[0].text"),
        (
            doc(languages=[{"language": "en", "title": "t", "text": "x"}]),
            K.BAD_VALUE,
            "languages[0].language",
        ),
        (
            doc(languages=[{"language": "zho", "title": "t", "text": "x"}]),
            K.BAD_VALUE,
            "languages[0].language",
        ),
        (
            doc(languages=[{"language": "eng", "title": "t", "text": "x", "voice": "a"}]),
            K.UNKNOWN_FIELD,
            "languages[0].voice",
        ),
        (
            doc(languages=[{"language": "eng", "title": "t", "text": "x"}] * 2),
            K.CONFLICT,
            "languages[1].language",
        ),
        (doc(related_ebm_id="123"), K.BAD_VALUE, "related_ebm_id"),
        ({"msg_type": "cancel", "sender": "a", "client_id": "b"}, K.MISSING_FIELD, "related_ebm_id"),
        (doc(priority=3), K.UNKNOWN_FIELD, "priority"),
    ],
)
def test_field_errors(body: dict[str, Any], kind: MessageJsonErrorKind, field: str) -> None:
    with pytest.raises(MessageJsonError) as info:
        parse(body)
    assert (info.value.kind, info.value.field) == (kind, field)
    assert field in info.value.message
    assert info.value.as_json()["field"] == field


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"{not json", K.MALFORMED),
        (b"\xff\xfe{}", K.MALFORMED),
        (b"[1, 2]", K.NOT_OBJECT),
        (b'"x"', K.NOT_OBJECT),
    ],
)
def test_body_errors(data: bytes, kind: MessageJsonErrorKind) -> None:
    with pytest.raises(MessageJsonError) as info:
        parse_message_json(data, now=NOW)
    assert info.value.kind is kind
    assert info.value.field == ""


def test_too_large_is_refused_before_parsing() -> None:
    data = json.dumps(doc(text="雨" * 3000), ensure_ascii=False).encode()
    with pytest.raises(MessageJsonError) as info:
        parse_message_json(data, now=NOW, max_bytes=len(data) - 1)
    assert info.value.kind is K.TOO_LARGE
    assert parse_message_json(data, now=NOW, max_bytes=len(data)).primary.text == "雨" * 3000


def test_utf8_bom_is_accepted() -> None:
    data = b"\xef\xbb\xbf" + json.dumps(doc(), ensure_ascii=False).encode()
    assert parse_message_json(data, now=NOW).severity is Severity.ORANGE


def test_examples_in_the_documentation_parse() -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "message-json.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    types = [parse_message_json(b.encode(), now=NOW).msg_type for b in blocks]
    assert types == [MsgType.ACTUAL, MsgType.CANCEL]
