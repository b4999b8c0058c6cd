"""CAP 1.2 / 1.1 parsing (OASIS Common Alerting Protocol, 预警 CAP): bytes in, frozen dataclasses out.

Owns: turning one CAP document into a `CapAlert`, safely and tolerantly. Never converts to an EBM (see
`cap_convert`), never does I/O, never reads the clock, never dereferences a URI.

Safety (in `cap_xml`, checked in this order, before anything is interpreted):
- input larger than ``max_bytes`` is refused before any parsing (``TOO_LARGE``);
- the XML goes through defusedxml with DTDs forbidden: any ``<!DOCTYPE`` — and with it every entity
  declaration (billion laughs) and every external entity (XXE, e.g. ``file:///etc/passwd``) — is refused
  (``FORBIDDEN_DTD``) before a single entity is expanded or a file is opened;
- element nesting deeper than ``max_depth`` stops the parser at once (``TOO_DEEP``).

Tolerance (real feeds are messy, the CMA feed is rejected by some strict parsers):
- UTF-8 with or without BOM, UTF-16 with BOM; a declared GB18030 / GBK / GB2312 / ISO-8859-1 encoding is
  honoured (decoded here, because expat cannot decode multi-byte Chinese encodings itself);
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
- Polygons must be closed rings of at least 4 points with valid latitude/longitude, else ``BAD_POLYGON``.

Errors are `CapError(kind, message)`; the message is Chinese, says what to do, and names the field and
line where known.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from broadcast.sources.cap_errors import CapError, CapErrorKind
from broadcast.sources.cap_xml import Node, load_xml

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
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()  # rings of (lat, lon)
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


class _Reader:
    """Reads CAP fields from the tree, collecting warnings; ignores elements of foreign namespaces."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.warnings: list[str] = []

    def kids(self, node: Node, name: str) -> list[Node]:
        return [c for c in node.kids(name) if c.ns in (self.ns, "")]

    def text(self, node: Node, name: str) -> str | None:
        found = self.kids(node, name)
        return found[0].text.strip() if found else None

    def line(self, node: Node, name: str) -> int:
        found = self.kids(node, name)
        return found[0].line if found else node.line

    def required(self, node: Node, name: str, where: str) -> str:
        value = self.text(node, name)
        if not value:
            raise CapError(
                CapErrorKind.MISSING_FIELD,
                f"CAP 文档缺少必填字段 {name}（{where}，第 {node.line} 行起），请检查发布系统输出",
            )
        return value

    def enum_value(self, raw: str, allowed: tuple[str, ...], name: str, line: int) -> str | None:
        for value in allowed:
            if raw == value:
                return value
        for value in allowed:
            if raw.lower().replace(" ", "") == value.lower():
                self.warnings.append(f"{name} 取值 {raw!r} 大小写不规范，按 {value} 处理（第 {line} 行）")
                return value
        return None

    def time(self, node: Node, name: str, *, required: bool = False) -> datetime | None:
        raw = self.text(node, name)
        if not raw:
            if required:
                self.required(node, name, "alert")
            return None
        line = self.line(node, name)
        value = _parse_time(raw)
        if value is None:
            raise CapError(
                CapErrorKind.BAD_VALUE,
                f"CAP 字段 {name} 的时间 {raw!r} 无法识别（第 {line} 行），"
                "应为 2024-06-12T08:30:00+08:00 格式",
            )
        if value.tzinfo is None:
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


def _enum_field(r: _Reader, node: Node, name: str, enum: type[StrEnum], default: str | None) -> Any:
    raw = r.text(node, name)
    if not raw:
        if default is None:
            r.required(node, name, "alert")
            raise AssertionError("unreachable")
        r.warnings.append(f"缺少字段 {name}，按 {default} 处理")
        return enum(default)
    line = r.line(node, name)
    value = r.enum_value(raw, tuple(e.value for e in enum), name, line)
    if value is None:
        allowed = "/".join(e.value for e in enum)
        raise CapError(
            CapErrorKind.BAD_VALUE,
            f"CAP 字段 {name} 的取值 {raw!r} 不合法（第 {line} 行），应为 {allowed} 之一",
        )
    return enum(value)


