"""CAP 1.2 / 1.1 parsing (OASIS Common Alerting Protocol, 预警 CAP): bytes in, frozen dataclasses out.

Owns: turning one CAP document into a `CapAlert`, safely and tolerantly. Never converts to an EBM (see
`cap.convert`), never does I/O, never reads the clock, never dereferences a URI.

Safety (in `cap.xml`, checked in this order, before anything is interpreted):
- input larger than ``max_bytes`` is refused before any parsing (``TOO_LARGE``);
- any ``<!DOCTYPE`` — and with it every entity declaration (billion laughs) and every external entity
  (XXE, e.g. ``file:///etc/passwd``) — is refused (``FORBIDDEN_DTD``) before the XML parser sees a byte;
- the parse itself is libxml2 (lxml) hardened: no entity resolution, no network, no DTD loading, no
  ``huge_tree``, input always read as UTF-8 (other charsets are decoded here first);
- element nesting deeper than ``max_depth`` is refused (``TOO_DEEP``).

Tolerance (real feeds are messy, the CMA feed is rejected by some strict parsers):
- UTF-8 with or without BOM, UTF-16 with BOM; a declared GB18030 / GBK / GB2312 / ISO-8859-1 encoding is
  honoured (decoded here, so libxml2 only ever reads UTF-8);
- CAP 1.2 and CAP 1.1 namespaces are accepted.
- Namespace choice: a document with NO namespace is accepted as CAP 1.2 with a warning — a common
  producer bug where the structure is still plainly CAP. A document in a DIFFERENT namespace (CAP 1.0,
  a typo, another schema) is refused (``WRONG_NAMESPACE``): it claims to be something else, and reading
  it as CAP would be guessing at its meaning in a system that switches loudspeakers on.
- Elements in foreign namespaces inside the alert (e.g. an XML-DSig ``Signature``) are ignored; the
  presence of a signature is recorded in ``CapAlert.signature_present`` (it is NOT verified here).
- Missing optional fields are tolerated; a missing ``scope`` becomes Public, missing ``urgency`` /
  ``certainty`` / ``severity`` become Unknown — each with a warning. Enumerated values are matched
  case-insensitively (with a warning when the case differs). Times without an offset are taken as
  Beijing time (+08:00), with a warning.
- Missing ``identifier`` / ``sender`` / ``sent`` / ``status`` / ``msgType`` is an error: guessing any of
  them could broadcast something nobody sent or break Update/Cancel linking.
- Polygons must be closed rings of at least 4 points (3 distinct) with valid latitude/longitude, else
  ``BAD_POLYGON`` — fully checked here, before the alert is returned (see `cap.polygon`: a cheap exact
  certificate, the float-by-float check only when it cannot decide). ``CapArea.polygons`` holds
  `CapRing`s: sequences of (lat, lon) whose floats are made on first use.
- Embedded content (``resource/derefUri``) is checked to be valid Base64 here (same verdict as the strict
  decoder, see `check_base64`) but decoded only when ``CapResource.deref_uri`` is first read.

Errors are `CapError(kind, message)`; the message is Chinese, says what to do, and names the field and
line where known.
"""

from __future__ import annotations

import re
from datetime import timedelta, timezone
from enum import StrEnum
from typing import Any, TypeVar

from broadcast.sources.cap.errors import CapError, CapErrorKind
from broadcast.sources.cap.model import (
    CERTAINTIES,
    SEVERITIES,
    URGENCIES,
    CapAlert,
    CapArea,
    CapInfo,
    CapMsgType,
    CapResource,
    CapScope,
    CapStatus,
    check_base64,
)
from broadcast.sources.cap.polygon import CapRing, validate_ring
from broadcast.sources.cap.reader import NS_CAP_11, NS_CAP_12, Reader, local_name, parse_time, stripped
from broadcast.sources.cap.xml import Element, line_of, load_xml, split_tag, text_of

