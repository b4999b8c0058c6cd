"""Tests for broadcast.audio.templates: choosing and filling broadcast templates, and config errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broadcast.audio.templates import (
    DEFAULT_TEMPLATES_PATH,
    FIELDS,
    TemplateError,
    TemplateErrorKind,
    TemplateSet,
    event_name,
    load_event_names,
    load_templates,
    spoken_time,
)
from broadcast.model import Content, MessageDraft, MsgType, Severity, SourceKind, SourceRef

COUNTY = "安宁市"
WARNING_TEXT = (
    "安宁市气象台2026年11月22日10时30分发布暴雨红色预警信号："
    "预计未来3小时内八街街道降雨量将达100毫米以上。"
)


def make_draft(
    msg_type: MsgType = MsgType.ACTUAL,
    severity: Severity = Severity.RED,
    event_type: str = "11B03",
    text: str = WARNING_TEXT,
) -> MessageDraft:
    return MessageDraft(
        msg_type=msg_type,
        event_type=event_type,
        severity=severity,
        sender_name="安宁市气象台",
        sender_code="53018141600000",
        sent_at=datetime(2026, 11, 22, 2, 30, tzinfo=UTC),
        start_at=datetime(2026, 11, 22, 2, 30, tzinfo=UTC),
        end_at=datetime(2026, 11, 22, 14, 0, tzinfo=UTC),
        area_codes=("530181000000",),
        contents=(Content("zho", "暴雨红色预警", text),),
        source=SourceRef(
            SourceKind.CAP, "Anning_Meteorological_Observatory", "53018141600000_20261122103000"
        ),
    )


@pytest.fixture(scope="module")
def templates() -> TemplateSet:
    return load_templates()


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "templates.toml"
    path.write_text(body, encoding="utf-8")
    return path


FALLBACKS = """
[[template]]
id = "actual"
kind = "actual"
title = "{sender}发布{event_name}{colour}预警"
body = "{county}应急广播：{text}"

[[template]]
id = "drill"
kind = "drill"
title = "{title}"
body = "{county}应急广播：{text}"

