"""Reading CAP fields from a parsed tree: children indexed by local name, text and enum fields, times,
warnings (`Reader`), and the CAP namespaces. Used by `broadcast.sources.cap.parse`; must never build the
result types or do I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from broadcast.sources.cap.errors import CapError, CapErrorKind
from broadcast.sources.cap.polygon import CapRing
from broadcast.sources.cap.xml import Element, line_of, text_of

NS_CAP_12 = "urn:oasis:names:tc:emergency:cap:1.2"
NS_CAP_11 = "urn:oasis:names:tc:emergency:cap:1.1"
_BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def stripped(el: Element) -> str:
    """The stripped character data of ``el``."""
    return (text_of(el) if len(el) else (el.text or "")).strip()


_CAP_NAMES = (
    "identifier sender sent status msgType source scope restriction addresses code note references incidents "
    "info language category event responseType urgency severity certainty audience eventCode effective onset "
    "expires senderName headline description instruction web contact parameter resource area resourceDesc "
    "mimeType size uri derefUri digest areaDesc polygon circle geocode altitude ceiling valueName value"
).split()
# prefix → {"{ns}name": name} for the CAP element names: a dict look-up instead of startswith + slicing
# per child (other tags take the general path); never grows with what documents contain.
_LOCAL = {
    prefix: {prefix + name: name for name in _CAP_NAMES}
    for prefix in ("{" + NS_CAP_12 + "}", "{" + NS_CAP_11 + "}", "")
}
_NO_NAMES: dict[str, str] = {}


def local_name(tag: str, prefix: str) -> str:
    """The CAP local name of ``tag`` in document order semantics: a bare tag counts as CAP; "" for an
    element of another namespace."""
    if tag[0] == "{":
        return tag[len(prefix) :] if prefix and tag.startswith(prefix) else ""
    return tag


def _children(node: Element, prefix: str) -> dict[str, list[Element]]:
    """The node's CAP children by local name. With a CAP namespace (``prefix`` = ``"{ns}"``) its
    elements come first, then un-namespaced ones (tolerated, see the module docstring), each in document
    order; elements of any other namespace are left out."""
    by_name: dict[str, list[Element]] = {}
    known = _LOCAL.get(prefix, _NO_NAMES)
    late: list[Element] = []
    for c in node:
        tag = c.tag
        name = known.get(tag)
        if name is None:
            if prefix and tag[0] != "{":
                late.append(c)
                continue
            name = local_name(tag, prefix)
            if not name:
                continue
        found = by_name.get(name)
        if found is None:
            by_name[name] = [c]
        else:
            found.append(c)
    for c in late:
        by_name.setdefault(c.tag, []).append(c)
    return by_name


class Reader:
    """Reads CAP fields from the tree, collecting warnings; ignores elements of foreign namespaces.

    A node's children are indexed by local name on first use (CAP reading is many small look-ups), line
    numbers are only looked up for messages, and identical polygon texts within one document (the en-US
    and zh-CN infos repeat them) are validated once."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.warnings: list[str] = []
        self.rings: list[tuple[str, CapRing]] = []
        self.prefix = "{" + ns + "}" if ns else ""
        # "{ns}name" → name for the CAP element names in this document's namespace (a dict look-up per
        # child; anything else goes through `local_name`).
        self.known = _LOCAL.get(self.prefix, _NO_NAMES)
        self._index: dict[Element, dict[str, list[Element]]] = {}

    def fields(self, node: Element) -> dict[str, list[Element]]:
        """The node's CAP children by local name (see `_children`)."""
        by_name = self._index.get(node)
        if by_name is None:
            by_name = self._index[node] = _children(node, self.prefix)
        return by_name

    def kids(self, node: Element, name: str) -> list[Element]:
        return self.fields(node).get(name, [])

    def text(self, node: Element, name: str) -> str | None:
        """The stripped character data of the first ``name`` child; None when there is none."""
        found = self.fields(node).get(name)
        return stripped(found[0]) if found else None

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
        return self.time_of(self.text(node, name), node, name, required=required)

    def time_of(
        self, raw: str | None, node: Element, name: str, *, required: bool = False
    ) -> datetime | None:
        """The time written in ``raw`` (the text of ``node``'s first ``name`` child, or None)."""
        if not raw:
            if required:
                self.required(node, name, "alert")
            return None
        value = parse_time(raw)
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


def parse_time(raw: str) -> datetime | None:
    """ISO 8601 as CAP writes it ("Z" and "-00:00" allowed, a space for "T" tolerated); may be naive."""
    try:
        return datetime.fromisoformat(raw.replace(" ", "T", 1) if "T" not in raw else raw)
    except ValueError:
        return None
