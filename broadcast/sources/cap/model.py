"""CAP data model (the parse result): status/type/scope enums and the values CAP allows for urgency,
severity and certainty, CapResource (embedded audio decoded on first use), CapArea, CapInfo, CapAlert,
and the strict Base64 check. Owns no parsing: `broadcast.sources.cap.parse` builds these; must never read
XML or do I/O.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from dataclasses import FrozenInstanceError, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

_ASCII_WHITESPACE = bytes(c for c in range(128) if chr(c).isspace())  # what str.split() drops


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


# The values CAP allows in an info block (kept as text in CapInfo: feeds use them as written).
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64_packed(raw: str) -> bytes:
    """The Base64 text as ASCII bytes; Unicode spaces (U+3000…) are dropped here, ASCII ones later."""
    if raw.isascii():
        return raw.encode("ascii")
    return "".join(raw.split()).encode("ascii")  # other non-ASCII: UnicodeEncodeError (a ValueError)


def check_base64(raw: str) -> bool:
    """Would `decode_base64` accept ``raw``? The same verdict (``binascii.a2b_base64`` strict mode, as
    Python 3.11 applies it once whitespace is gone), without decoding, in C-speed bytes operations:
    alphabet characters, then only ``=`` (not first); D data characters and P ``=`` with D % 4 == 0
    (any P), D % 4 == 2 and P == 2, or D % 4 == 3 and P == 1."""
    try:
        packed = _b64_packed(raw)
    except ValueError:
        return False
    others = packed.translate(None, _B64_ALPHABET)  # whitespace, padding and anything invalid
    rest = others.translate(None, _ASCII_WHITESPACE)
    pads = len(rest)
    data = len(packed) - len(others)
    if pads:
        if rest.strip(b"=") or not data:
            return False  # invalid characters, or nothing but padding (leading padding)
        if packed[packed.index(b"=") :].translate(None, _ASCII_WHITESPACE + b"="):
            return False  # data after the padding (so also: padding before data)
    tail = data % 4
    return tail == 0 or (tail == 2 and pads == 2) or (tail == 3 and pads == 1)


def decode_base64(raw: str) -> bytes:
    """Embedded content (``derefUri``): line breaks are normal in long Base64; anything else outside the
    alphabet, or wrong padding, is `ValueError` (``binascii.Error``)."""
    return binascii.a2b_base64(_b64_packed(raw).translate(None, _ASCII_WHITESPACE), strict_mode=True)


class CapResource:
    """A CAP ``resource`` (read-only, compares and hashes like the frozen dataclass it replaced).

    ``deref_uri`` (embedded content, e.g. a 500 KB MP3) is validated as Base64 by the parser but only
    decoded on first use (and cached): most alerts are converted and filed without anyone playing it."""

    __slots__ = ("_b64", "_deref", "description", "digest", "mime", "size", "uri")

    description: str
    mime: str
    uri: str
    digest: str
    size: int | None
    _deref: bytes | None
    _b64: str

    def __init__(
        self,
        description: str,
        mime: str,
        uri: str = "",
        deref_uri: bytes = b"",
        digest: str = "",
        size: int | None = None,
    ) -> None:
        put = object.__setattr__
        put(self, "description", description)
        put(self, "mime", mime)
        put(self, "uri", uri)
        put(self, "digest", digest)
        put(self, "size", size)
        put(self, "_deref", deref_uri)
        put(self, "_b64", "")

    @classmethod
    def embedded(
        cls, description: str, mime: str, uri: str, b64: str, digest: str, size: int | None
    ) -> CapResource:
        """A resource whose ``deref_uri`` is the Base64 text ``b64``, already checked by
        `check_base64` (so decoding it later cannot fail)."""
        r = cls(description, mime, uri, b"", digest, size)
        object.__setattr__(r, "_deref", None if b64 else b"")
        object.__setattr__(r, "_b64", b64)
        return r

    @property
    def deref_uri(self) -> bytes:
        deref = self._deref
        if deref is None:
            deref = decode_base64(self._b64)
            object.__setattr__(self, "_deref", deref)
        return deref

    def _key(self) -> tuple[Any, ...]:
        return (self.description, self.mime, self.uri, self.deref_uri, self.digest, self.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CapResource):
            return NotImplemented
        if self is other:
            return True
        if (self.description, self.mime, self.uri, self.digest, self.size) != (
            other.description,
            other.mime,
            other.uri,
            other.digest,
            other.size,
        ):
            return False
        if self._b64 and self._b64 == other._b64:
            return True  # the same text: no need to decode either
        return self.deref_uri == other.deref_uri

    def __hash__(self) -> int:
        return hash(self._key())

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        deref = (
            repr(self._deref) if self._deref is not None else f"<{len(self._b64)} Base64 chars, not decoded>"
        )
        return (
            f"CapResource(description={self.description!r}, mime={self.mime!r}, uri={self.uri!r}, "
            f"deref_uri={deref}, digest={self.digest!r}, size={self.size!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (CapResource, self._key())


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
    # (sender, identifier, sent), sent as the aware time's isoformat (a naive time read as Beijing time),
    # as in SourceRef.sent of the original
    references: tuple[tuple[str, str, str], ...] = ()
    note: str = ""
    infos: tuple[CapInfo, ...] = ()
    version: str = "1.2"
    signature_present: bool = False
    warnings: tuple[str, ...] = field(default=(), compare=False)
