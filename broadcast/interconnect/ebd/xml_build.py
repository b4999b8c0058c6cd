"""EBD XML writer (GY/T 384): `build_ebd(ebd) -> bytes`.

Emits the 2018+ form only: UTF-8, root `<EBD xmlns:xs=…>`, header elements in the documented order,
times `YYYY-MM-DD HH:MM:SS` Beijing time, 23-digit ids as given. Must never do I/O, read the clock,
sign, or emit legacy (2016-draft) element names.
"""

from __future__ import annotations

from datetime import datetime
from xml.sax.saxutils import escape

from broadcast.clock import BEIJING
from broadcast.interconnect.ebd.model import (
    EBD,
    EBM,
    Body,
    ConnectionCheck,
    Coverage,
    Dispatch,
    EBDResponse,
    EBMBrdItem,
    EBMBrdLog,
    EBMStateRequest,
    EBMStateResponse,
    InfoBody,
    MsgBasicInfo,
    MsgContent,
    Node,
    OMDRequest,
    ReportParams,
    ResBrdItem,
    ResourceInfo,
    StateBody,
)

XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
ROOT_OPEN = '<EBD xmlns:xs="http://www.w3.org/2001/XMLSchema">'
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# ---------------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------------

# A tiny element tree for output: (tag, text) or (tag, [children]); None children are skipped.
El = tuple[str, "str | list[El | None]"]


def format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("EBD times must be timezone-aware datetimes")
    return value.astimezone(BEIJING).strftime(TIME_FORMAT)


def _leaf(tag: str, value: str | int | datetime | None) -> El | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (tag, format_time(value))
    return (tag, str(int(value)) if isinstance(value, int) else value)


def _ebrid(tag: str, ebrid: str | None) -> El | None:
    return None if ebrid is None else (tag, [("EBRID", ebrid)])


def _write(out: list[str], el: El, depth: int) -> None:
    tag, value = el
    pad = "  " * depth
    if isinstance(value, str):
        out.append(f"{pad}<{tag}>{escape(value)}</{tag}>\n")
        return
    out.append(f"{pad}<{tag}>\n")
    for child in value:
        if child is not None:
            _write(out, child, depth + 1)
    out.append(f"{pad}</{tag}>\n")


def _node_el(node: Node) -> El:
    if node.children:
        return (node.tag, [_node_el(c) for c in node.children])
    return (node.tag, node.text)


def _basic_el(b: MsgBasicInfo) -> El:
    return (
        "MsgBasicInfo",
        [
            _leaf("MsgType", int(b.msg_type)),
            _leaf("SenderName", b.sender_name),
            _leaf("SenderCode", b.sender_code),
            _leaf("SendTime", b.send_time),
            _leaf("EventType", b.event_type),
            _leaf("Severity", b.severity),
            _leaf("StartTime", b.start_time),
            _leaf("EndTime", b.end_time),
        ],
    )


def _content_el(c: MsgContent) -> El:
    aux: list[El | None] = [
        (
            "Auxiliary",
            [
                _leaf("AuxiliaryType", a.aux_type),
                _leaf("AuxiliaryDesc", a.desc),
                _leaf("Size", a.size),
                _leaf("Digest", a.digest),
            ],
        )
        for a in c.auxiliaries
    ]
    return (
        "MsgContent",
        [
            _leaf("LanguageCode", c.language_code),
            _leaf("MsgTitle", c.title),
            _leaf("MsgDesc", c.desc),
            _leaf("AreaCode", ",".join(c.area_codes)),
            _leaf("ProgramNum", c.program_num),
            *aux,
        ],
    )


def _dispatch_el(d: Dispatch) -> El:
    return (
        "Dispatch",
        [
            _leaf("LanguageCode", d.language_code),
            *[_ebrid("EBRPS", x) for x in d.ebrps],
            *[_ebrid("EBRST", x) for x in d.ebrst],
            *[_ebrid("EBRAS", x) for x in d.ebras],
            *[
                ("EBRBS", [_leaf("BrdSysType", b.brd_sys_type), _leaf("BrdSysInfo", b.brd_sys_info)])
                for b in d.ebrbs
            ],
        ],
    )


def _coverage_el(c: Coverage | None) -> El | None:
    if c is None:
        return None
    return (
        "Coverage",
        [
            _leaf("CoverageRate", c.coverage_rate),
            _leaf("AreaCode", ",".join(c.area_codes) if c.area_codes else None),
            _leaf("ResBrdStat", c.res_brd_stat),
        ],
    )


def _res_brd_info_el(items: tuple[ResBrdItem, ...]) -> El | None:
    if not items:
        return None
    return (
        "ResBrdInfo",
        [
            (
                "ResBrdItem",
                [
                    _ebrid("EBRPS", i.ebrps_id),
                    _ebrid("EBRST", i.ebrst_id),
                    _ebrid("EBRAS", i.ebras_id),
                    *[
                        (
                            "EBRBS",
                            [
                                _leaf("RptTime", s.rpt_time),
                                _leaf("BrdSysType", s.brd_sys_type),
                                _leaf("BrdSysInfo", s.brd_sys_info),
                                _leaf("StartTime", s.start_time),
                                _leaf("EndTime", s.end_time),
                                _leaf("FileURL", s.file_url),
                                _leaf("BrdStateCode", s.brd_state_code),
                                _leaf("BrdStateDesc", s.brd_state_desc),
                            ],
                        )
                        for s in i.ebrbs
                    ],
                ],
            )
            for i in items
        ],
    )


