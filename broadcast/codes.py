"""Identifier rules of the EB standards: 23-digit resource codes (EBRID, 资源编码), 35-digit EBM ids,
12-digit administrative area codes (行政区划代码), and area matching with zeros as wildcards.

Pure functions only; see eb-protocols §1 and §3. Never does I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import IntEnum

_DIGITS = re.compile(r"^\d+$")


class ResourceSubtype(IntEnum):
    PLATFORM = 1
    ADAPTER = 2
    BROADCAST_SYSTEM = 3
    TERMINAL = 4


# Resource type codes (资源类型码) used by this product.
TYPE_COUNTY_PLATFORM = "0101"
TYPE_FM = "0301"
TYPE_CABLE_DTV = "0302"
TYPE_LOUDSPEAKER_SYSTEM = "0314"
TYPE_MULTI_FRONT_END = "0399"


@dataclass(frozen=True)
class ResourceCode:
    """A parsed 23-digit EBRID: level(1) area(12) type(4) type_seq(2) subtype(2) subtype_seq(2)."""

    level: int
    area_code: str
    type_code: str
    type_seq: int
    subtype: int
    subtype_seq: int

    def __str__(self) -> str:
        return (
            f"{self.level:01d}{self.area_code}{self.type_code}"
            f"{self.type_seq:02d}{self.subtype:02d}{self.subtype_seq:02d}"
        )

    @classmethod
    def parse(cls, text: str) -> ResourceCode:
        if len(text) != 23 or not _DIGITS.match(text):
            raise ValueError(f"resource code must be 23 digits, got {text!r}")
        return cls(
            level=int(text[0]),
            area_code=text[1:13],
            type_code=text[13:17],
            type_seq=int(text[17:19]),
            subtype=int(text[19:21]),
            subtype_seq=int(text[21:23]),
        )


def normalise_area_code(code: str) -> str:
    """Return the 12-digit form of a 6-, 9- or 12-digit administrative area code."""
    code = code.strip()
    if not _DIGITS.match(code) or len(code) not in (6, 9, 12):
        raise ValueError(f"area code must be 6, 9 or 12 digits, got {code!r}")
    return code.ljust(12, "0")


# Field widths of a 12-digit area code: province, city, county, town, village.
_AREA_FIELDS = (2, 2, 2, 3, 3)


def area_prefix(code: str) -> str:
    """The significant prefix of an area code: trailing all-zero fields are wildcards."""
    full = normalise_area_code(code)
    fields: list[str] = []
    pos = 0
    for width in _AREA_FIELDS:
        fields.append(full[pos : pos + width])
        pos += width
    while fields and set(fields[-1]) == {"0"}:
        fields.pop()
    return "".join(fields)


def area_matches(target: str, area_code: str) -> bool:
    """True when ``area_code`` lies inside ``target`` (zeros in ``target`` as wildcards)."""
    return area_code.startswith(area_prefix(target))


def ebm_id(platform_code: str, day: date, sequence: int) -> str:
    """35-digit EBM id: issuing platform EBRID(23) + yyyyMMdd + 4-digit daily sequence."""
    ResourceCode.parse(platform_code)
    if not 0 < sequence <= 9999:
        raise ValueError(f"EBM daily sequence out of range: {sequence}")
    return f"{platform_code}{day:%Y%m%d}{sequence:04d}"


def is_ebm_id(text: str) -> bool:
    return len(text) == 35 and bool(_DIGITS.match(text))
