"""EBD XML reader (GY/T 384): `parse_ebd(data) -> EBD`.

Parses leniently what the field sends: EBDVersion "1"/"1.0", any element order, namespaced or plain tags
(Lishui puts the EBD in the XMLSchema namespace), the 2016-draft aliases Lishui uses (RealtedEBD,
RelatedEBM, SentTime, EBEID, EBEAS/EBEBS), missing optional parts. Parsing is safe: size limit, no DTD,
no entities (defusedxml). Errors are `EbdError` whose kind maps to EBDResponse ResultCode 2 or 3.

Must never do I/O, read the clock, verify signatures or touch tar packages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from broadcast.clock import BEIJING
from broadcast.interconnect.ebd.model import (
    EBD,
    EBM,
    INFO_BODIES,
    STATE_BODIES,
    Auxiliary,
    Body,
    ConnectionCheck,
    Coverage,
    Dispatch,
    DispatchBrdSys,
    EbdError,
    EbdErrorKind,
    EBDHeader,
    EBDResponse,
    EBDType,
    EBMBrdItem,
    EBMBrdLog,
    EBMStateRequest,
    EBMStateResponse,
    MsgBasicInfo,
    MsgContent,
    Node,
    OMDRequest,
    OMDType,
    RelatedInfo,
    ReportParams,
    ResBrdItem,
    ResBrdSystem,
    ResourceInfo,
    ResourceState,
    ResultCode,
    RptType,
    Unit,
)
from broadcast.model import MsgType

MAX_EBD_BYTES = 4 * 1024 * 1024

# ---------------------------------------------------------------------------------------------
# parse
# ---------------------------------------------------------------------------------------------

_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y%m%d%H%M%S")
_FRACTION = re.compile(r"\.\d+$")


def parse_time(text: str) -> datetime:
    """Parse an EBD time; naive times are Beijing time. ValueError when unreadable."""
    text = _FRACTION.sub("", text.strip())
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=BEIJING)
        except ValueError:
            continue
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=BEIJING)


def _strip_ns(root: Element) -> None:
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.rsplit("}", 1)[1]


class _Reader:
    """Element accessors that raise EbdError naming the element path and the EBDID."""

    def __init__(self, ebd_id: str | None = None) -> None:
        self.ebd_id = ebd_id

    def fail(self, kind: EbdErrorKind, message: str, where: str) -> EbdError:
        return EbdError(kind, message, ebd_id=self.ebd_id, where=where)

    @staticmethod
    def child(el: Element | None, *tags: str) -> Element | None:
        if el is None:
            return None
        for tag in tags:
            found = el.find(tag)
            if found is not None:
                return found
        return None

    @staticmethod
    def children(el: Element, tag: str) -> Iterator[Element]:
        return iter(el.findall(tag))

    def opt(self, el: Element | None, *tags: str) -> str | None:
        found = self.child(el, *tags)
        if found is None or found.text is None:
            return None
        text = found.text.strip()
        return text or None

    def missing(self, where: str, tag: str) -> EbdError:
        return self.fail(EbdErrorKind.MISSING, f"{where}/{tag} is missing or empty", f"{where}/{tag}")

    def req(self, el: Element | None, where: str, *tags: str) -> str:
        value = self.opt(el, *tags)
        if value is None:
            raise self.missing(where, tags[0])
        return value

    def opt_time(self, el: Element | None, where: str, *tags: str) -> datetime | None:
        value = self.opt(el, *tags)
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError:
            raise self.fail(
                EbdErrorKind.INVALID_VALUE,
                f"{where}/{tags[0]} is not a time: {value!r}",
                f"{where}/{tags[0]}",
            ) from None

    def req_time(self, el: Element | None, where: str, *tags: str) -> datetime:
        value = self.opt_time(el, where, *tags)
        if value is None:
            raise self.missing(where, tags[0])
        return value

    def opt_int(self, el: Element | None, where: str, *tags: str) -> int | None:
        value = self.opt(el, *tags)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise self.fail(
                EbdErrorKind.INVALID_VALUE,
                f"{where}/{tags[0]} is not a number: {value!r}",
                f"{where}/{tags[0]}",
            ) from None

    def req_int(self, el: Element | None, where: str, *tags: str) -> int:
        value = self.opt_int(el, where, *tags)
        if value is None:
            raise self.missing(where, tags[0])
        return value

    def ebrid(self, el: Element | None, *tags: str) -> str | None:
        """`<X><EBRID>…</EBRID></X>` (2016 draft: EBEID)."""
        return self.opt(self.child(el, *tags), "EBRID", "EBEID")

    def ebm_id(self, el: Element | None, where: str) -> str:
        value = self.req(el, where, "EBMID")
        if not value.isdigit() or len(value) not in (35, 30):
            message = f"{where}/EBMID must be 35 digits (or legacy 30), got {value!r}"
            raise self.fail(EbdErrorKind.INVALID_VALUE, message, f"{where}/EBMID")
        return value


def _areas(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(a.strip() for a in re.split(r"[,，;\s]+", text) if a.strip())


def _node(el: Element) -> Node:
    return Node(el.tag, (el.text or "").strip(), tuple(_node(c) for c in el))


def _basic(r: _Reader, el: Element | None, where: str, outer: Element | None = None) -> MsgBasicInfo:
    where = f"{where}/MsgBasicInfo"
    if el is None:
        raise r.fail(EbdErrorKind.MISSING, f"{where} is missing", where)
    msg_type_num = r.req_int(el, where, "MsgType")
    try:
        msg_type = MsgType(msg_type_num)
    except ValueError:
        raise r.fail(
            EbdErrorKind.INVALID_VALUE, f"{where}/MsgType {msg_type_num} is not 1–5", f"{where}/MsgType"
        ) from None
    start = r.opt_time(el, where, "StartTime") or r.opt_time(outer, where, "StartTime")
    end = r.opt_time(el, where, "EndTime") or r.opt_time(outer, where, "EndTime")
    if start is None or end is None:
        raise r.fail(EbdErrorKind.MISSING, f"{where}/StartTime and EndTime are required", where)
    return MsgBasicInfo(
        msg_type=msg_type,
        sender_name=r.opt(el, "SenderName") or "",
        sender_code=r.opt(el, "SenderCode") or "",
        send_time=r.req_time(el, where, "SendTime", "SentTime"),
        event_type=r.req(el, where, "EventType"),
        severity=r.opt_int(el, where, "Severity") or 0,
        start_time=start,
        end_time=end,
    )


def _content(r: _Reader, el: Element | None, where: str) -> MsgContent:
    where = f"{where}/MsgContent"
    if el is None:
        raise r.fail(EbdErrorKind.MISSING, f"{where} is missing", where)
    aux = tuple(
        Auxiliary(
            aux_type=r.opt_int(a, where, "AuxiliaryType") or 0,
            desc=r.opt(a, "AuxiliaryDesc") or "",
            size=r.opt_int(a, where, "Size"),
            digest=r.opt(a, "Digest"),
        )
        for a in r.children(el, "Auxiliary")
    )
    return MsgContent(
        language_code=r.opt(el, "LanguageCode") or "zho",
        title=r.opt(el, "MsgTitle") or "",
        desc=r.opt(el, "MsgDesc") or "",
        area_codes=_areas(r.opt(el, "AreaCode")),
        program_num=r.opt(el, "ProgramNum"),
        auxiliaries=aux,
    )


def _dispatch(r: _Reader, el: Element) -> Dispatch:
    def ids(*tags: str) -> tuple[str, ...]:
        out: list[str] = []
        for tag in tags:
            out += [v for v in (r.opt(c, "EBRID", "EBEID") for c in r.children(el, tag)) if v]
        return tuple(out)

    systems = tuple(
        DispatchBrdSys(r.opt(b, "BrdSysType") or "", r.opt(b, "BrdSysInfo") or "")
        for tag in ("EBRBS", "EBEBS")
        for b in r.children(el, tag)
    )
    return Dispatch(r.opt(el, "LanguageCode"), ids("EBRPS"), ids("EBRST"), ids("EBRAS", "EBEAS"), systems)


def _coverage(r: _Reader, el: Element | None) -> Coverage | None:
    if el is None:
        return None
    rate = r.opt(el, "CoverageRate")
    if rate is None:
        percent = r.opt(el, "CoveragePercent")
        if percent is not None:
            try:
                rate = f"{float(percent.rstrip('%')) / 100:g}"
            except ValueError:
                rate = percent
    return Coverage(rate, _areas(r.opt(el, "AreaCode")), r.opt(el, "ResBrdStat"))


def _res_brd_info(r: _Reader, el: Element | None, where: str) -> tuple[ResBrdItem, ...]:
    if el is None:
        return ()
    where = f"{where}/ResBrdInfo"
    return tuple(
        ResBrdItem(
            ebrps_id=r.ebrid(item, "EBRPS"),
            ebrst_id=r.ebrid(item, "EBRST"),
            ebras_id=r.ebrid(item, "EBRAS"),
            ebrbs=tuple(
                ResBrdSystem(
                    rpt_time=r.opt_time(s, where, "RptTime"),
                    brd_sys_type=r.opt(s, "BrdSysType"),
                    brd_sys_info=r.opt(s, "BrdSysInfo"),
                    start_time=r.opt_time(s, where, "StartTime"),
                    end_time=r.opt_time(s, where, "EndTime"),
                    file_url=r.opt(s, "FileURL"),
                    brd_state_code=r.opt_int(s, where, "BrdStateCode"),
                    brd_state_desc=r.opt(s, "BrdStateDesc"),
                )
                for s in r.children(item, "EBRBS")
            ),
        )
        for item in r.children(el, "ResBrdItem")
    )


def _params(r: _Reader, el: Element | None, where: str) -> ReportParams | None:
    if el is None:
        return None
    where = f"{where}/Params"
    rpt_type_text = r.opt(el, "RptType")
    rpt_type: RptType | None = None
    if rpt_type_text is not None:
        lookup = {t.value.lower(): t for t in RptType}
        if rpt_type_text.lower() not in lookup:
            raise r.fail(
                EbdErrorKind.INVALID_VALUE,
                f"{where}/RptType must be Full or Incremental, got {rpt_type_text!r}",
                f"{where}/RptType",
            )
        rpt_type = lookup[rpt_type_text.lower()]
    return ReportParams(r.opt_time(el, where, "RptStartTime"), r.opt_time(el, where, "RptEndTime"), rpt_type)


_INFO_KNOWN = frozenset(
    {
        "RptTime",
        "RptType",
        "RelatedEBRPS",
        "RelatedEBRST",
        "RelatedEBRAS",
        "EBRID",
        "EBRName",
        "Address",
        "Contact",
        "PhoneNumber",
        "URL",
        "Longitude",
        "Latitude",
    }
)


def _info_record(r: _Reader, el: Element, where: str) -> ResourceInfo:
    return ResourceInfo(
        ebrid=r.req(el, where, "EBRID"),
        name=r.opt(el, "EBRName") or "",
        rpt_time=r.opt_time(el, where, "RptTime"),
        rpt_type=r.opt(el, "RptType") or "Sync",
        related_ebrps_id=r.ebrid(el, "RelatedEBRPS"),
        related_ebrst_id=r.ebrid(el, "RelatedEBRST"),
        related_ebras_id=r.ebrid(el, "RelatedEBRAS"),
        longitude=r.opt(el, "Longitude"),
        latitude=r.opt(el, "Latitude"),
        address=r.opt(el, "Address"),
        contact=r.opt(el, "Contact"),
        phone_number=r.opt(el, "PhoneNumber"),
        url=r.opt(el, "URL"),
        extra=tuple(_node(c) for c in el if c.tag not in _INFO_KNOWN),
    )


def _parse_body(r: _Reader, ebd_type: EBDType, el: Element) -> Body:
    where = ebd_type.value
    if ebd_type is EBDType.EBM:
        related_el = r.child(el, "RelatedInfo")
        related = None
        if related_el is not None:
            related = RelatedInfo(r.opt(related_el, "EBMID"), r.opt(related_el, "EBIID"))
        elif (legacy := r.opt(r.child(el, "RelatedEBM"), "EBMID")) is not None:
            related = RelatedInfo(ebm_id=legacy)
        return EBM(
            ebm_id=r.ebm_id(el, where),
            basic=_basic(r, r.child(el, "MsgBasicInfo"), where, outer=el),
            content=_content(r, r.child(el, "MsgContent"), where),
            related=related if related != RelatedInfo() else None,
            dispatch=tuple(_dispatch(r, d) for d in r.children(el, "Dispatch")),
            ebm_version=r.opt(el, "EBMVersion") or "1",
        )
    if ebd_type is EBDType.EBM_STATE_REQUEST:
        return EBMStateRequest(r.ebm_id(r.child(el, "EBM"), f"{where}/EBM"))
    if ebd_type is EBDType.EBM_STATE_RESPONSE:
        return EBMStateResponse(
            rpt_time=r.req_time(el, where, "RptTime"),
            ebm_id=r.ebm_id(r.child(el, "EBM"), f"{where}/EBM"),
            brd_state_code=r.req_int(el, where, "BrdStateCode"),
            brd_state_desc=r.opt(el, "BrdStateDesc") or "",
            coverage=_coverage(r, r.child(el, "Coverage")),
            res_brd_info=_res_brd_info(r, r.child(el, "ResBrdInfo"), where),
        )
    if ebd_type is EBDType.EBM_BRD_LOG:
        items = []
        for item in r.children(el, "EBMBrdItem"):
            iw = f"{where}/EBMBrdItem"
            ebm = r.child(item, "EBM")
            basic_el, content_el = r.child(ebm, "MsgBasicInfo"), r.child(ebm, "MsgContent")
            units = tuple(
                Unit(
                    r.ebrid(u, "EBRPS"),
                    r.opt(u, "UnitId"),
                    r.opt(u, "UnitName"),
                    r.opt(u, "PersonID"),
                    r.opt(u, "PersonName"),
                )
                for u in r.children(r.child(item, "UnitInfo") or Element("_"), "Unit")
            )
            items.append(
                EBMBrdItem(
                    ebm_id=r.ebm_id(ebm, f"{iw}/EBM"),
                    basic=None if basic_el is None else _basic(r, basic_el, f"{iw}/EBM"),
                    content=None if content_el is None else _content(r, content_el, f"{iw}/EBM"),
                    units=units,
                    brd_state_code=r.opt_int(item, iw, "BrdStateCode"),
                    brd_state_desc=r.opt(item, "BrdStateDesc"),
                    coverage=_coverage(r, r.child(item, "Coverage")),
                    res_brd_info=_res_brd_info(r, r.child(item, "ResBrdInfo"), iw),
                )
            )
        return EBMBrdLog(tuple(items), _params(r, r.child(el, "Params"), where))
    if ebd_type is EBDType.OMD_REQUEST:
        omd_text = r.req(el, where, "OMDType")
        try:
            omd_type = OMDType(omd_text)
        except ValueError:
            raise r.fail(
                EbdErrorKind.INVALID_VALUE,
                f"{where}/OMDType {omd_text!r} is not supported",
                f"{where}/OMDType",
            ) from None
        return OMDRequest(omd_type, _params(r, r.child(el, "Params"), where))
    if ebd_type in INFO_BODIES:
        info_cls = INFO_BODIES[ebd_type]
        records = tuple(
            _info_record(r, c, f"{where}/{info_cls.RECORD_TAG}") for c in r.children(el, info_cls.RECORD_TAG)
        )
        result: Any = info_cls(records, _params(r, r.child(el, "Params"), where))
        return result  # type: ignore[no-any-return]
    if ebd_type in STATE_BODIES:
        state_cls = STATE_BODIES[ebd_type]
        rw = f"{where}/{state_cls.RECORD_TAG}"
        states = tuple(
            ResourceState(
                r.req(c, rw, "EBRID"),
                r.req_int(c, rw, "StateCode"),
                r.opt_time(c, rw, "RptTime"),
                r.opt(c, "StateDesc") or "",
            )
            for c in r.children(el, state_cls.RECORD_TAG)
        )
        state_result: Any = state_cls(states, _params(r, r.child(el, "Params"), where))
        return state_result  # type: ignore[no-any-return]
    if ebd_type is EBDType.CONNECTION_CHECK:
        return ConnectionCheck(r.req_time(el, where, "RptTime"))
    code = r.req_int(el, where, "ResultCode")
    try:
        result_code = ResultCode(code)
    except ValueError:
        raise r.fail(
            EbdErrorKind.INVALID_VALUE, f"{where}/ResultCode {code} is not 0–5", f"{where}/ResultCode"
        ) from None
    return EBDResponse(result_code, r.opt(el, "ResultDesc") or "")


def parse_xml_root(data: bytes, *, max_bytes: int = MAX_EBD_BYTES) -> Element:
    """Safely parse XML bytes (size limit, no DTD/entities) and strip namespaces from the tags."""
    if len(data) > max_bytes:
        raise EbdError(EbdErrorKind.TOO_LARGE, f"document is {len(data)} bytes, limit {max_bytes}")
    try:
        root: Element = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        message = f"DTD or entity declarations are not allowed: {exc}"
        raise EbdError(EbdErrorKind.FORBIDDEN_XML, message) from None
    except (ParseError, ValueError, UnicodeDecodeError) as exc:
        raise EbdError(EbdErrorKind.MALFORMED, f"not well-formed XML: {exc}") from None
    _strip_ns(root)
    return root


def parse_ebd(data: bytes, *, max_bytes: int = MAX_EBD_BYTES) -> EBD:
    """Parse an EBDB document. Raises EbdError; `.result_code` says which EBDResponse to answer."""
    root = parse_xml_root(data, max_bytes=max_bytes)
    if root.tag != "EBD":
        raise EbdError(EbdErrorKind.MALFORMED, f"root element is <{root.tag}>, expected <EBD>")
    r = _Reader()
    r.ebd_id = r.opt(root, "EBDID")
    type_text = r.opt(root, "EBDType")
    if type_text is None:  # lenient: infer from the one body element present
        present = [t for t in EBDType if root.find(t.value) is not None]
        if len(present) != 1:
            raise r.fail(EbdErrorKind.MISSING, "EBDType is missing", "EBDType")
        type_text = present[0].value
    try:
        ebd_type = EBDType(type_text)
    except ValueError:
        message = f"EBDType {type_text!r} is not supported"
        raise r.fail(EbdErrorKind.UNSUPPORTED_TYPE, message, "EBDType") from None
    header = EBDHeader(
        ebd_id=r.req(root, "EBD", "EBDID"),
        src_ebrid=r.req(r.child(root, "SRC"), "EBD/SRC", "EBRID", "EBEID"),
        dest_ebrid=r.req(r.child(root, "DEST"), "EBD/DEST", "EBRID", "EBEID"),
        time=r.req_time(root, "EBD", "EBDTime"),
        src_url=r.opt(r.child(root, "SRC"), "URL"),
        related_ebd_id=r.opt(r.child(root, "RelatedEBD", "RealtedEBD"), "EBDID"),
        version=r.opt(root, "EBDVersion") or "1.0",
    )
    body_el = r.child(root, ebd_type.value)
    if body_el is None:
        raise r.fail(EbdErrorKind.MISSING, f"body element <{ebd_type.value}> is missing", ebd_type.value)
    return EBD(header, _parse_body(r, ebd_type, body_el))
