"""CAP parsing: safety (DTD, XXE, size, depth), tolerance (encodings, namespaces, quirks), field errors."""

from __future__ import annotations

import base64
import builtins
import codecs
import urllib.request
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from broadcast.sources.cap.errors import CapError, CapErrorKind
from broadcast.sources.cap.model import CapMsgType, CapScope, CapStatus
from broadcast.sources.cap.parse import parse_cap
from tests.sources.cap_doc import CORPUS, alert, info

BJ = timezone(timedelta(hours=8))


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def error_of(data: bytes, **kw: Any) -> CapError:
    with pytest.raises(CapError) as e:
        parse_cap(data, **kw)
    return e.value


# --- the CMA feed -------------------------------------------------------------------------------------


def test_cma_rainstorm_red_all_fields() -> None:
    a = parse_cap(corpus("cma-rainstorm-red.xml"))
    assert a.identifier == "53018141600000_20250712043000"
    assert a.sender == "Anning_Meteorological_Observatory"
    assert a.sent == datetime(2025, 7, 11, 20, 30, tzinfo=UTC)
    assert a.sent.utcoffset() == timedelta(hours=8)
    assert (a.status, a.msg_type, a.scope) == (CapStatus.ACTUAL, CapMsgType.ALERT, CapScope.PUBLIC)
    assert a.version == "1.2"
    assert a.warnings == ()
    assert [i.language for i in a.infos] == ["en-US", "zh-CN"]
    en, zh = a.infos
    assert en.event == "Rainstorm" and zh.event == "暴雨"
    assert (zh.urgency, zh.severity, zh.certainty) == ("Unknown", "Extreme", "Unknown")
    assert zh.headline == "安宁市气象台发布暴雨红色预警[Ⅰ级/特别严重]"
    assert zh.description.startswith("安宁市气象台2025年07月12日04时30分发布暴雨红色预警信号")
    assert zh.instruction.startswith("防御指南")
    assert zh.expires == datetime(2025, 7, 13, 4, 30, tzinfo=BJ)
    assert zh.category == ("Met",)
    assert zh.areas[0].area_desc == "安宁市"
    assert zh.areas[0].geocodes == (("CPEAS Geographic Code", "530181000000"),)


@pytest.mark.parametrize(
    ("name", "version", "event_zh", "warning_part"),
    [
        ("cap11-gale.xml", "1.1", "大风", None),
        ("bom-utf8.xml", "1.2", "雷电", None),
        ("gb18030.xml", "1.2", "暴雨", None),
        ("gbk-declared-gb2312.xml", "1.2", "高温", None),
        ("no-namespace.xml", "1.2", "大雾", "没有命名空间"),
    ],
)
def test_tolerated_variants(name: str, version: str, event_zh: str, warning_part: str | None) -> None:
    a = parse_cap(corpus(name))
    assert a.version == version
    assert a.infos[1].event == event_zh
    assert "安宁市气象台" in a.infos[1].headline
    if warning_part is None:
        assert a.warnings == ()
    else:
        assert any(warning_part in w for w in a.warnings)


def test_gb18030_file_is_really_not_utf8() -> None:
    data = corpus("gb18030.xml")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")


