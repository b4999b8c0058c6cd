"""CAP → EBM conversion: severity vs headline colour, event codes for every CMA signal, status/msgType
mapping, times, areas, contents and languages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from broadcast.model import MsgType, Severity, SourceKind
from broadcast.sources.cap import events as cap_events
from broadcast.sources.cap.convert import CapConversion, gb_language, to_draft
from broadcast.sources.cap.errors import CapError, CapErrorKind
from broadcast.sources.cap.model import CapStatus
from broadcast.sources.cap.parse import parse_cap
from tests.sources.cap_doc import CORPUS, EVENT_TABLE, EXAMPLES, alert, info

BJ = timezone(timedelta(hours=8))
NOW = datetime(2025, 7, 12, 5, 0, tzinfo=BJ)


def convert(
    data: bytes,
    now: datetime = NOW,
    default_duration: timedelta = timedelta(hours=6),
    known_area: Callable[[str], bool] | None = None,
) -> CapConversion:
    return to_draft(parse_cap(data), now=now, default_duration=default_duration, known_area=known_area)


def conversion_error(data: bytes, known_area: Callable[[str], bool] | None = None) -> CapError:
    with pytest.raises(CapError) as e:
        convert(data, known_area=known_area)
    return e.value


def national_codes() -> dict[str, str]:
    rows = EVENT_TABLE.read_text(encoding="utf-8").splitlines()[1:]
    return {code: name for code, name in (r.split("\t", 1) for r in rows if r.strip())}


# --- event codes ------------------------------------------------------------------------------------

# Every CMA warning signal (气象灾害预警信号) plus common geological/hydrological ones:
# (Chinese event, English event of the CMA en-US block, expected code).
SIGNALS = [
    ("台风", "Typhoon", "11B01"),
    ("暴雨", "Rainstorm", "11B03"),
    ("暴雪", "Snowstorm", "11B04"),
    ("暴雪", "Snow Storm", "11B04"),
    ("寒潮", "Cold Wave", "11B05"),
    ("大风", "Gale", "11B06"),
    ("沙尘暴", "Sand Storm", "11B07"),
    ("沙尘暴", "Sandstorm", "11B07"),
    ("高温", "Heat Wave", "11B09"),
    ("高温", "High Temperature", "11B09"),
    ("干旱", "Drought", "11A52"),
    ("雷电", "Thunder", "11B14"),
    ("雷电", "Lightning", "11B14"),
    ("冰雹", "Hail", "11B15"),
    ("霜冻", "Frost", "11B16"),
    ("大雾", "Fog", "11B17"),
    ("大雾", "Heavy Fog", "11B17"),
    ("霾", "Haze", "11B99"),
    ("道路结冰", "Road Icing", "11B99"),
    ("雷雨大风", "Thunderstorm Gale", "11B06"),
    ("雷雨大风", "Thunder Gust", "11B06"),
    ("森林火险", "Forest Fire Danger", "11G00"),
    ("森林火险", "Forest Fire Risk", "11G00"),
    ("草原火险", "Grassland Fire Danger", "11G00"),
    ("低温", "Low Temperature", "11B08"),
    ("持续低温", "Continuous Low Temperature", "11B08"),
    ("干热风", "Dry-hot Wind", "11B11"),
    ("干热风", "Dry Hot Wind", "11B11"),
    ("电线积冰", "Wire Icing", "11B99"),
    ("地质灾害", "Geological Hazard", "11D00"),
    ("地质灾害", "Geological Disaster", "11D00"),
    ("龙卷风", "Tornado", "11B02"),
    ("冰冻", "Freeze", "11B08"),
    ("山洪", "Flash Flood", "11A51"),
    ("城市内涝", "Urban Waterlogging", "11A02"),
    ("洪水", "Flood", "11A01"),
    ("滑坡", "Landslide", "11D01"),
    ("泥石流", "Debris Flow", "11D02"),
    ("崩塌", "Rockfall", "11D03"),
]


@pytest.mark.parametrize(("zh", "en", "code"), SIGNALS)
def test_event_from_chinese_event(zh: str, en: str, code: str) -> None:
    conv = convert(alert(info(event=zh, headline=f"安宁市气象台发布{zh}黄色预警")))
    assert conv.draft.event_type == code
    assert not conv.event.guessed


@pytest.mark.parametrize(("zh", "en", "code"), SIGNALS)
def test_event_from_chinese_headline_when_event_is_vague(zh: str, en: str, code: str) -> None:
    conv = convert(alert(info(event="气象灾害预警", headline=f"安宁市气象台发布{zh}橙色预警[Ⅱ级/严重]")))
    assert conv.draft.event_type == code


@pytest.mark.parametrize(("zh", "en", "code"), SIGNALS)
def test_event_from_english_block(zh: str, en: str, code: str) -> None:
    en_info = info(language="en-US", event=en, headline=f"Anning issued {en} Yellow Warning", description="x")
    # A zh-CN block whose wording matches nothing: the English event decides.
    zh_info = info(event="预警", headline="安宁市气象台发布预警信号")
    assert convert(alert(en_info, zh_info)).draft.event_type == code
    assert convert(alert(en_info)).draft.event_type == code


def test_every_mapped_code_is_in_the_national_table() -> None:
    codes = national_codes()
    mapped = {c for _, c in cap_events._ZH} | {c for _, c in cap_events._EN}
    mapped |= set(cap_events._CATEGORY_FALLBACK.values()) | {cap_events.OTHER_EVENT}
    missing = sorted(c for c in mapped if c not in codes)
    assert missing == []
    assert codes["11B03"] == "暴雨" and codes["11B14"] == "雷电"


def test_event_given_as_national_code() -> None:
    assert convert(alert(info(event="11B15", headline="冰雹预警"))).draft.event_type == "11B15"


@pytest.mark.parametrize(
    ("category", "code"), [("Met", "11B99"), ("Geo", "11D99"), ("Health", "13000"), ("Other", "10000")]
)
def test_unknown_event_falls_back_to_category_other_code(category: str, code: str) -> None:
    conv = convert(alert(info(event="奇异天象", headline="安宁市发布奇异天象预警", category=category)))
    assert conv.draft.event_type == code
    assert conv.event.guessed
    assert any("未能识别预警事件类型" in w for w in conv.draft.warnings)


# --- severity --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cap_severity", "headline", "expected", "warns"),
    [
        ("Extreme", "安宁市气象台发布暴雨预警", Severity.RED, False),
        ("Severe", "安宁市气象台发布暴雨预警", Severity.ORANGE, False),
        ("Moderate", "安宁市气象台发布暴雨预警", Severity.YELLOW, False),
        ("Minor", "安宁市气象台发布暴雨预警", Severity.BLUE, False),
        ("Unknown", "安宁市气象台发布暴雨预警", Severity.UNKNOWN, False),
        ("Extreme", "安宁市气象台发布暴雨红色预警[Ⅰ级/特别严重]", Severity.RED, False),
        ("Minor", "安宁市气象台发布暴雨红色预警[Ⅰ级/特别严重]", Severity.RED, True),
        ("Extreme", "安宁市气象台发布大风蓝色预警[Ⅳ级/一般]", Severity.BLUE, True),
        ("Unknown", "安宁市气象台发布高温橙色预警", Severity.ORANGE, False),
        ("Moderate", "安宁市气象台将暴雨黄色预警升级为橙色预警", Severity.ORANGE, True),
        ("Severe", "安宁市气象台将暴雨橙色预警降级为蓝色预警", Severity.BLUE, True),
        ("Unknown", "安宁市气象台发布暴雨预警[Ⅱ级/严重]", Severity.ORANGE, False),
        ("Unknown", "安宁市气象台发布雷电预警[Ⅲ级/较重]", Severity.YELLOW, False),
    ],
)
def test_headline_colour_wins(cap_severity: str, headline: str, expected: Severity, warns: bool) -> None:
    conv = convert(alert(info(severity=cap_severity, headline=headline)))
    assert conv.draft.severity is expected
    assert any("不一致" in w for w in conv.draft.warnings) is warns


def test_colour_in_event_when_headline_has_none() -> None:
    conv = convert(alert(info(event="暴雨黄色预警", headline="安宁市气象台发布预警", severity="Unknown")))
    assert conv.draft.severity is Severity.YELLOW


def test_cap_severity_from_english_block_when_zh_unknown() -> None:
    en = info(language="en-US", event="Gale", headline="Gale warning", severity="Severe", description="x")
    zh = info(event="大风", headline="安宁市气象台发布大风预警", severity="Unknown")
    assert convert(alert(en, zh)).draft.severity is Severity.ORANGE


def test_corpus_headline_colour_wins_over_moderate() -> None:
    conv = convert((CORPUS / "headline-colour-wins.xml").read_bytes())
    assert conv.draft.severity is Severity.RED


# --- status and msgType -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "msg_type", "expected"),
    [
        ("Actual", "Alert", MsgType.ACTUAL),
        ("Actual", "Update", MsgType.ACTUAL),
        ("Actual", "Cancel", MsgType.CANCEL),
        ("Exercise", "Alert", MsgType.PLATFORM_DRILL),
        ("Exercise", "Update", MsgType.PLATFORM_DRILL),
        ("Test", "Alert", MsgType.PLATFORM_DRILL),
        ("Exercise", "Cancel", MsgType.CANCEL),
    ],
)
def test_msg_type_mapping(status: str, msg_type: str, expected: MsgType) -> None:
    refs = "Anning_Meteorological_Observatory,53018141600000_20250712000000,2025-07-12T00:00:00+08:00"
    conv = convert(alert(status=status, msg_type=msg_type, references=refs))
    assert conv.draft.msg_type is expected
    assert conv.draft.related_ebm_id is None
    assert conv.cap_status == CapStatus(status)
    assert conv.references == (
        ("Anning_Meteorological_Observatory", "53018141600000_20250712000000", "2025-07-12T00:00:00+08:00"),
    )


@pytest.mark.parametrize("status", ["Exercise", "Test"])
def test_exercise_and_test_are_never_actual(status: str) -> None:
    conv = convert(alert(status=status))
    assert conv.draft.msg_type is not MsgType.ACTUAL
    assert conv.draft.msg_type.is_drill


@pytest.mark.parametrize(
    ("kw", "part"),
    [
        ({"status": "System"}, "System"),
        ({"status": "Draft"}, "Draft"),
        ({"msg_type": "Ack"}, "Ack"),
        ({"msg_type": "Error"}, "Error"),
        ({"scope": "Private"}, "Private"),
    ],
)
def test_not_broadcastable(kw: dict[str, str], part: str) -> None:
    e = conversion_error(alert(**kw))
    assert e.kind is CapErrorKind.NOT_BROADCASTABLE
    assert part in e.message
    assert e.identifier == "53018141600000_20250712043000"


def test_restricted_scope_warns() -> None:
    conv = convert(alert(scope="Restricted"))
    assert any("Restricted" in w for w in conv.draft.warnings)


def test_cancel_without_references_warns() -> None:
    conv = convert(alert(msg_type="Cancel"))
    assert conv.draft.msg_type is MsgType.CANCEL
    assert any("references" in w for w in conv.draft.warnings)


def test_cancel_without_info_block() -> None:
    refs = "Anning_Meteorological_Observatory,53018141600000_20250712043000,2025-07-12T04:30:00+08:00"
    conv = convert(alert("", msg_type="Cancel", references=refs))
    assert conv.draft.msg_type is MsgType.CANCEL
    assert conv.draft.primary.title == "解除预警"
    assert conv.draft.area_codes == ()
    assert conv.draft.end_at - conv.draft.start_at == timedelta(hours=6)


def test_alert_without_info_is_an_error() -> None:
    e = conversion_error(alert(""))
    assert e.kind is CapErrorKind.MISSING_FIELD
    assert "info" in e.message


# --- times -----------------------------------------------------------------------------------------


def _times(effective: str = "", onset: str = "", expires: str = "") -> str:
    pairs = (("effective", effective), ("onset", onset), ("expires", expires))
    return "".join(f"<{k}>{v}</{k}>" for k, v in pairs if v)


@pytest.mark.parametrize(
    ("times", "start", "end"),
    [
        (_times("2025-07-12T04:35:00+08:00", "2025-07-12T05:00:00+08:00", "2025-07-12T11:00:00+08:00"),
         datetime(2025, 7, 12, 5, 0, tzinfo=BJ), datetime(2025, 7, 12, 11, 0, tzinfo=BJ)),
        (_times("2025-07-12T04:35:00+08:00", "", "2025-07-12T11:00:00+08:00"),
         datetime(2025, 7, 12, 4, 35, tzinfo=BJ), datetime(2025, 7, 12, 11, 0, tzinfo=BJ)),
        (_times("", "", "2025-07-12T11:00:00+08:00"),
         datetime(2025, 7, 12, 4, 30, tzinfo=BJ), datetime(2025, 7, 12, 11, 0, tzinfo=BJ)),
        (_times("2025-07-12T04:35:00+08:00"),
         datetime(2025, 7, 12, 4, 35, tzinfo=BJ), datetime(2025, 7, 12, 10, 35, tzinfo=BJ)),
        ("", datetime(2025, 7, 12, 4, 30, tzinfo=BJ), datetime(2025, 7, 12, 10, 30, tzinfo=BJ)),
    ],
)
def test_start_and_end(times: str, start: datetime, end: datetime) -> None:
    d = convert(alert(info(times=times))).draft
    assert (d.start_at, d.end_at) == (start, end)
    assert d.sent_at == datetime(2025, 7, 11, 20, 30, tzinfo=UTC)


def test_default_duration_is_a_parameter() -> None:
    d = convert(alert(info(times="")), default_duration=timedelta(hours=2)).draft
    assert d.end_at - d.start_at == timedelta(hours=2)


def test_expired_flag_follows_now() -> None:
    data = alert()  # expires 2025-07-13T04:30+08:00
    assert not convert(data, now=datetime(2025, 7, 13, 4, 29, tzinfo=BJ)).expired
    late = convert(data, now=datetime(2025, 7, 13, 4, 30, tzinfo=BJ))
    assert late.expired
    assert any("失效" in w for w in late.draft.warnings)


def test_expires_before_start_is_an_error() -> None:
    times = _times("2025-07-12T04:30:00+08:00", "", "2025-07-12T04:00:00+08:00")
    e = conversion_error(alert(info(times=times)))
    assert e.kind is CapErrorKind.BAD_VALUE
    assert "expires" in e.message


# --- areas -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("geocode", "expected"),
    [("530181000000", "530181000000"), ("530181", "530181000000"), ("530181001", "530181001000"),
     ("530181001000", "530181001000")],
)
def test_geocodes_normalised(geocode: str, expected: str) -> None:
    assert convert(alert(info(geocode=geocode))).draft.area_codes == (expected,)


def test_value_name_tolerant_of_case_and_spacing() -> None:
    conv = convert(alert(info(value_name="CPEAS geographic code ")))
    assert conv.draft.area_codes == ("530181000000",)


def test_bad_geocode_is_an_error() -> None:
    e = conversion_error(alert(info(geocode="5301810")))
    assert e.kind is CapErrorKind.BAD_VALUE
    assert "5301810" in e.message


def test_known_area_rejects_with_the_code_named() -> None:
    known = {"530181000000", "530181001000"}
    assert convert(alert(info(geocode="530181001000")), known_area=known.__contains__).draft.area_codes
    e = conversion_error(alert(info(geocode="530102")), known_area=known.__contains__)
    assert e.kind is CapErrorKind.UNKNOWN_AREA
    assert "530102000000" in e.message and "安宁市" in e.message


def test_untargetable_geocodes_reported() -> None:
    conv = convert((CORPUS / "non-cpeas-geocode.xml").read_bytes())
    assert conv.draft.area_codes == ("530181000000",)
    assert conv.untargetable == ("ISO3166-2=CN-53-01-81",)


def test_no_area_at_all_is_an_error() -> None:
    e = conversion_error(alert(info(geocode=None)))
    assert e.kind is CapErrorKind.NO_AREA


def test_only_other_geocodes_is_no_area() -> None:
    e = conversion_error(alert(info(value_name="FIPS6", geocode="006037")))
    assert e.kind is CapErrorKind.NO_AREA


def test_polygon_only_is_kept_for_the_targeting_layer() -> None:
    conv = convert((CORPUS / "polygon-circle.xml").read_bytes())
    assert conv.draft.area_codes == ()
    assert len(conv.polygons) == 1 and conv.polygons[0][0] == (24.93, 102.30)
    assert conv.circles == ((24.92, 102.48, 8.5),)


def test_areas_union_over_info_blocks_deduplicated() -> None:
    en = info(language="en-US", event="Fog", headline="Fog", description="x", geocode="530181006000")
    zh = info(event="大雾", headline="大雾黄色预警", geocode="530181006")
    zh2 = info(event="大雾", headline="大雾黄色预警", geocode="530181009000", language="zh-CN")
    assert convert(alert(en, zh, zh2)).draft.area_codes == ("530181006000", "530181009000")


# --- contents, languages, sender -------------------------------------------------------------------


def test_cma_pair_contents() -> None:
    conv = convert((CORPUS / "cma-rainstorm-red.xml").read_bytes())
    d = conv.draft
    assert [c.language for c in d.contents] == ["zho", "eng"]
    assert d.primary.language == "zho"
    assert d.primary.title == "安宁市气象台发布暴雨红色预警[Ⅰ级/特别严重]"
    assert d.primary.text.startswith("安宁市气象台2025年07月12日04时30分发布暴雨红色预警信号")
    assert "防御指南" in d.primary.text
    assert d.contents[1].title.startswith("Anning Meteorological Observatory issued Rainstorm Red Warning")
    assert d.sender_name == "安宁市气象台"
    assert d.sender_code == "53018141600000"
    assert d.source.kind is SourceKind.CAP
    assert (d.source.sender, d.source.identifier) == (
        "Anning_Meteorological_Observatory",
        "53018141600000_20250712043000",
    )
    assert datetime.fromisoformat(d.source.sent) == d.sent_at
    assert d.warnings == ()


def test_identifier_without_office_code() -> None:
    d = convert(alert(identifier="KMQX-2025-0712-001")).draft
    assert d.sender_code == ""
    assert any("14 位" in w for w in d.warnings)


def test_unlabelled_chinese_info_is_zho() -> None:
    en = info(language="en-US", event="Rainstorm", headline="Rainstorm Red Warning", description="x")
    zh = info(language="")
    d = convert(alert(en, zh)).draft
    assert [c.language for c in d.contents] == ["zho", "eng"]


def test_no_chinese_info_warns_and_uses_first() -> None:
    en = info(language="en-US", event="Rainstorm", headline="Rainstorm Red Warning", description="x")
    d = convert(alert(en)).draft
    assert d.primary.language == "eng"
    assert any("没有中文" in w for w in d.warnings)


@pytest.mark.parametrize(
    ("cap", "gb"),
    [("zh-CN", "zho"), ("zh", "zho"), ("zh-Hans-CN", "zho"), ("zh_TW", "zho"), ("en-US", "eng"),
     ("EN", "eng"), ("bo-CN", "bod"), ("ug", "uig"), ("ii-CN", "iii"), ("yue-HK", "yue"), ("xx", "und"),
     ("", "und")],
)
def test_gb_language(cap: str, gb: str) -> None:
    assert gb_language(cap) == gb


def test_missing_description_uses_headline() -> None:
    d = convert(alert(info(description=""))).draft
    assert d.primary.text == d.primary.title == "安宁市气象台发布暴雨红色预警[Ⅰ级/特别严重]"


def test_no_text_at_all_is_an_error() -> None:
    e = conversion_error(alert(info(event="", headline="", description="")))
    assert e.kind is CapErrorKind.MISSING_FIELD


def test_audio_resources_collected() -> None:
    res = (
        "<resource><resourceDesc>预警音频</resourceDesc><mimeType>audio/mpeg</mimeType>"
        "<uri>http://cap.example.invalid/a.mp3</uri><digest>d1</digest></resource>"
        "<resource><resourceDesc>图</resourceDesc><mimeType>image/png</mimeType><uri>http://x.invalid/p</uri></resource>"
    )
    conv = convert(alert(info(extra=res)))
    assert [r.uri for r in conv.audio_resources] == ["http://cap.example.invalid/a.mp3"]


# --- examples --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "area", "msg_type", "severity", "event"),
    [
        ("cap-rainstorm-red-anning.xml", "530181000000", MsgType.ACTUAL, Severity.RED, "11B03"),
        ("cap-rainstorm-red-lianran.xml", "530181001000", MsgType.ACTUAL, Severity.RED, "11B03"),
        ("cap-thunder-yellow-update-anning.xml", "530181000000", MsgType.ACTUAL, Severity.YELLOW, "11B14"),
        ("cap-exercise-anning.xml", "530181000000", MsgType.PLATFORM_DRILL, Severity.YELLOW, "11B14"),
    ],
)
def test_examples(name: str, area: str, msg_type: MsgType, severity: Severity, event: str) -> None:
    conv = convert((EXAMPLES / name).read_bytes())
    d = conv.draft
    assert (d.area_codes, d.msg_type, d.severity, d.event_type) == ((area,), msg_type, severity, event)
    assert not conv.expired
