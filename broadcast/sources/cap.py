"""CAP 1.2 / 1.1 parsing (OASIS Common Alerting Protocol, 预警 CAP): bytes in, frozen dataclasses out.

Owns: turning one CAP document into a `CapAlert`, safely and tolerantly. Never converts to an EBM (see
`cap_convert`), never does I/O, never reads the clock, never dereferences a URI.

Safety (in `cap_xml`, checked in this order, before anything is interpreted):
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
  ``BAD_POLYGON`` — fully checked here, before the alert is returned (see `cap_polygon`: a cheap exact
  certificate, the float-by-float check only when it cannot decide). ``CapArea.polygons`` holds
  `CapRing`s: sequences of (lat, lon) whose floats are made on first use.

Errors are `CapError(kind, message)`; the message is Chinese, says what to do, and names the field and
line where known.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from broadcast.sources.cap_errors import CapError, CapErrorKind
from broadcast.sources.cap_polygon import CapRing, validate_ring
from broadcast.sources.cap_xml import Element, line_of, load_xml, split_tag, text_of

__all__ = [
    "CPEAS_VALUE_NAME",
    "NS_CAP_11",
    "NS_CAP_12",
    "CapAlert",
    "CapArea",
    "CapError",
    "CapErrorKind",
    "CapInfo",
    "CapMsgType",
    "CapResource",
    "CapRing",
    "CapScope",
    "CapStatus",
    "canonical_sent",
    "parse_cap",
]

NS_CAP_12 = "urn:oasis:names:tc:emergency:cap:1.2"
NS_CAP_11 = "urn:oasis:names:tc:emergency:cap:1.1"
NS_XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"
_VERSIONS = {NS_CAP_12: "1.2", NS_CAP_11: "1.1"}
CPEAS_VALUE_NAME = "CPEAS Geographic Code"
_ASCII_WHITESPACE = bytes(c for c in range(128) if chr(c).isspace())  # what str.split() drops
_SIGNATURE_TAG = "{" + NS_XMLDSIG + "}Signature"
_BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


class CapStatus(StrEnum):
    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class CapMsgType(StrEnum):
    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


class CapScope(StrEnum):
    PUBLIC = "Public"
    RESTRICTED = "Restricted"
    PRIVATE = "Private"


_ENUM_VALUES: dict[type[StrEnum], tuple[str, ...]] = {
    enum: tuple(e.value for e in enum) for enum in (CapStatus, CapMsgType, CapScope)
}
_ENUM_MEMBERS: dict[type[StrEnum], dict[str, StrEnum]] = {
    enum: {e.value: e for e in enum} for enum in (CapStatus, CapMsgType, CapScope)
}
_SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
_URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
_CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")


@dataclass(frozen=True)
class CapResource:
    description: str
    mime: str
    uri: str = ""
    deref_uri: bytes = b""
    digest: str = ""
    size: int | None = None


@dataclass(frozen=True)
class CapArea:
    area_desc: str
    # validated closed rings of (lat, lon): `CapRing`s, floats made on first use (see cap_polygon)
    polygons: tuple[Sequence[tuple[float, float]], ...] = ()
    circles: tuple[tuple[float, float, float], ...] = ()  # (lat, lon, radius_km)
    geocodes: tuple[tuple[str, str], ...] = ()  # (value_name, value)


@dataclass(frozen=True)
class CapInfo:
    language: str
    category: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    sender_name: str = ""
    headline: str = ""
    description: str = ""
    instruction: str = ""
    parameters: tuple[tuple[str, str], ...] = ()
    resources: tuple[CapResource, ...] = ()
    areas: tuple[CapArea, ...] = ()


@dataclass(frozen=True)
class CapAlert:
    identifier: str
    sender: str
    sent: datetime
    status: CapStatus
    msg_type: CapMsgType
    scope: CapScope
    # (sender, identifier, sent) with sent in `canonical_sent` form, as in SourceRef.sent of the original
    references: tuple[tuple[str, str, str], ...] = ()
    note: str = ""
    infos: tuple[CapInfo, ...] = ()
    version: str = "1.2"
    signature_present: bool = False
    warnings: tuple[str, ...] = field(default=(), compare=False)


# ---------------------------------------------------------------------------------------------------
# Field readers


class _Tags(dict[str, str]):
    """CAP local name → tag as lxml spells it in one namespace (``"{ns}name"``), made on first use."""

    def __init__(self, ns: str) -> None:
        super().__init__()
        self.prefix = "{" + ns + "}" if ns else ""

    def __missing__(self, name: str) -> str:
        self[name] = tag = self.prefix + name
        return tag


_TAGS = {ns: _Tags(ns) for ns in (NS_CAP_12, NS_CAP_11, "")}


def _tags_of(ns: str) -> _Tags:
    tags = _TAGS.get(ns)
    return _Tags(ns) if tags is None else tags


def _first_text(found: list[Element] | None) -> str | None:
    """The stripped character data of the first element of ``found``; None when there is none."""
    if not found:
        return None
    el = found[0]
    return (text_of(el) if len(el) else (el.text or "")).strip()


class _Reader:
    """Reads CAP fields from the tree, collecting warnings; ignores elements of foreign namespaces.

    A node's children are indexed by tag on first use (CAP reading is many small look-ups), line numbers
    are only looked up for messages, and identical polygon texts within one document (the en-US and
    zh-CN infos repeat them) are validated once."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.warnings: list[str] = []
        self.rings: list[tuple[str, CapRing]] = []
        self._prefix = self.prefix = "{" + ns + "}" if ns else ""
        self.tags = _tags_of(ns)
        self._index: dict[Element, dict[str, list[Element]]] = {}

    def fields(self, node: Element) -> dict[str, list[Element]]:
        """The node's children by tag; an un-namespaced child of a CAP document is filed under the CAP
        namespace (tolerated, see the module docstring). Look up with ``r.tags[name]``."""
        by_tag = self._index.get(node)
        if by_tag is None:
            by_tag = self._index[node] = {}
            for c in node:
                tag = c.tag
                found = by_tag.get(tag)
                if found is None:
                    by_tag[tag] = [c]
                else:
                    found.append(c)
            if self._prefix:
                for bare in [tag for tag in by_tag if tag[0] != "{"]:
                    by_tag.setdefault(self._prefix + bare, []).extend(by_tag.pop(bare))
        return by_tag

    def kids(self, node: Element, name: str) -> list[Element]:
        return self.fields(node).get(self.tags[name], [])

    def raw_text(self, node: Element, name: str) -> list[tuple[Element, str]]:
        """Each ``name`` child with its character data (unstripped)."""
        return [(c, text_of(c)) for c in self.kids(node, name)]

    def text(self, node: Element, name: str) -> str | None:
        return _first_text(self.fields(node).get(self.tags[name]))

    def line(self, node: Element, name: str) -> int:
        found = self.kids(node, name)
        return line_of(found[0] if found else node)

    def required(self, node: Element, name: str, where: str) -> str:
        value = self.text(node, name)
        if not value:
            raise CapError(
                CapErrorKind.MISSING_FIELD,
                f"CAP 文档缺少必填字段 {name}（{where}，第 {line_of(node)} 行起），请检查发布系统输出",
            )
        return value

    def enum_value(self, raw: str, allowed: tuple[str, ...], node: Element, name: str) -> str | None:
        if raw in allowed:
            return raw
        for value in allowed:
            if raw.lower().replace(" ", "") == value.lower():
                line = self.line(node, name)
                self.warnings.append(f"{name} 取值 {raw!r} 大小写不规范，按 {value} 处理（第 {line} 行）")
                return value
        return None

    def time(self, node: Element, name: str, *, required: bool = False) -> datetime | None:
        raw = self.text(node, name)
        if not raw:
            if required:
                self.required(node, name, "alert")
            return None
        value = _parse_time(raw)
        if value is None:
            line = self.line(node, name)
            raise CapError(
                CapErrorKind.BAD_VALUE,
                f"CAP 字段 {name} 的时间 {raw!r} 无法识别（第 {line} 行），"
                "应为 2024-06-12T08:30:00+08:00 格式",
            )
        if value.tzinfo is None:
            line = self.line(node, name)
            self.warnings.append(f"{name} 时间 {raw!r} 未带时区，按北京时间（+08:00）处理（第 {line} 行）")
            value = value.replace(tzinfo=_BEIJING)
        return value


