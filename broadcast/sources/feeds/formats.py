"""Feed formats: turning one fetched feed body into the CAP items it offers (links or inline documents).

Owns the registry of format parsers (``FORMATS``). Never fetches anything (the poller does), never
parses CAP itself, never reads the clock. XML is read through defusedxml: a DTD is refused.

Formats:
- ``atom``: an Atom feed; per entry the first ``link`` with type ``application/cap+xml`` (or
  rel="enclosure"/"alternate", or the only link), else an inline ``<content>`` holding a CAP ``<alert>``;
- ``rss``: RSS 2.0; per item the ``enclosure`` url, else ``link``;
- ``json``: a JSON array (or ``{"items": [...]}``); each element is a string — a URL, or embedded CAP
  XML when it starts with ``<`` — or an object ``{"url": "..."}`` / ``{"cap": "<alert …>"}``;
- ``cap``: the body is one CAP document.
Relative URLs are resolved against the feed URL; only http(s) links are followed.

Adding a format: write ``def parse_myformat(body: bytes, base_url: str) -> list[FeedItem]`` raising
`FeedFormatError` with a Chinese message for a body it cannot read, and register it with
``FORMATS["myformat"] = parse_myformat`` (or pass your own mapping to the poller). Feeds select it by
name in their ``format`` setting.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import Element, tostring

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

NS_ATOM = "{http://www.w3.org/2005/Atom}"
CAP_MIME = "application/cap+xml"


@dataclass(frozen=True)
class FeedItem:
    """One CAP offered by a feed: either a link to fetch or the document itself."""

    url: str = ""
    data: bytes = b""


class FeedFormatError(ValueError):
    pass


FormatParser = Callable[[bytes, str], list[FeedItem]]


def _xml(body: bytes, what: str) -> Element:
    try:
        root: Element = SafeET.fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise FeedFormatError(
            f"{what} 含有 DTD/实体声明，出于安全原因拒绝解析；请联系源方去掉 DOCTYPE"
        ) from None
    except SafeET.ParseError as exc:
        raise FeedFormatError(f"{what} 不是合法的 XML（{exc}），请检查源地址和格式设置") from None
    return root


def _link(raw: str, base_url: str) -> FeedItem | None:
    url = urljoin(base_url, raw.strip())
    return FeedItem(url=url) if urlsplit(url).scheme in ("http", "https") else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _first(elements: list[Element], test: Callable[[Element], bool]) -> Element | None:
    # Explicit loop: an Element's truth value is its child count, so `or`-chains would skip empty links.
    for element in elements:
        if test(element):
            return element
    return None


def parse_atom(body: bytes, base_url: str) -> list[FeedItem]:
    root = _xml(body, "Atom 索引")
    if root.tag != f"{NS_ATOM}feed":
        raise FeedFormatError(f"根元素是 <{_local(root.tag)}> 而不是 Atom <feed>，请检查该源的格式设置")
    items: list[FeedItem] = []
    for entry in root.iter(f"{NS_ATOM}entry"):
        links = entry.findall(f"{NS_ATOM}link")
        chosen = _first(links, lambda link: link.get("type", "").lower() == CAP_MIME)
        if chosen is None:
            chosen = _first(links, lambda link: link.get("rel") == "enclosure")
        if chosen is None:
            chosen = _first(links, lambda link: link.get("rel", "alternate") == "alternate")
        if chosen is not None and chosen.get("href"):
            item = _link(chosen.get("href", ""), base_url)
            if item:
                items.append(item)
            continue
        content = entry.find(f"{NS_ATOM}content")
        if content is not None:
            alert = next((c for c in content if _local(c.tag) == "alert"), None)
            if alert is not None:
                items.append(FeedItem(data=tostring(alert, encoding="utf-8")))
    return items


def parse_rss(body: bytes, base_url: str) -> list[FeedItem]:
    root = _xml(body, "RSS 索引")
    if _local(root.tag) != "rss":
        raise FeedFormatError(f"根元素是 <{_local(root.tag)}> 而不是 <rss>，请检查该源的格式设置")
    items: list[FeedItem] = []
    for entry in root.iter("item"):
        enclosure = entry.find("enclosure")
        raw = enclosure.get("url", "") if enclosure is not None else ""
        if not raw:
            raw = (entry.findtext("link") or "").strip()
        item = _link(raw, base_url) if raw else None
        if item:
            items.append(item)
    return items


def _json_item(element: Any, base_url: str, index: int) -> FeedItem | None:
    if isinstance(element, dict):
        if isinstance(element.get("cap"), str):
            return FeedItem(data=element["cap"].encode("utf-8"))
        element = element.get("url")
    if not isinstance(element, str):
        raise FeedFormatError(f"JSON 索引第 {index} 项既不是 URL 字符串、CAP 文本，也不是 {{url|cap}} 对象")
    if element.lstrip().startswith("<"):
        return FeedItem(data=element.encode("utf-8"))
    return _link(element, base_url)


def parse_json(body: bytes, base_url: str) -> list[FeedItem]:
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedFormatError(f"JSON 索引不是合法的 UTF-8 JSON（{exc}），请检查源地址和格式设置") from None
    if isinstance(doc, dict) and isinstance(doc.get("items"), list):
        doc = doc["items"]
    if not isinstance(doc, list):
        raise FeedFormatError("JSON 索引应为数组（或含 items 数组的对象），请检查该源的格式设置")
    return [item for i, e in enumerate(doc) if (item := _json_item(e, base_url, i)) is not None]


def parse_single(body: bytes, base_url: str) -> list[FeedItem]:
    return [FeedItem(data=body)] if body.strip() else []


FORMATS: dict[str, FormatParser] = {
    "atom": parse_atom,
    "rss": parse_rss,
    "json": parse_json,
    "cap": parse_single,
}
