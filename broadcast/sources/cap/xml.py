"""Safe loading of CAP XML (预警 CAP 文档的安全解析): bytes in, a small element tree with line numbers out.

Owns: the size limit, charset handling (BOM, declared GB18030/GBK/GB2312/ISO-8859-1, UTF-16), the refusal
of any DTD, and the hardened lxml (libxml2) parse with a nesting limit. Never interprets CAP fields (see
`cap`), never resolves entities or URIs, never loads a DTD, never does I/O.

Order of the checks (each one before anything later can run):
1. ``len(data) > max_bytes`` → ``TOO_LARGE`` (not even decoded);
2. charset: UTF-8 (with or without BOM) goes to libxml2 as it is; UTF-16 (BOM) and any other declared
   encoding is decoded here and re-encoded as UTF-8 with the declaration's ``encoding`` dropped
   (``BAD_ENCODING`` with the line of the first bad byte otherwise). libxml2 is always told the input
   is UTF-8, so it never guesses an encoding of its own (a NUL byte or a UTF-16 body without BOM is
   therefore malformed, as before);
3. a ``<!DOCTYPE`` in the prolog (the only place XML allows one) → ``FORBIDDEN_DTD``, before libxml2
   sees a byte: no entity declaration (billion laughs) and no external entity (XXE) can exist after that;
4. libxml2 with ``resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False`` (its own
   limits: depth 256, text node 10 MB) and comments / processing instructions dropped; afterwards a
   document that still carries a DTD is refused (belt and braces), and an element deeper than
   ``max_depth`` is refused (``TOO_DEEP`` naming its line; an XPath probe, no Python walk).

The tree handed out is lxml's own (``Element``): `cap` reads it through `split_tag` / `text_of` /
`line_of` and must not modify it.
"""

from __future__ import annotations

import codecs
import re
import threading
from typing import Any

from lxml import etree

from broadcast.sources.cap.errors import CapError, CapErrorKind

__all__ = ["Element", "line_of", "load_xml", "split_tag", "text_of"]


Element = Any  # lxml.etree._Element (lxml ships no type information)


def split_tag(tag: str) -> tuple[str, str]:
    """``"{ns}name"`` → ``("ns", "name")``; ``"name"`` → ``("", "name")``."""
    if tag[:1] == "{":
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def text_of(el: Element) -> str:
    """The element's own character data (its text and its children's tails, never the children's text)."""
    if len(el):
        return "".join([el.text or "", *(c.tail or "" for c in el)])
    return str(el.text or "")


def line_of(el: Element) -> int:
    return int(el.sourceline or 0)


_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9_.:-]+)[\"']", re.S)
_DECL_ENC_ATTR = re.compile(r"(<\?xml[^>]*?)\s+encoding\s*=\s*[\"'][A-Za-z0-9_.:-]+[\"']", re.S)
_ENCODING_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "cp936": "gb18030"}  # GB18030 is a superset
_UTF8_NAMES = frozenset({"utf-8", "utf8"})
_PROLOG_ITEM = re.compile(rb"[ \t\r\n]+|<\?.*?\?>|<!--.*?-->", re.S)
_POSITION_SUFFIX = re.compile(r",? line \d+, column \d+\s*$")

_FORBIDDEN_DTD = (
    "CAP 文档含有 DTD/实体声明（DOCTYPE/ENTITY），出于安全原因拒收（防止实体膨胀和外部实体读取）；"
    "请让发布系统去掉 DOCTYPE"
)


def _bad_encoding_line(body: bytes, e: UnicodeDecodeError, encoding: str) -> CapError:
    line = body[: e.start].count(b"\n") + 1
    return CapError(
        CapErrorKind.BAD_ENCODING,
        f"CAP 文档第 {line} 行含有不符合 {encoding} 编码的字节，请检查发布系统的编码设置（建议 UTF-8）",
    )