NS_XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"
_VERSIONS = {NS_CAP_12: "1.2", NS_CAP_11: "1.1"}
_SIGNATURE_TAG = "{" + NS_XMLDSIG + "}Signature"
_BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
_ENUM_VALUES: dict[type[StrEnum], tuple[str, ...]] = {
    enum: tuple(e.value for e in enum) for enum in (CapStatus, CapMsgType, CapScope)
}
_ENUM_MEMBERS: dict[type[StrEnum], dict[str, StrEnum]] = {
    enum: {e.value: e for e in enum} for enum in (CapStatus, CapMsgType, CapScope)
}

_T = TypeVar("_T")


def _built(cls: type[_T], values: dict[str, Any]) -> _T:
    """An instance of the frozen dataclass ``cls`` from ``values`` (every field given), without the
    per-field ``object.__setattr__`` of the generated ``__init__``: the parser makes thousands of them."""
    obj = object.__new__(cls)
    obj.__dict__.update(values)
    return obj


def _enum_field(r: Reader, node: Element, name: str, enum: type[StrEnum], default: str | None) -> Any:
    raw = r.text(node, name)
    if not raw:
        if default is None:
            r.required(node, name, "alert")
            raise AssertionError("unreachable")
        r.warnings.append(f"缺少字段 {name}，按 {default} 处理")
        return _ENUM_MEMBERS[enum][default]
    value = r.enum_value(raw, _ENUM_VALUES[enum], node, name)
    if value is None:
        line = r.line(node, name)
        allowed = "/".join(e.value for e in enum)
        raise CapError(
            CapErrorKind.BAD_VALUE,
            f"CAP 字段 {name} 的取值 {raw!r} 不合法（第 {line} 行），应为 {allowed} 之一",
        )
    return _ENUM_MEMBERS[enum][value]


def _references(r: Reader, root: Element) -> tuple[tuple[str, str, str], ...]:
    raw = r.text(root, "references")
    if not raw:
        return ()
    triples = []
    for token in raw.split():
        parts = token.split(",")
        if len(parts) != 3 or not all(parts):
            raise CapError(
                CapErrorKind.BAD_VALUE,
                f"CAP 字段 references 中的 {token!r} 不是 sender,identifier,sent 三元组（第 {r.line(root, 'references')} 行），"
                "请检查发布系统输出",
            )
        when = parse_time(parts[2])
        if when is None:
            r.warnings.append(
                f"references 中 {token!r} 的时间无法识别，原样保留（第 {r.line(root, 'references')} 行）"
            )
            triples.append((parts[0], parts[1], parts[2]))
        else:
            triples.append(
                (parts[0], parts[1], (when if when.tzinfo else when.replace(tzinfo=_BEIJING)).isoformat())
            )
    return tuple(triples)


_POINT_SEP = re.compile(r"\s*,\s*")


def _point(token: str) -> tuple[float, float]:
    lat_s, lon_s = token.split(",")
    lat, lon = float(lat_s), float(lon_s)
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lon <= 180.0):
        raise ValueError(f"坐标 {token} 超出范围")
    return lat, lon


def _ring(r: Reader, text: str, area_desc: str, line: int) -> CapRing:
    for seen, ring in r.rings:  # the en-US and zh-CN infos usually repeat each polygon
        if seen == text:
            return ring
    ring = validate_ring(text, area_desc, line)  # errors are never cached: each names its area and line
    r.rings.append((text, ring))
    return ring


def _circle(raw: str, area_desc: str, line: int) -> tuple[float, float, float]:
    try:
        centre, radius_s = _POINT_SEP.sub(",", raw.strip()).split()
        lat, lon = _point(centre)
        radius = float(radius_s)
        if radius < 0 or radius != radius:
            raise ValueError
    except ValueError:
        raise CapError(
            CapErrorKind.BAD_CIRCLE,
            f"圆形区域 {raw!r} 无效（区域「{area_desc}」第 {line} 行），应为 纬度,经度 半径公里",
        ) from None
    return lat, lon, radius


