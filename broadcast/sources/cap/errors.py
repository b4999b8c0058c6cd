"""Errors of CAP intake: one exception type with a failure-kind enum and an operator message in Chinese.

Owns nothing else; never imports the rest of the product.
"""

from __future__ import annotations

from enum import StrEnum


class CapErrorKind(StrEnum):
    MALFORMED_XML = "malformed_xml"
    FORBIDDEN_DTD = "forbidden_dtd"
    TOO_LARGE = "too_large"
    TOO_DEEP = "too_deep"
    BAD_ENCODING = "bad_encoding"
    NOT_CAP = "not_cap"
    WRONG_NAMESPACE = "wrong_namespace"
    MISSING_FIELD = "missing_field"
    BAD_VALUE = "bad_value"
    BAD_POLYGON = "bad_polygon"
    BAD_CIRCLE = "bad_circle"
    # Raised by cap_signature:
    SIGNATURE_MISSING = "signature_missing"
    SIGNATURE_INVALID = "signature_invalid"
    # Raised by cap_convert:
    NOT_BROADCASTABLE = "not_broadcastable"
    NO_AREA = "no_area"
    UNKNOWN_AREA = "unknown_area"


class CapError(Exception):
    """A CAP document that cannot be used; `message` is for the operator (Chinese, actionable)."""

    def __init__(self, kind: CapErrorKind, message: str, *, identifier: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.identifier = identifier

    def __str__(self) -> str:
        prefix = f"[{self.kind}]"
        if self.identifier:
            prefix += f"[{self.identifier}]"
        return f"{prefix} {self.message}"