def _references(r: _Reader, raw: str | None, line: int) -> tuple[tuple[str, str, str], ...]:
    if not raw:
        return ()
    triples = []
    for token in raw.split():
        parts = token.split(",")
        if len(parts) != 3 or not all(parts):
            raise CapError(
                CapErrorKind.BAD_VALUE,
                f"CAP 字段 references 中的 {token!r} 不是 sender,identifier,sent 三元组（第 {line} 行），"
                "请检查发布系统输出",
            )
        if _parse_time(parts[2]) is None:
            r.warnings.append(f"references 中 {token!r} 的时间无法识别，原样保留（第 {line} 行）")
        triples.append((parts[0], parts[1], canonical_sent(parts[2])))
    return tuple(triples)


_POINT_SEP = re.compile(r"\s*,\s*")


def _point(token: str) -> tuple[float, float]:
    lat_s, lon_s = token.split(",")
    lat, lon = float(lat_s), float(lon_s)
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lon <= 180.0):
        hint = "（纬度超出范围，经纬度可能写反了）" if abs(lat) > 90.0 and abs(lon) <= 90.0 else ""
        raise ValueError(f"坐标 {token} 超出范围{hint}")
    return lat, lon


def _polygon(raw: str, area_desc: str, line: int) -> tuple[tuple[float, float], ...]:
    where = f"区域「{area_desc}」第 {line} 行"
    try:
        points = tuple(_point(t) for t in _POINT_SEP.sub(",", raw.strip()).split())
    except ValueError as e:
        detail = str(e) if "坐标" in str(e) else "坐标应为 纬度,经度 并以空格分隔"
        raise CapError(
            CapErrorKind.BAD_POLYGON, f"多边形无效（{where}）：{detail}，请修正发布系统的区域"
        ) from None
    if len(points) < 4:
        raise CapError(
            CapErrorKind.BAD_POLYGON,
            f"多边形无效（{where}）：只有 {len(points)} 个点，闭合多边形至少需要 4 个点（首尾相同）",
        )
    if points[0] != points[-1]:
        raise CapError(
            CapErrorKind.BAD_POLYGON,
            f"多边形无效（{where}）：首点 {points[0]} 与末点 {points[-1]} 不同，多边形必须闭合",
        )
    if len(set(points)) < 3:
        raise CapError(CapErrorKind.BAD_POLYGON, f"多边形无效（{where}）：不同的点少于 3 个，无法围成区域")
    return points


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


def _area(r: _Reader, node: Node) -> CapArea:
    desc = r.text(node, "areaDesc") or ""
    if not desc:
        r.warnings.append(f"area 缺少 areaDesc（第 {node.line} 行）")
    geocodes = []
    for g in r.kids(node, "geocode"):
        name, value = r.text(g, "valueName") or "", r.text(g, "value") or ""
        if value:
            geocodes.append((name, value))
    return CapArea(
        area_desc=desc,
        polygons=tuple(_polygon(p.text, desc, p.line) for p in r.kids(node, "polygon") if p.text.strip()),
        circles=tuple(_circle(c.text, desc, c.line) for c in r.kids(node, "circle") if c.text.strip()),
        geocodes=tuple(geocodes),
    )


def _resource(r: _Reader, node: Node) -> CapResource:
    size_raw = r.text(node, "size")
    size: int | None = None
    if size_raw:
        try:
            size = int(size_raw)
        except ValueError:
            r.warnings.append(f"resource size {size_raw!r} 不是整数，已忽略（第 {node.line} 行）")
    deref = b""
    deref_raw = r.text(node, "derefUri")
    if deref_raw:
        try:
            deref = base64.b64decode("".join(deref_raw.split()), validate=True)
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