def _params_el(p: ReportParams | None) -> El | None:
    if p is None:
        return None
    return (
        "Params",
        [
            _leaf("RptStartTime", p.rpt_start_time),
            _leaf("RptEndTime", p.rpt_end_time),
            _leaf("RptType", p.rpt_type.value if p.rpt_type is not None else None),
        ],
    )


def _info_record_el(tag: str, r: ResourceInfo) -> El:
    return (
        tag,
        [
            _leaf("RptTime", r.rpt_time),
            _leaf("RptType", r.rpt_type),
            _ebrid("RelatedEBRPS", r.related_ebrps_id),
            _ebrid("RelatedEBRST", r.related_ebrst_id),
            _ebrid("RelatedEBRAS", r.related_ebras_id),
            _leaf("EBRID", r.ebrid),
            _leaf("EBRName", r.name),
            _leaf("Address", r.address),
            _leaf("Contact", r.contact),
            _leaf("PhoneNumber", r.phone_number),
            _leaf("URL", r.url),
            _leaf("Longitude", r.longitude),
            _leaf("Latitude", r.latitude),
            *[_node_el(n) for n in r.extra],
        ],
    )


def _body_el(body: Body) -> El:
    tag = body.TYPE.value
    if isinstance(body, EBM):
        rel = body.related
        return (
            tag,
            [
                _leaf("EBMVersion", body.ebm_version),
                _leaf("EBMID", body.ebm_id),
                None
                if rel is None
                else ("RelatedInfo", [_leaf("EBMID", rel.ebm_id), _leaf("EBIID", rel.ebi_id)]),
                _basic_el(body.basic),
                _content_el(body.content),
                *[_dispatch_el(d) for d in body.dispatch],
            ],
        )
    if isinstance(body, EBMStateRequest):
        return (tag, [("EBM", [("EBMID", body.ebm_id)])])
    if isinstance(body, EBMStateResponse):
        return (
            tag,
            [
                _leaf("RptTime", body.rpt_time),
                ("EBM", [("EBMID", body.ebm_id)]),
                _leaf("BrdStateCode", body.brd_state_code),
                _leaf("BrdStateDesc", body.brd_state_desc),
                _coverage_el(body.coverage),
                _res_brd_info_el(body.res_brd_info),
            ],
        )
    if isinstance(body, EBMBrdLog):
        return (tag, [_params_el(body.params), *[_brd_item_el(i) for i in body.items]])
    if isinstance(body, OMDRequest):
        return (tag, [_leaf("OMDType", body.omd_type.value), _params_el(body.params)])
    if isinstance(body, InfoBody):
        return (tag, [_params_el(body.params), *[_info_record_el(body.RECORD_TAG, r) for r in body.records]])
    if isinstance(body, StateBody):
        return (
            tag,
            [
                _params_el(body.params),
                *[
                    (
                        body.RECORD_TAG,
                        [
                            _leaf("RptTime", r.rpt_time),
                            _leaf("EBRID", r.ebrid),
                            _leaf("StateCode", r.state_code),
                            _leaf("StateDesc", r.state_desc),
                        ],
                    )
                    for r in body.records
                ],
            ],
        )
    if isinstance(body, ConnectionCheck):
        return (tag, [_leaf("RptTime", body.rpt_time)])
    if isinstance(body, EBDResponse):
        return (tag, [_leaf("ResultCode", int(body.result_code)), _leaf("ResultDesc", body.result_desc)])
    raise TypeError(f"not an EBD body: {type(body).__name__}")


def _brd_item_el(i: EBMBrdItem) -> El:
    return (
        "EBMBrdItem",
        [
            (
                "EBM",
                [
                    _leaf("EBMID", i.ebm_id),
                    None if i.basic is None else _basic_el(i.basic),
                    None if i.content is None else _content_el(i.content),
                ],
            ),
            None
            if not i.units
            else (
                "UnitInfo",
                [
                    (
                        "Unit",
                        [
                            _ebrid("EBRPS", u.ebrps_id),
                            _leaf("UnitId", u.unit_id),
                            _leaf("UnitName", u.unit_name),
                            _leaf("PersonID", u.person_id),
                            _leaf("PersonName", u.person_name),
                        ],
                    )
                    for u in i.units
                ],
            ),
            _leaf("BrdStateCode", i.brd_state_code),
            _leaf("BrdStateDesc", i.brd_state_desc),
            _coverage_el(i.coverage),
            _res_brd_info_el(i.res_brd_info),
        ],
    )


def build_ebd(ebd: EBD) -> bytes:
    """Serialise a packet: UTF-8, `<EBD xmlns:xs=…>`, header in documented order, Beijing times."""
    h = ebd.header
    out = [XML_DECL, ROOT_OPEN, "\n"]
    header: list[El | None] = [
        ("EBDVersion", h.version),
        ("EBDID", h.ebd_id),
        ("EBDType", ebd.ebd_type.value),
        ("SRC", [("EBRID", h.src_ebrid), _leaf("URL", h.src_url)]),
        ("DEST", [("EBRID", h.dest_ebrid)]),
        ("EBDTime", format_time(h.time)),
        None if h.related_ebd_id is None else ("RelatedEBD", [("EBDID", h.related_ebd_id)]),
        _body_el(ebd.body),
    ]
    for el in header:
        if el is not None:
            _write(out, el, 1)
    out.append("</EBD>\n")
    return "".join(out).encode("utf-8")