def test_utf16_with_bom() -> None:
    text = alert().decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"')
    a = parse_cap(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert a.infos[0].event == "暴雨"


def test_iso_8859_1_declared() -> None:
    doc = alert(info(language="fr-FR", event="Orage", headline="Alerte orage à Anning", description="Orage"))
    text = doc.decode("utf-8").replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    data = text.replace("安宁市气象台", "Station").replace("安宁市", "Anning").encode("latin-1")
    assert parse_cap(data).infos[0].headline == "Alerte orage à Anning"


def test_undeclared_gbk_bytes_are_a_clear_encoding_error() -> None:
    data = alert().decode("utf-8").encode("gbk")
    e = error_of(data)
    assert e.kind is CapErrorKind.BAD_ENCODING
    assert "行" in e.message and "编码" in e.message


def test_unknown_declared_encoding() -> None:
    data = alert().replace(b'encoding="UTF-8"', b'encoding="X-NOPE-9"')
    assert error_of(data).kind is CapErrorKind.BAD_ENCODING


# --- safety -----------------------------------------------------------------------------------------


def test_billion_laughs_refused() -> None:
    e = error_of(corpus("billion-laughs.xml"))
    assert e.kind is CapErrorKind.FORBIDDEN_DTD
    assert "DOCTYPE" in e.message


def test_xxe_refused_and_file_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    data = corpus("xxe-file.xml").replace(b"file:///etc/passwd", secret.as_uri().encode())
    opened: list[object] = []
    real_open = builtins.open

    def spy_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(file)
        return real_open(file, *args, **kwargs)

    def no_urlopen(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the parser must never fetch a URL")

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(urllib.request, "urlopen", no_urlopen)
    e = error_of(data)
    assert e.kind is CapErrorKind.FORBIDDEN_DTD
    assert "TOP-SECRET-MARKER" not in str(e)
    assert not any(str(secret) in str(f) for f in opened)


def test_corpus_xxe_points_at_etc_passwd_and_is_refused() -> None:
    data = corpus("xxe-file.xml")
    assert b"file:///etc/passwd" in data
    e = error_of(data)
    assert e.kind is CapErrorKind.FORBIDDEN_DTD
    assert "root:" not in str(e)


def test_internal_dtd_without_entities_is_refused_too() -> None:
    data = alert().replace(b"<alert", b"<!DOCTYPE alert>\n<alert", 1)
    assert error_of(data).kind is CapErrorKind.FORBIDDEN_DTD


def test_oversized_refused_before_parsing() -> None:
    # Not even well-formed: the size check must come first.
    data = b"<alert>" + b"x" * (256 * 1024)
    e = error_of(data)
    assert e.kind is CapErrorKind.TOO_LARGE
    assert str(len(data)) in e.message


def test_size_limit_is_a_parameter() -> None:
    data = alert()
    assert parse_cap(data, max_bytes=len(data)).identifier
    assert error_of(data, max_bytes=len(data) - 1).kind is CapErrorKind.TOO_LARGE


def test_large_but_allowed_document_parses() -> None:
    desc = "请注意防范。" * 6000  # ~108 KB of UTF-8
    a = parse_cap(alert(info(description=desc)))
    assert len(a.infos[0].description) == len(desc)


def test_deep_nesting_refused() -> None:
    e = error_of(corpus("deeply-nested.xml"))
    assert e.kind is CapErrorKind.TOO_DEEP
    assert "32" in e.message


def test_depth_limit_is_a_parameter() -> None:
    data = alert()  # alert > info > area > geocode > value: depth 5
    assert parse_cap(data, max_depth=5).identifier
    assert error_of(data, max_depth=4).kind is CapErrorKind.TOO_DEEP


# --- structure and namespaces ---------------------------------------------------------------------


def test_wrong_namespace_refused_with_reason() -> None:
    e = error_of(corpus("wrong-namespace.xml"))
    assert e.kind is CapErrorKind.WRONG_NAMESPACE
    assert "http://www.incident.com/cap/1.0" in e.message
    assert "CAP 1.2" in e.message


def test_not_an_alert() -> None:
    e = error_of(b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"/>')
    assert e.kind is CapErrorKind.NOT_CAP
    assert "feed" in e.message


@pytest.mark.parametrize("data", [b"", b"   ", b"<alert><identifier>x</alert>", b"\xef\xbb\xbf<alert"])
def test_malformed(data: bytes) -> None:
    assert error_of(data).kind is CapErrorKind.MALFORMED_XML


def test_malformed_names_the_line() -> None:
    data = b'<?xml version="1.0"?>\n<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">\n'
    data += b"<identifier>x</sender>\n"
    e = error_of(data)
    assert e.kind is CapErrorKind.MALFORMED_XML
    assert "第 3 行" in e.message


def test_missing_identifier_message() -> None:
    e = error_of(corpus("missing-identifier.xml"))
    assert e.kind is CapErrorKind.MISSING_FIELD
    assert "identifier" in e.message and "请检查发布系统输出" in e.message


@pytest.mark.parametrize("field", ["sender", "sent", "status", "msgType"])
def test_missing_required_alert_fields(field: str) -> None:
    data = alert()
    start = data.index(f"<{field}>".encode())
    end = data.index(f"</{field}>".encode()) + len(field) + 3
    e = error_of(data[:start] + data[end:])
    assert e.kind is CapErrorKind.MISSING_FIELD
    assert field in e.message
    assert e.identifier == "53018141600000_20250712043000"


def test_missing_scope_defaults_to_public_with_warning() -> None:
    a = parse_cap(alert().replace(b"<scope>Public</scope>", b""))
    assert a.scope is CapScope.PUBLIC
    assert any("scope" in w for w in a.warnings)


def test_enum_case_tolerated_with_warning_and_bad_value_refused() -> None:
    a = parse_cap(alert(status="actual", msg_type="ALERT"))
    assert (a.status, a.msg_type) == (CapStatus.ACTUAL, CapMsgType.ALERT)
    assert len(a.warnings) == 2
    e = error_of(alert(status="Live"))
    assert e.kind is CapErrorKind.BAD_VALUE
    assert "Live" in e.message and "Actual" in e.message


def test_info_enums_tolerant() -> None:
    doc = alert(info(severity="Very Severe")).replace(b"<certainty>Unknown</certainty>", b"")
    doc = doc.replace(b"<urgency>Unknown</urgency>", b"<urgency>immediate</urgency>")
    i = parse_cap(doc).infos[0]
    assert (i.urgency, i.severity, i.certainty) == ("Immediate", "Unknown", "Unknown")
    assert parse_cap(doc.replace(b"<category>", b"<certainty>Very Likely</certainty><category>")).infos[
        0
    ].certainty == "Likely"


@pytest.mark.parametrize(
    ("raw", "expected", "warns"),
    [
        ("2025-07-12T04:30:00+08:00", datetime(2025, 7, 12, 4, 30, tzinfo=BJ), False),
        ("2025-07-11T20:30:00Z", datetime(2025, 7, 11, 20, 30, tzinfo=UTC), False),
        ("2025-07-11T20:30:00-00:00", datetime(2025, 7, 11, 20, 30, tzinfo=UTC), False),
        ("2025-07-12 04:30:00", datetime(2025, 7, 12, 4, 30, tzinfo=BJ), True),
    ],
)
def test_times(raw: str, expected: datetime, warns: bool) -> None:
    a = parse_cap(alert(sent=raw))
    assert a.sent == expected
    assert bool(a.warnings) is warns


def test_bad_time() -> None:
    e = error_of(alert(sent="12/07/2025 04:30"))
    assert e.kind is CapErrorKind.BAD_VALUE
    assert "sent" in e.message and "12/07/2025" in e.message


def test_references_parsed() -> None:
    a = parse_cap(corpus("cancel.xml"))
    assert a.msg_type is CapMsgType.CANCEL
    assert a.references == (
        ("Anning_Meteorological_Observatory", "53018141600000_20250712043000", "2025-07-12T04:30:00+08:00"),
        ("Anning_Meteorological_Observatory", "53018141600000_20250712060000", "2025-07-12T06:00:00+08:00"),
    )


def test_bad_reference() -> None:
    e = error_of(alert(references="Anning,53018141600000_20250712043000"))
    assert e.kind is CapErrorKind.BAD_VALUE
    assert "references" in e.message


def test_info_quirks_tolerated() -> None:
    minimal = (
        "<info><event>暴雨</event><headline>安宁市气象台发布暴雨红色预警</headline>"
        "<area><areaDesc>安宁市</areaDesc></area></info>"
    )
    a = parse_cap(alert(minimal))
    i = a.infos[0]
    assert (i.language, i.urgency, i.severity, i.certainty) == ("", "Unknown", "Unknown", "Unknown")
    assert i.category == ()
    assert len(a.warnings) == 3


def test_parameters_resources_signature() -> None:
    audio = base64.b64encode(b"ID3fake-mp3").decode()
    extra = (
        "<parameter><valueName>WarningColour</valueName><value>Red</value></parameter>"
        "<resource><resourceDesc>预警音频</resourceDesc><mimeType>audio/mpeg</mimeType><size>11</size>"
        f"<derefUri>{audio[:8]}\n  {audio[8:]}</derefUri><digest>abc</digest></resource>"
        "<resource><resourceDesc>图标</resourceDesc><mimeType>image/png</mimeType>"
        "<uri>http://example.invalid/red.png</uri></resource>"
    )
    sig = '<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/></Signature>'
    a = parse_cap(alert(info(extra=extra), extra=sig))
    i = a.infos[0]
    assert i.parameters == (("WarningColour", "Red"),)
    assert i.resources[0].deref_uri == b"ID3fake-mp3"
    assert (i.resources[0].mime, i.resources[0].size, i.resources[0].digest) == ("audio/mpeg", 11, "abc")
    assert i.resources[1].uri == "http://example.invalid/red.png"
    assert a.signature_present
    assert not parse_cap(alert()).signature_present


def test_bad_base64() -> None:
    extra = (
        "<resource><resourceDesc>a</resourceDesc><mimeType>audio/mpeg</mimeType>"
        "<derefUri>@@@</derefUri></resource>"
    )
    assert error_of(alert(info(extra=extra))).kind is CapErrorKind.BAD_VALUE


# --- polygons and circles -------------------------------------------------------------------------


def test_polygon_and_circle() -> None:
    a = parse_cap(corpus("polygon-circle.xml"))
    area = a.infos[1].areas[0]
    ring = ((24.93, 102.30), (24.99, 102.38), (24.85, 102.45), (24.80, 102.33), (24.93, 102.30))
    assert area.polygons == (ring,)
    assert area.circles == ((24.92, 102.48, 8.5),)
    assert area.geocodes == ()


def test_polygon_with_spaces_after_commas() -> None:
    poly = "<polygon>24.9, 102.3 25.0, 102.4 24.8, 102.4 24.9, 102.3</polygon>"
    area = parse_cap(alert(info(area_extra=poly))).infos[0].areas[0]
    assert area.polygons[0][0] == (24.9, 102.3)


@pytest.mark.parametrize(
    ("name_or_polygon", "part"),
    [
        ("bad-polygon-open.xml", "必须闭合"),
        ("bad-polygon-swapped.xml", "经纬度可能写反了"),
        ("24.9,102.3 25.0,102.4 24.9,102.3", "至少需要 4 个点"),
        ("24.9,102.3 25.0 102.4 24.8,102.4 24.9,102.3", "纬度,经度"),
        ("24.9,102.3 24.9,102.3 25.0,102.4 24.9,102.3", "少于 3 个"),
        ("24.9,102.3 25.0,190.4 24.8,102.4 24.9,102.3", "超出范围"),
        ("a,b c,d e,f a,b", "纬度,经度"),
    ],
)
def test_bad_polygons(name_or_polygon: str, part: str) -> None:
    if name_or_polygon.endswith(".xml"):
        data = corpus(name_or_polygon)
    else:
        data = alert(info(area_extra=f"<polygon>{name_or_polygon}</polygon>"))
    e = error_of(data)
    assert e.kind is CapErrorKind.BAD_POLYGON
    assert part in e.message
    assert "区域「安宁市" in e.message and "行" in e.message


@pytest.mark.parametrize("circle", ["24.9,102.3", "24.9,102.3 -1", "24.9,102.3 km", "95,102.3 5"])
def test_bad_circles(circle: str) -> None:
    e = error_of(alert(info(area_extra=f"<circle>{circle}</circle>")))
    assert e.kind is CapErrorKind.BAD_CIRCLE
    assert circle in e.message


def test_error_str_has_kind_and_identifier() -> None:
    e = error_of(alert(info(area_extra="<circle>x</circle>")))
    assert str(e).startswith("[bad_circle][53018141600000_20250712043000] ")


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("2025-07-12T04:30:00+08:00", "2025-07-12T04:30:00+08:00"),
        ("2025-07-11T20:30:00Z", "2025-07-11T20:30:00+00:00"),
        ("2025-07-11T20:30:00-00:00", "2025-07-11T20:30:00+00:00"),
        ("2025-07-12T04:30:00", "2025-07-12T04:30:00+08:00"),
    ],
)
def test_reference_sent_matches_original_source_key(written: str, canonical: str) -> None:
    original = parse_cap(alert(sent=written))
    reference = f"{original.sender},{original.identifier},{written}"
    update = parse_cap(alert(msg_type="Update", references=reference))
    assert update.references[0][2] == canonical == original.sent.isoformat()


def test_unparsable_reference_time_kept_with_warning() -> None:
    a = parse_cap(alert(msg_type="Update", references="S,ID,yesterday"))
    assert a.references == (("S", "ID", "yesterday"),)
    assert any("references" in w for w in a.warnings)