def _info_enum(r: _Reader, node: Node, name: str, allowed: tuple[str, ...]) -> str:
    raw = r.text(node, name)
    if not raw:
        r.warnings.append(f"info 缺少 {name}（第 {node.line} 行），按 Unknown 处理")
        return "Unknown"
    if name == "certainty" and raw.lower().replace(" ", "") == "verylikely":  # CAP 1.0 value
        return "Likely"
    value = r.enum_value(raw, allowed, name, r.line(node, name))
    if value is None:
        line = r.line(node, name)
        r.warnings.append(f"{name} 取值 {raw!r} 不在 CAP 规定范围内，按 Unknown 处理（第 {line} 行）")
        return "Unknown"
    return value


def _info(r: _Reader, node: Node) -> CapInfo:
    event = r.text(node, "event") or ""
    if not event:
        r.warnings.append(f"info 缺少 event（第 {node.line} 行）")
    language = r.text(node, "language") or ""
    params = []
    for p in r.kids(node, "parameter"):
        params.append((r.text(p, "valueName") or "", r.text(p, "value") or ""))
    return CapInfo(
        language=language,
        category=tuple(c.text.strip() for c in r.kids(node, "category") if c.text.strip()),
        event=event,
        urgency=_info_enum(r, node, "urgency", _URGENCIES),
        severity=_info_enum(r, node, "severity", _SEVERITIES),
        certainty=_info_enum(r, node, "certainty", _CERTAINTIES),
        effective=r.time(node, "effective"),
        onset=r.time(node, "onset"),
        expires=r.time(node, "expires"),
        sender_name=r.text(node, "senderName") or "",
        headline=r.text(node, "headline") or "",
        description=r.text(node, "description") or "",
        instruction=r.text(node, "instruction") or "",
        parameters=tuple(params),
        resources=tuple(_resource(r, n) for n in r.kids(node, "resource")),
        areas=tuple(_area(r, n) for n in r.kids(node, "area")),
    )


def parse_cap(data: bytes, *, max_bytes: int = 256 * 1024, max_depth: int = 32) -> CapAlert:
    """Parse one CAP 1.2/1.1 document; raise `CapError` with an actionable Chinese message."""
    root = load_xml(data, max_bytes, max_depth)
    if root.name != "alert":
        raise CapError(
            CapErrorKind.NOT_CAP,
            f"根元素是 <{root.name}> 而不是 <alert>，这不是 CAP 文档；请确认接入的是 CAP 预警源",
        )
    warnings: list[str] = []
    if root.ns in _VERSIONS:
        version = _VERSIONS[root.ns]
    elif root.ns == "":
        version = "1.2"
        warnings.append('CAP 文档没有命名空间，按 CAP 1.2 处理；请让发布系统加上 xmlns="' + NS_CAP_12 + '"')
    else:
        raise CapError(
            CapErrorKind.WRONG_NAMESPACE,
            f"CAP 文档的命名空间 {root.ns!r} 不受支持（只接受 CAP 1.2/1.1：{NS_CAP_12}），已拒收；"
            "请让发布系统改用 CAP 1.2",
        )
    r = _Reader(root.ns)
    r.warnings = warnings
    identifier = r.required(root, "identifier", "alert")
    try:
        sender = r.required(root, "sender", "alert")
        sent = r.time(root, "sent", required=True)
        assert sent is not None
        status = _enum_field(r, root, "status", CapStatus, None)
        msg_type = _enum_field(r, root, "msgType", CapMsgType, None)
        scope = _enum_field(r, root, "scope", CapScope, CapScope.PUBLIC.value)
        references = _references(r, r.text(root, "references"), r.line(root, "references"))
        infos = tuple(_info(r, n) for n in r.kids(root, "info"))
    except CapError as e:
        e.identifier = identifier
        raise
    signed = any(c.name == "Signature" and c.ns == NS_XMLDSIG for c in root.children)
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
