"""Safe loading of CAP XML (预警 CAP 文档的安全解析): bytes in, a small element tree with line numbers out.

Owns: the size limit, charset decoding (BOM, declared GB18030/GBK/GB2312/ISO-8859-1, UTF-16) and the
defusedxml parse with DTDs/entities forbidden and a nesting limit. Never interprets CAP fields (see
`cap`), never resolves entities or URIs, never does I/O.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from broadcast.sources.cap_errors import CapError, CapErrorKind


@dataclass
class Node:
    ns: str
    name: str
    line: int
    text: str = ""
    children: list[Node] = field(default_factory=list)

    def kids(self, name: str) -> Iterator[Node]:
        return (c for c in self.children if c.name == name)

    def first(self, name: str) -> Node | None:
        return next(self.kids(name), None)


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class _Builder:
    """A tree-builder target that records line numbers and stops at the depth limit."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.parser: Any = None
        self.stack: list[Node] = []
        self.root: Node | None = None
        self._text: list[str] = []

    def _line(self) -> int:
        return int(self.parser.parser.CurrentLineNumber) if self.parser is not None else 0

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if len(self.stack) >= self.max_depth:
            raise _TooDeep(self._line())
        if self.stack:
            self.stack[-1].text += "".join(self._text)
        self._text = []
        ns, _, name = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        node = Node(ns=ns, name=name, line=self._line())
        if self.stack:
            self.stack[-1].children.append(node)
        else:
            self.root = node
        self.stack.append(node)

    def end(self, tag: str) -> None:
        node = self.stack.pop()
        node.text += "".join(self._text)
        self._text = []

    def data(self, data: str) -> None:
        self._text.append(data)

    def close(self) -> Node | None:
        return self.root


_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9_.:-]+)[\"']", re.S)
_DECL_ENC_ATTR = re.compile(r"(<\?xml[^>]*?)\s+encoding\s*=\s*[\"'][A-Za-z0-9_.:-]+[\"']", re.S)
_ENCODING_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "cp936": "gb18030"}  # GB18030 is a superset


def _decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        encoding, body = "utf-8", data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, body = "utf-16", data
    else:
        m = _DECL.match(data)
        declared = m.group(1).decode("ascii").lower() if m else "utf-8"
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
        line = body[: e.start].count(b"\n") + 1
        raise CapError(
            CapErrorKind.BAD_ENCODING,
            f"CAP 文档第 {line} 行含有不符合 {encoding} 编码的字节，请检查发布系统的编码设置（建议 UTF-8）",
        ) from None
    return text.lstrip("\ufeff")


def load_xml(data: bytes, max_bytes: int, max_depth: int) -> Node:
    if len(data) > max_bytes:
        raise CapError(
            CapErrorKind.TOO_LARGE,
            f"CAP 文档大小 {len(data)} 字节，超过上限 {max_bytes} 字节，已拒收；请确认来源，必要时调整上限",
        )
    text = _decode(data)
    # The text is already decoded: drop the declared encoding so expat reads the UTF-8 we hand it.
    text = _DECL_ENC_ATTR.sub(r"\1", text, count=1)
    builder = _Builder(max_depth)
    parser = DET.DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    builder.parser = parser
    try:
        parser.feed(text.encode("utf-8"))
        root = parser.close()
    except (DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden, DefusedXmlException):
        raise CapError(
            CapErrorKind.FORBIDDEN_DTD,
            "CAP 文档含有 DTD/实体声明（DOCTYPE/ENTITY），出于安全原因拒收（防止实体膨胀和外部实体读取）；"
            "请让发布系统去掉 DOCTYPE",
        ) from None
    except _TooDeep as e:
        raise CapError(
            CapErrorKind.TOO_DEEP,
            f"CAP 文档第 {e.line} 行元素嵌套超过 {max_depth} 层，已拒收；正常 CAP 不超过 6 层，请确认来源",
        ) from None
    except DET.ParseError as e:
        line, col = getattr(e, "position", (0, 0))
        raise CapError(
            CapErrorKind.MALFORMED_XML,
            f"CAP 文档不是合法的 XML（第 {line} 行第 {col} 列：{e}），请检查发布系统输出是否完整",
        ) from None
    if not isinstance(root, Node):
        raise CapError(CapErrorKind.MALFORMED_XML, "CAP 文档为空，请检查发布系统输出")
    return root