def _parse_time(raw: str) -> datetime | None:
    """ISO 8601 as CAP writes it ("Z" and "-00:00" allowed, a space for "T" tolerated); may be naive."""
    try:
        return datetime.fromisoformat(raw.replace(" ", "T", 1) if "T" not in raw else raw)
    except ValueError:
        return None


def canonical_sent(raw: str) -> str:
    """The form of a CAP ``sent`` used in source keys and references, so that "Z", "+00:00" and
    "-00:00" spellings of one instant match; naive times are Beijing time; unparsable text is kept."""
    value = _parse_time(raw.strip())
    if value is None:
        return raw.strip()
    return (value if value.tzinfo is not None else value.replace(tzinfo=_BEIJING)).isoformat()


def _enum_field(r: _Reader, node: Element, name: str, enum: type[StrEnum], default: str | None) -> Any:
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


def _references(r: _Reader, root: Element) -> tuple[tuple[str, str, str], ...]:
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
        when = _parse_time(parts[2])
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


def _ring(r: _Reader, text: str, area_desc: str, line: int) -> CapRing:
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


def _own_children(r: _Reader, node: Element) -> list[tuple[str, Element]]:
    """(tag, element) of the node's children in document order, an un-namespaced child of a CAP
    document spelt with the CAP namespace (tolerated); for the small, hot elements read without an index.
    """
    prefix = r.prefix
    if not prefix:
        return [(c.tag, c) for c in node]
    return [(tag if tag[0] == "{" else prefix + tag, c) for c in node for tag in (c.tag,)]


