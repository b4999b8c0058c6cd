"""EBD XML: round trip for every EBDType, header order, lenient parsing of field samples, safe errors."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from ebd_samples import BODIES, CITY, COUNTY, EBD_ID, T0, make_ebd

from broadcast.interconnect.ebd.ids import parse_ebm_id, parse_resource_id
from broadcast.interconnect.ebd.model import EBM, EbdError, EbdErrorKind, EBDType, EBMStateRequest, ResultCode
from broadcast.interconnect.ebd.xml_build import build_ebd
from broadcast.interconnect.ebd.xml_parse import parse_ebd

DATA = Path(__file__).parent.parent / "data" / "ebd"


def test_every_ebd_type_has_a_sample() -> None:
    assert set(BODIES) == set(EBDType)


@pytest.mark.parametrize("ebd_type", list(EBDType), ids=lambda t: t.value)
def test_round_trip(ebd_type: EBDType) -> None:
    packet = make_ebd(BODIES[ebd_type], related=f"10{COUNTY}2026110500000001")
    data = build_ebd(packet)
    parsed = parse_ebd(data)
    assert parsed == packet
    assert parsed.ebd_type is ebd_type
    assert build_ebd(parsed) == data  # stable bytes


def test_header_layout_and_encoding() -> None:
    data = build_ebd(make_ebd(BODIES[EBDType.EBM], related=EBD_ID))
    text = data.decode("utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<EBD xmlns:xs="http://www.w3.org/2001/XMLSchema">')
    top = re.findall(r"^  <(\w+)>", text, re.MULTILINE)
    assert top == ["EBDVersion", "EBDID", "EBDType", "SRC", "DEST", "EBDTime", "RelatedEBD", "EBM"]
    assert "<EBDTime>2026-11-05 09:30:00</EBDTime>" in text
    assert "&amp; 避险 &lt;立即&gt;" in text  # escaped, and UTF-8 Chinese stays readable


def test_times_are_written_in_beijing_time() -> None:
    from datetime import UTC

    packet = make_ebd(BODIES[EBDType.CONNECTION_CHECK])
    utc_packet = replace(packet, header=replace(packet.header, time=T0.astimezone(UTC)))
    assert b"<EBDTime>2026-11-05 09:30:00</EBDTime>" in build_ebd(utc_packet)


def test_naive_time_is_refused_when_building() -> None:
    packet = make_ebd(BODIES[EBDType.CONNECTION_CHECK])
    with pytest.raises(ValueError, match="timezone-aware"):
        build_ebd(replace(packet, header=replace(packet.header, time=T0.replace(tzinfo=None))))


def test_lishui_2016_sample_parses_with_legacy_ids() -> None:
    ebd = parse_ebd((DATA / "lishui_2016_ebm.xml").read_bytes())
    assert ebd.header.version == "1"
    assert ebd.header.related_ebd_id == "100102331100000000012017030100000011"  # "RealtedEBD" typo
    assert parse_resource_id(ebd.header.src_ebrid).is_legacy
    body = ebd.body
    assert isinstance(body, EBM)
    assert parse_ebm_id(body.ebm_id).legacy
    assert body.related is not None and body.related.ebm_id == "010233110000000001201703010001"
    assert body.basic.send_time.hour == 10 and body.basic.send_time.second == 58  # SentTime alias
    assert body.content.area_codes == ("331124000000", "331124100000")
    assert body.content.auxiliaries[0].desc == "EBDR_20170301101500.mp3"
    assert body.dispatch[0].ebras == ("010233112400000002",)  # EBEAS/EBEID
    assert body.dispatch[0].ebrbs[0].brd_sys_type == "0314"


def test_gospell_sample_in_any_element_order() -> None:
    ebd = parse_ebd((DATA / "gospell_state_request.xml").read_bytes())
    assert ebd.ebd_type is EBDType.EBM_STATE_REQUEST
    assert ebd.header.src_url == "http://192.168.100.10:8080/Emergency/receive/ebd.htm"
    assert ebd.header.dest_ebrid == "43415230000000101010101"
    assert isinstance(ebd.body, EBMStateRequest)
    assert ebd.body.ebm_id == "23400000000000103010101201811230001"


def test_missing_ebd_type_is_inferred_from_the_body() -> None:
    data = build_ebd(make_ebd(BODIES[EBDType.CONNECTION_CHECK]))
    data = re.sub(rb"\s*<EBDType>ConnectionCheck</EBDType>", b"", data)
    assert parse_ebd(data).ebd_type is EBDType.CONNECTION_CHECK


def _error(data: bytes) -> EbdError:
    with pytest.raises(EbdError) as info:
        parse_ebd(data)
    return info.value


def test_malformed_xml_is_parse_failure() -> None:
    err = _error(b"<EBD><EBDID>1</EBD>")
    assert err.kind is EbdErrorKind.MALFORMED and err.result_code is ResultCode.PARSE_FAILED
    assert "XML" in err.result_desc


def test_entities_and_dtd_are_refused() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE EBD [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            b"<EBD><EBDID>&b;</EBDID></EBD>")
    err = _error(bomb)
    assert err.kind is EbdErrorKind.FORBIDDEN_XML and err.result_code is ResultCode.PARSE_FAILED


def test_size_limit() -> None:
    data = build_ebd(make_ebd(BODIES[EBDType.EBM]))
    with pytest.raises(EbdError) as info:
        parse_ebd(data, max_bytes=len(data) - 1)
    assert info.value.kind is EbdErrorKind.TOO_LARGE


def test_missing_required_element_is_content_missing_with_ebd_id() -> None:
    data = build_ebd(make_ebd(BODIES[EBDType.EBM]))
    data = re.sub(rb"<EventType>.*?</EventType>", b"", data)
    err = _error(data)
    assert err.kind is EbdErrorKind.MISSING and err.result_code is ResultCode.CONTENT_MISSING
    assert err.ebd_id == EBD_ID and err.where == "EBM/MsgBasicInfo/EventType"


def test_missing_body_and_unknown_type() -> None:
    data = build_ebd(make_ebd(BODIES[EBDType.CONNECTION_CHECK]))
    no_body = re.sub(rb"<ConnectionCheck>.*</ConnectionCheck>", b"", data, flags=re.DOTALL)
    assert _error(no_body).kind is EbdErrorKind.MISSING
    unknown = data.replace(b"<EBDType>ConnectionCheck</EBDType>", b"<EBDType>EBMStreamPortRequest</EBDType>")
    err = _error(unknown)
    assert err.kind is EbdErrorKind.UNSUPPORTED_TYPE and err.result_code is ResultCode.CONTENT_MISSING


@pytest.mark.parametrize("bad", [b"123", b"2026-13-45 99:00:00"])
def test_bad_values_are_reported(bad: bytes) -> None:
    data = build_ebd(make_ebd(BODIES[EBDType.EBM]))
    if bad == b"123":
        data = re.sub(rb"<EBMID>\d+</EBMID>", b"<EBMID>123</EBMID>", data, count=1)
    else:
        data = data.replace(b"<EBDTime>2026-11-05 09:30:00</EBDTime>", b"<EBDTime>" + bad + b"</EBDTime>")
    assert _error(data).kind is EbdErrorKind.INVALID_VALUE


def test_not_an_ebd_root() -> None:
    assert _error(b"<Signature/>").kind is EbdErrorKind.MALFORMED


def test_city_sender_kept_verbatim() -> None:
    assert parse_ebd(build_ebd(make_ebd(BODIES[EBDType.EBM_STATE_REQUEST]))).header.src_ebrid == CITY
