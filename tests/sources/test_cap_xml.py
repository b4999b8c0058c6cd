"""Safe XML loading with libxml2 (lxml): the DTD refusal cannot be dodged through the prolog, libxml2
never guesses an encoding, its own depth limit is reported as TOO_DEEP, and text is read as before."""

from __future__ import annotations

import codecs

import pytest

from broadcast.sources.cap.errors import CapError, CapErrorKind
from broadcast.sources.cap.parse import parse_cap
from tests.sources.cap_doc import alert, info

DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def body() -> bytes:
    return alert().split(b"?>", 1)[1]


def kind_of(data: bytes, **kw: int) -> CapErrorKind:
    with pytest.raises(CapError) as e:
        parse_cap(data, **kw)
    return e.value.kind


@pytest.mark.parametrize(
    "prolog",
    [
        b"",
        b"\n\n   ",
        b"<!-- a comment -->\n",
        b"<!-- <alert> inside a comment -->",
        b"<?xml-stylesheet href='x.xsl'?>\n<!-- c -->\n",
    ],
)
def test_doctype_anywhere_in_the_prolog_is_refused(prolog: bytes) -> None:
    doctype = b'<!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
    assert kind_of(DECL + prolog + doctype + body()) is CapErrorKind.FORBIDDEN_DTD


def test_doctype_text_inside_cdata_is_just_text() -> None:
    desc = "<![CDATA[发布系统误把 <!DOCTYPE html> 写进了正文]]>"
    a = parse_cap(alert(info(description=desc)))
    assert a.infos[0].description == "发布系统误把 <!DOCTYPE html> 写进了正文"


def test_doctype_after_the_root_is_malformed() -> None:
    data = alert().replace(b"<identifier>", b"<!DOCTYPE x><identifier>", 1)
    assert kind_of(data) is CapErrorKind.MALFORMED_XML


def test_undeclared_entity_is_malformed_not_resolved() -> None:
    data = alert(info(description="&secret;"))
    assert kind_of(data) is CapErrorKind.MALFORMED_XML


def test_predefined_and_character_entities_are_read() -> None:
    a = parse_cap(alert(info(description="雨&amp;风 &#x4e2d;&#22269; &lt;注意&gt;")))
    assert a.infos[0].description == "雨&风 中国 <注意>"


def test_nesting_beyond_libxml2s_own_limit_is_too_deep() -> None:
    deep = b"<note>" * 300 + b"x" + b"</note>" * 300
    data = alert().replace(b"<identifier>", deep + b"<identifier>", 1)
    with pytest.raises(CapError) as e:
        parse_cap(data)
    assert e.value.kind is CapErrorKind.TOO_DEEP and "32" in e.value.message


def test_depth_counts_foreign_elements_too() -> None:
    sig = "<Signature xmlns='http://www.w3.org/2000/09/xmldsig#'>" + "<a>" * 40 + "</a>" * 40 + "</Signature>"
    assert kind_of(alert(extra=sig)) is CapErrorKind.TOO_DEEP


def test_utf16_without_bom_is_not_guessed() -> None:
    data = alert().decode("utf-8").replace('encoding="UTF-8"', "").encode("utf-16-le")
    assert kind_of(data) in (CapErrorKind.BAD_ENCODING, CapErrorKind.MALFORMED_XML)  # read as UTF-8
    assert parse_cap(codecs.BOM_UTF16_LE + data).identifier  # with its BOM it is read


def test_nul_byte_is_malformed() -> None:
    assert kind_of(alert().replace(b"<sender>", b"<sender>\x00", 1)) is CapErrorKind.MALFORMED_XML


def test_invalid_utf8_names_its_line() -> None:
    data = alert(info(description="正常")).replace("正常".encode(), b"\xff\xfe", 1)
    with pytest.raises(CapError) as e:
        parse_cap(data)
    assert e.value.kind is CapErrorKind.BAD_ENCODING and "第 2 行" in e.value.message


def test_comments_and_processing_instructions_inside_text_are_dropped() -> None:
    a = parse_cap(alert(info(headline="暴雨<!-- 注释 -->红色<?pi x?>预警")))
    assert a.infos[0].headline == "暴雨红色预警"


def test_mixed_content_keeps_own_text_only() -> None:
    a = parse_cap(alert(info(headline="暴雨<b>（加粗）</b>红色预警")))
    assert a.infos[0].headline == "暴雨红色预警"


def test_unnamespaced_child_in_a_cap_document_is_tolerated() -> None:
    data = alert().replace(b"</scope>", '</scope><note xmlns="">备注</note>'.encode(), 1)
    assert parse_cap(data).note == "备注"


def test_foreign_element_with_a_cap_name_is_ignored() -> None:
    data = alert().replace(b"</scope>", b'</scope><x:note xmlns:x="urn:other">not CAP</x:note>', 1)
    assert parse_cap(data).note == ""


def test_line_numbers_in_messages() -> None:
    data = alert(sent="soon").replace(b"<sent>", b"\n\n<sent>", 1)
    with pytest.raises(CapError) as e:
        parse_cap(data)
    assert e.value.kind is CapErrorKind.BAD_VALUE and "第 4 行" in e.value.message