def _name_value(r: _Reader, node: Element) -> tuple[str, str]:
    """The first ``valueName`` and first ``value`` of a geocode / parameter."""
    t_name, t_value = r.tags["valueName"], r.tags["value"]
    name = value = None
    for tag, c in _own_children(r, node):
        if tag == t_name and name is None:
            name = _first_text([c])
        elif tag == t_value and value is None:
            value = _first_text([c])
    return name or "", value or ""


def _area(r: _Reader, node: Element) -> CapArea:
    t = r.tags
    t_desc, t_geocode, t_polygon, t_circle = t["areaDesc"], t["geocode"], t["polygon"], t["circle"]
    desc_el: Element | None = None
    geocodes = []
    shapes: list[tuple[str, Element]] = []
    for tag, c in _own_children(r, node):
        if tag == t_geocode:
            name, value = _name_value(r, c)
            if value:
                geocodes.append((name, value))
        elif tag == t_desc:
            if desc_el is None:
                desc_el = c
        elif tag == t_polygon or tag == t_circle:
            shapes.append((tag, c))
    desc = (_first_text([desc_el]) if desc_el is not None else None) or ""
    if not desc:
        r.warnings.append(f"area 缺少 areaDesc（第 {line_of(node)} 行）")
    polygons: list[CapRing] = []
    circles: list[tuple[float, float, float]] = []
    for tag, c in shapes:
        text = text_of(c)
        if not text.strip():
            continue
        if tag == t_polygon:
            polygons.append(_ring(r, text, desc, line_of(c)))
        else:
            circles.append(_circle(text, desc, line_of(c)))
    return CapArea(area_desc=desc, polygons=tuple(polygons), circles=tuple(circles), geocodes=tuple(geocodes))


def _resource(r: _Reader, node: Element) -> CapResource:
    size_raw = r.text(node, "size")
    size: int | None = None
    if size_raw:
        try:
            size = int(size_raw)
        except ValueError:
            r.warnings.append(f"resource size {size_raw!r} 不是整数，已忽略（第 {line_of(node)} 行）")
    deref = b""
    deref_raw = r.text(node, "derefUri")
    if deref_raw:
        try:
            # Line breaks are normal in long Base64; anything else outside the alphabet is an error.
            if deref_raw.isascii():
                packed = deref_raw.encode("ascii").translate(None, _ASCII_WHITESPACE)
            else:  # Unicode spaces (U+3000…) are tolerated as before; other non-ASCII fails below
                packed = "".join(deref_raw.split()).encode("ascii")
            deref = binascii.a2b_base64(packed, strict_mode=True)
        except (binascii.Error, ValueError):
            raise CapError(
                CapErrorKind.BAD_VALUE,
                f"resource 的 derefUri 不是合法的 Base64（第 {r.line(node, 'derefUri')} 行），"
                "请检查发布系统输出",
            ) from None
    return CapResource(
        description=r.text(node, "resourceDesc") or "",
        mime=r.text(node, "mimeType") or "",
        uri=r.text(node, "uri") or "",
        deref_uri=deref,
        digest=r.text(node, "digest") or "",
        size=size,
    )


def _info_enum(r: _Reader, node: Element, name: str, allowed: tuple[str, ...]) -> str:
    raw = r.text(node, name)
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


def _info(r: _Reader, node: Element) -> CapInfo:
    f, t = r.fields(node), r.tags
    event = _first_text(f.get(t["event"])) or ""
    if not event:
        r.warnings.append(f"info 缺少 event（第 {line_of(node)} 行）")
    params = []
    for p in f.get(t["parameter"], ()):
        params.append(_name_value(r, p))
    return CapInfo(
        language=_first_text(f.get(t["language"])) or "",
        category=tuple(c.strip() for _, c in r.raw_text(node, "category") if c.strip()),
        event=event,
        urgency=_info_enum(r, node, "urgency", _URGENCIES),
        severity=_info_enum(r, node, "severity", _SEVERITIES),
        certainty=_info_enum(r, node, "certainty", _CERTAINTIES),
        effective=r.time(node, "effective"),
        onset=r.time(node, "onset"),
        expires=r.time(node, "expires"),
        sender_name=_first_text(f.get(t["senderName"])) or "",
        headline=_first_text(f.get(t["headline"])) or "",
        description=_first_text(f.get(t["description"])) or "",
        instruction=_first_text(f.get(t["instruction"])) or "",
        parameters=tuple(params),
        resources=tuple(_resource(r, n) for n in f.get(t["resource"], ())),
        areas=tuple(_area(r, n) for n in f.get(t["area"], ())),
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
    r = _Reader(root_ns)
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
    signed = any(c.tag == _SIGNATURE_TAG for c in root)
    if not infos:
        r.warnings.append("CAP 文档没有 info 块")
    return CapAlert(
        identifier=identifier,
        sender=sender,
        sent=sent,
        status=status,
        msg_type=msg_type,
        scope=scope,
        references=references,
        note=r.text(root, "note") or "",
        infos=infos,
        version=version,
        signature_present=signed,
        warnings=tuple(r.warnings),
    )