def _name_value(r: Reader, node: Element) -> tuple[str, str]:
    """The first ``valueName`` and first ``value`` (document order) of a geocode / parameter."""
    known, prefix = r.known, r.prefix
    name = value = None
    for c in node:
        tag = c.tag
        tag = known.get(tag) or local_name(tag, prefix)
        if tag == "valueName":
            if name is None:
                name = (text_of(c) if len(c) else (c.text or "")).strip()
        elif tag == "value" and value is None:
            value = (text_of(c) if len(c) else (c.text or "")).strip()
    return name or "", value or ""


def _area(r: Reader, node: Element) -> CapArea:
    known, prefix = r.known, r.prefix
    desc_el: Element | None = None
    geocodes = []
    shapes: list[tuple[str, Element]] = []
    for c in node:  # document order: the first areaDesc, shapes checked in the order written
        tag = c.tag
        tag = known.get(tag) or local_name(tag, prefix)
        if tag == "geocode":
            name, value = _name_value(r, c)
            if value:
                geocodes.append((name, value))
        elif tag == "areaDesc":
            if desc_el is None:
                desc_el = c
        elif tag == "polygon" or tag == "circle":
            shapes.append((tag, c))
    desc = stripped(desc_el) if desc_el is not None else ""
    if not desc:
        r.warnings.append(f"area 缺少 areaDesc（第 {line_of(node)} 行）")
    if not shapes:  # the usual CMA area: a name and a code
        return _built(
            CapArea, {"area_desc": desc, "polygons": (), "circles": (), "geocodes": tuple(geocodes)}
        )
    polygons: list[CapRing] = []
    circles: list[tuple[float, float, float]] = []
    for tag, c in shapes:
        text = text_of(c)
        if not text.strip():
            continue
        if tag == "polygon":
            polygons.append(_ring(r, text, desc, line_of(c)))
        else:
            circles.append(_circle(text, desc, line_of(c)))
    return _built(
        CapArea,
        {
            "area_desc": desc,
            "polygons": tuple(polygons),
            "circles": tuple(circles),
            "geocodes": tuple(geocodes),
        },
    )


def _resource(r: Reader, node: Element) -> CapResource:
    size_raw = r.text(node, "size")
    size: int | None = None
    if size_raw:
        try:
            size = int(size_raw)
        except ValueError:
            r.warnings.append(f"resource size {size_raw!r} 不是整数，已忽略（第 {line_of(node)} 行）")
    deref_raw = r.text(node, "derefUri") or ""
    if deref_raw and not check_base64(deref_raw):
        raise CapError(
            CapErrorKind.BAD_VALUE,
            f"resource 的 derefUri 不是合法的 Base64（第 {r.line(node, 'derefUri')} 行），请检查发布系统输出",
        )
    return CapResource.embedded(
        r.text(node, "resourceDesc") or "",
        r.text(node, "mimeType") or "",
        r.text(node, "uri") or "",
        deref_raw,
        r.text(node, "digest") or "",
        size,
    )


def _info_enum(r: Reader, node: Element, name: str, allowed: tuple[str, ...], raw: str | None) -> str:
    if not raw:
        r.warnings.append(f"info 缺少 {name}（第 {line_of(node)} 行），按 Unknown 处理")
        return "Unknown"
    if name == "certainty" and raw.lower().replace(" ", "") == "verylikely":  # CAP 1.0 value
        return "Likely"
    value = r.enum_value(raw, allowed, node, name)
    if value is None:
        line = r.line(node, name)
        r.warnings.append(f"{name} 取值 {raw!r} 不在 CAP 规定范围内，按 Unknown 处理（第 {line} 行）")
        return "Unknown"
    return value