[[template]]
id = "cancel"
kind = "cancel"
title = "{sender}解除{event_name}{colour}预警"
body = "{county}应急广播：{sender}解除{event_name}{colour}预警。"
"""


# --- rendering with the shipped configuration -------------------------------------------------------


def test_actual_has_county_prefix_and_spoken_text(templates: TemplateSet) -> None:
    spoken = templates.render(make_draft(severity=Severity.YELLOW), county_name=COUNTY)
    assert spoken.template_id == "actual"
    assert spoken.body.startswith("安宁市应急广播：")
    assert "二零二六年十一月二十二日十时三十分" in spoken.body
    assert "八街街道" in spoken.body
    assert not re.search(r"[0-9]", spoken.body)
    assert "演练" not in spoken.body
    assert spoken.title == "安宁市气象台发布暴雨黄色预警"


def test_red_actual_uses_the_red_template_with_spoken_grade(templates: TemplateSet) -> None:
    spoken = templates.render(make_draft(severity=Severity.RED), county_name=COUNTY)
    assert spoken.template_id == "actual-red"
    assert "暴雨红色预警，一级，特别重大" in spoken.body
    assert "Ⅰ" not in spoken.body


@pytest.mark.parametrize(
    "msg_type", [MsgType.PLATFORM_DRILL, MsgType.FRONT_END_DRILL, MsgType.TERMINAL_DRILL]
)
def test_drill_is_announced_at_start_and_end(templates: TemplateSet, msg_type: MsgType) -> None:
    spoken = templates.render(make_draft(msg_type=msg_type), county_name=COUNTY)
    assert spoken.template_id == "drill"
    assert spoken.body.startswith("现在进行应急广播演练")
    assert spoken.body.endswith("演练结束。")
    assert "安宁市应急广播：" in spoken.body
    assert "演练" in spoken.title


def test_cancel_says_which_warning_is_lifted(templates: TemplateSet) -> None:
    spoken = templates.render(make_draft(msg_type=MsgType.CANCEL), county_name=COUNTY)
    assert spoken.template_id == "cancel"
    assert "安宁市气象台解除暴雨红色预警" in spoken.body
    assert "解除" in spoken.title
    assert "演练" not in spoken.body


def test_event_template_beats_severity_template(templates: TemplateSet) -> None:
    spoken = templates.render(make_draft(event_type="11C02", severity=Severity.RED), county_name=COUNTY)
    assert spoken.template_id == "actual-earthquake"


def test_unknown_severity_leaves_no_colour_word(templates: TemplateSet) -> None:
    spoken = templates.render(
        make_draft(msg_type=MsgType.CANCEL, severity=Severity.UNKNOWN), county_name=COUNTY
    )
    assert "解除暴雨预警" in spoken.body
    assert "未知" not in spoken.body


def test_braces_in_message_text_are_not_placeholders(templates: TemplateSet) -> None:
    spoken = templates.render(
        make_draft(severity=Severity.BLUE, text="注意{county}防范{0}"), county_name=COUNTY
    )
    assert "注意{county}防范{零}" in spoken.body


# --- rendering with a custom configuration ----------------------------------------------------------


def test_drill_frame_is_added_even_if_the_template_forgets_it(tmp_path: Path) -> None:
    config = '[drill]\nopening = "下面是应急广播演练。"\nclosing = "本次演练到此结束。"\n' + FALLBACKS
    ts = load_templates(write_config(tmp_path, config))
    spoken = ts.render(make_draft(msg_type=MsgType.PLATFORM_DRILL), county_name="富民县")
    assert spoken.body.startswith("下面是应急广播演练。富民县应急广播：")
    assert spoken.body.endswith("本次演练到此结束。")
    assert spoken.body.count("演练") == 2
    assert spoken.title.startswith("【演练】")


def test_drill_frame_is_not_doubled_when_the_template_has_it(tmp_path: Path) -> None:
    config = FALLBACKS.replace(
        'body = "{county}应急广播：{text}"\n\n[[template]]\nid = "cancel"',
        'body = "现在进行应急广播演练。{county}应急广播：{text}演练结束。"\n\n[[template]]\nid = "cancel"',
    )
    ts = load_templates(write_config(tmp_path, config))
    body = ts.render(make_draft(msg_type=MsgType.TERMINAL_DRILL, text="测试。"), county_name=COUNTY).body
    assert body == "现在进行应急广播演练。安宁市应急广播：测试。演练结束。"


def test_start_and_end_are_spoken_in_beijing_time(tmp_path: Path) -> None:
    config = FALLBACKS.replace('body = "{county}应急广播：{text}"', 'body = "有效时间{start}至{end}。"', 1)
    ts = load_templates(write_config(tmp_path, config))
    body = ts.render(make_draft(severity=Severity.ORANGE), county_name=COUNTY).body
    assert body == "有效时间十一月二十二日十时三十分至十一月二十二日二十二时。"


def test_every_documented_field_is_filled(tmp_path: Path) -> None:
    all_fields = "|".join(f"{name}={{{name}}}" for name in sorted(FIELDS))
    config = FALLBACKS.replace('title = "{sender}发布{event_name}{colour}预警"', f'title = "{all_fields}"', 1)
    ts = load_templates(write_config(tmp_path, config))
    title = ts.render(make_draft(severity=Severity.ORANGE), county_name=COUNTY).title
    filled = dict(part.split("=", 1) for part in title.split("|"))
    assert set(filled) == FIELDS
    assert filled["county"] == COUNTY
    assert filled["event_name"] == "暴雨"
    assert filled["event_code"] == "11B03"
    assert filled["colour"] == "橙色"
    assert filled["grade"] == "Ⅱ级/重大"
    assert filled["text"] == WARNING_TEXT


# --- event names --------------------------------------------------------------------------------------


def test_event_names_and_fallbacks() -> None:
    names = load_event_names()
    assert event_name("11B03", names) == "暴雨"
    assert event_name("11B14", names) == "雷电"
    assert event_name("11D01", names) == "滑坡"
    assert event_name("11B77", names) == "气象灾害"  # unknown code → its category
    assert event_name("99Z99", names) == "突发事件"


def test_spoken_time_converts_utc_to_beijing() -> None:
    assert spoken_time(datetime(2026, 11, 21, 16, 5, tzinfo=UTC)) == "十一月二十二日零时零五分"


# --- configuration errors -----------------------------------------------------------------------------


def load_error(tmp_path: Path, config: str) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        load_templates(write_config(tmp_path, config))
    return info.value


def test_unknown_placeholder_names_the_template(tmp_path: Path) -> None:
    bad = FALLBACKS + '\n[[template]]\nid = "actual-blue"\nkind = "actual"\nseverity = "blue"\n'
    bad += 'title = "{sender}"\nbody = "{county}应急广播：{txet}"\n'
    err = load_error(tmp_path, bad)
    assert err.kind is TemplateErrorKind.UNKNOWN_PLACEHOLDER
    assert err.template_id == "actual-blue"
    assert "actual-blue" in str(err) and "{txet}" in str(err) and "{text}" in str(err)


@pytest.mark.parametrize(
    ("replacement", "kind"),
    [
        ('body = "{county}应急广播：{text"', TemplateErrorKind.INVALID_PLACEHOLDER),
        ('body = "{text.__class__}"', TemplateErrorKind.INVALID_PLACEHOLDER),
        ('body = "{text!r}"', TemplateErrorKind.INVALID_PLACEHOLDER),
        ('body = "{text:>40}"', TemplateErrorKind.INVALID_PLACEHOLDER),
        ('body = "{0}"', TemplateErrorKind.INVALID_PLACEHOLDER),
        ('body = "{}"', TemplateErrorKind.INVALID_PLACEHOLDER),
        ('bodey = "{text}"', TemplateErrorKind.INVALID_ENTRY),
        ('body = ""', TemplateErrorKind.INVALID_ENTRY),
    ],
)
def test_bad_body_is_reported_with_template_id(
    tmp_path: Path, replacement: str, kind: TemplateErrorKind
) -> None:
    config = FALLBACKS.replace('body = "{county}应急广播：{text}"', replacement, 1)
    err = load_error(tmp_path, config)
    assert err.kind is kind
    assert err.template_id == "actual"


@pytest.mark.parametrize(
    ("extra", "kind", "template_id"),
    [
        ('id = "x"\nkind = "actul"\n', TemplateErrorKind.INVALID_ENTRY, "x"),
        ('id = "x"\nkind = "actual"\nseverity = "purple"\n', TemplateErrorKind.INVALID_ENTRY, "x"),
        ('id = "x"\nkind = "actual"\nevent = "11Q"\n', TemplateErrorKind.INVALID_ENTRY, "x"),
        ('id = "actual"\nkind = "actual"\nseverity = "red"\n', TemplateErrorKind.DUPLICATE_ID, "actual"),
        ('id = "x"\nkind = "drill"\n', TemplateErrorKind.DUPLICATE_MATCH, "x"),
        ('kind = "actual"\nseverity = "red"\n', TemplateErrorKind.INVALID_ENTRY, "#4"),
    ],
)
def test_bad_entries_are_reported(
    tmp_path: Path, extra: str, kind: TemplateErrorKind, template_id: str
) -> None:
    config = FALLBACKS + "\n[[template]]\n" + extra + 'title = "{title}"\nbody = "{text}"\n'
    err = load_error(tmp_path, config)
    assert err.kind is kind
    assert err.template_id == template_id


def test_missing_fallback_is_reported(tmp_path: Path) -> None:
    config = FALLBACKS.replace(
        'id = "cancel"\nkind = "cancel"', 'id = "cancel-red"\nkind = "cancel"\nseverity = "red"'
    )
    err = load_error(tmp_path, config)
    assert err.kind is TemplateErrorKind.NO_FALLBACK
    assert err.template_id == "cancel"


def test_drill_frame_without_the_word_drill_is_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, '[drill]\nopening = "现在开始广播。"\n' + FALLBACKS)
    assert err.kind is TemplateErrorKind.INVALID_DRILL_FRAME
    assert "演练" in str(err)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    assert load_error(tmp_path, "[[template]\nid=").kind is TemplateErrorKind.INVALID_TOML
    with pytest.raises(TemplateError) as info:
        load_templates(tmp_path / "nowhere.toml")
    assert info.value.kind is TemplateErrorKind.FILE_NOT_FOUND


def test_malformed_event_types_are_reported(tmp_path: Path) -> None:
    tsv = tmp_path / "event-types.tsv"
    tsv.write_text("code\tname_zh\n11B03\t暴雨\n11B14 雷电\n", encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        load_templates(DEFAULT_TEMPLATES_PATH, event_types_path=tsv)
    assert info.value.kind is TemplateErrorKind.INVALID_EVENT_TYPES
    assert "第 3 行" in str(info.value)