def _as_utf8(data: bytes) -> tuple[bytes, bool]:
    """The document as UTF-8 bytes, and whether it was passed through undecoded (so still unchecked)."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :], True
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, body = "utf-16", data
    else:
        m = _DECL.match(data)
        declared = m.group(1).decode("ascii").lower() if m else "utf-8"
        if declared in _UTF8_NAMES:
            return data, True
        encoding, body = _ENCODING_ALIASES.get(declared, declared), data
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise CapError(
                CapErrorKind.BAD_ENCODING,
                f"CAP 文档声明了不支持的字符编码 {declared!r}，请让发布系统改用 UTF-8 或 GB18030",
            ) from None
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as e:
        raise _bad_encoding_line(body, e, encoding) from None
    # Decoded here: drop the declared encoding so libxml2 reads the UTF-8 we hand it.
    text = _DECL_ENC_ATTR.sub(r"\1", text.lstrip("\ufeff"), count=1)
    return text.encode("utf-8"), False


def _refuse_doctype(utf8: bytes) -> None:
    """Walk the prolog (XML declaration, whitespace, comments, processing instructions); a ``<!DOCTYPE``
    there is refused. A DOCTYPE anywhere else is not XML and libxml2 rejects it as malformed."""
    pos, end = 0, len(utf8)
    while pos < end:
        m = _PROLOG_ITEM.match(utf8, pos)
        if m is None:
            break
        pos = m.end()
    if utf8.startswith(b"<!DOCTYPE", pos):
        raise CapError(CapErrorKind.FORBIDDEN_DTD, _FORBIDDEN_DTD)


def _parser() -> etree.XMLParser:
    # One per call: lxml parsers are not thread-safe, and making one costs about a microsecond.
    return etree.XMLParser(
        encoding="utf-8",
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def _too_deep(line: int, max_depth: int) -> CapError:
    return CapError(
        CapErrorKind.TOO_DEEP,
        f"CAP 文档第 {line} 行元素嵌套超过 {max_depth} 层，已拒收；正常 CAP 不超过 6 层，请确认来源",
    )


_DEPTH_PROBES = threading.local()  # per thread: compiled XPath objects are not shared across threads


def _check_depth(root: Element, max_depth: int) -> None:
    """Refuse an element deeper than ``max_depth`` (the root is depth 1); evaluated in C by libxml2."""
    probes: dict[int, Any] = getattr(_DEPTH_PROBES, "by_depth", None) or {}
    _DEPTH_PROBES.by_depth = probes
    probe = probes.get(max_depth)
    if probe is None:
        probe = probes[max_depth] = etree.XPath("/*" * (max_depth + 1))
    too_deep = probe(root)
    if too_deep:
        raise _too_deep(line_of(too_deep[0]), max_depth)


def load_xml(data: bytes, max_bytes: int, max_depth: int) -> Element:
    """The root element of a safely parsed document (comments and processing instructions removed),
    or `CapError` (TOO_LARGE, BAD_ENCODING, FORBIDDEN_DTD, TOO_DEEP, MALFORMED_XML)."""
    if len(data) > max_bytes:
        raise CapError(
            CapErrorKind.TOO_LARGE,
            f"CAP 文档大小 {len(data)} 字节，超过上限 {max_bytes} 字节，已拒收；请确认来源，必要时调整上限",
        )
    utf8, unchecked = _as_utf8(data)
    _refuse_doctype(utf8)
    try:
        root = etree.fromstring(utf8, _parser())
    except etree.XMLSyntaxError as e:
        line, col = e.position
        if "depth" in str(e.msg).lower():
            raise _too_deep(line, max_depth) from None
        if unchecked:
            try:
                utf8.decode("utf-8")
            except UnicodeDecodeError as u:
                raise _bad_encoding_line(utf8, u, "utf-8") from None
        if not utf8.strip():
            raise CapError(CapErrorKind.MALFORMED_XML, "CAP 文档为空，请检查发布系统输出") from None
        raise CapError(
            CapErrorKind.MALFORMED_XML,
            f"CAP 文档不是合法的 XML（第 {line} 行第 {col} 列：{_POSITION_SUFFIX.sub('', str(e.msg))}），"
            "请检查发布系统输出是否完整",
        ) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise CapError(CapErrorKind.FORBIDDEN_DTD, _FORBIDDEN_DTD)
    _check_depth(root, max_depth)
    return root