def _info(r: Reader, node: Element) -> CapInfo:
    f = r.fields(node)
    first = {name: stripped(found[0]) for name, found in f.items() if name in _INFO_TEXTS}
    event = first.get("event") or ""
    if not event:
        r.warnings.append(f"info 缺少 event（第 {line_of(node)} 行）")
    return _built(
        CapInfo,
        {
            "language": first.get("language") or "",
            "category": tuple(c for c in (text_of(el).strip() for el in f.get("category", ())) if c),
            "event": event,
            "urgency": _info_enum(r, node, "urgency", URGENCIES, first.get("urgency")),
            "severity": _info_enum(r, node, "severity", SEVERITIES, first.get("severity")),
            "certainty": _info_enum(r, node, "certainty", CERTAINTIES, first.get("certainty")),
            "effective": r.time_of(first.get("effective"), node, "effective"),
            "onset": r.time_of(first.get("onset"), node, "onset"),
            "expires": r.time_of(first.get("expires"), node, "expires"),
            "sender_name": first.get("senderName") or "",
            "headline": first.get("headline") or "",
            "description": first.get("description") or "",
            "instruction": first.get("instruction") or "",
            "parameters": tuple([_name_value(r, p) for p in f.get("parameter", ())]),
            "resources": tuple([_resource(r, n) for n in f.get("resource", ())]),
            "areas": tuple([_area(r, n) for n in f.get("area", ())]),
        },
    )


_INFO_TEXTS = frozenset(
    "event language senderName headline description instruction urgency severity certainty "
    "effective onset expires".split()
)


def parse_cap(data: bytes, *, max_bytes: int = 256 * 1024, max_depth: int = 32) -> CapAlert:
    """Parse one CAP 1.2/1.1 document; raise `CapError` with an actionable Chinese message."""
    root = load_xml(data, max_bytes, max_depth)
    root_ns, root_name = split_tag(root.tag)
    if root_name != "alert":
        raise CapError(
            CapErrorKind.NOT_CAP,
            f"根元素是 <{root_name}> 而不是 <alert>，这不是 CAP 文档；请确认接入的是 CAP 预警源",
        )
    warnings: list[str] = []
    if root_ns in _VERSIONS:
        version = _VERSIONS[root_ns]
    elif root_ns == "":
        version = "1.2"
        warnings.append('CAP 文档没有命名空间，按 CAP 1.2 处理；请让发布系统加上 xmlns="' + NS_CAP_12 + '"')
    else:
        raise CapError(
            CapErrorKind.WRONG_NAMESPACE,
            f"CAP 文档的命名空间 {root_ns!r} 不受支持（只接受 CAP 1.2/1.1：{NS_CAP_12}），已拒收；"
            "请让发布系统改用 CAP 1.2",
        )
    r = Reader(root_ns)
    r.warnings = warnings
    identifier = r.required(root, "identifier", "alert")
    try:
        sender = r.required(root, "sender", "alert")
        sent = r.time(root, "sent", required=True)
        assert sent is not None
        status = _enum_field(r, root, "status", CapStatus, None)
        msg_type = _enum_field(r, root, "msgType", CapMsgType, None)
        scope = _enum_field(r, root, "scope", CapScope, CapScope.PUBLIC.value)
        references = _references(r, root)
        infos = tuple(_info(r, n) for n in r.kids(root, "info"))
    except CapError as e:
        e.identifier = identifier
        raise
    signed = next(root.iterchildren(_SIGNATURE_TAG), None) is not None
    if not infos:
        r.warnings.append("CAP 文档没有 info 块")
    return _built(
        CapAlert,
        {
            "identifier": identifier,
            "sender": sender,
            "sent": sent,
            "status": status,
            "msg_type": msg_type,
            "scope": scope,
            "references": references,
            "note": r.text(root, "note") or "",
            "infos": infos,
            "version": version,
            "signature_present": signed,
            "warnings": tuple(r.warnings),
        },
    )
