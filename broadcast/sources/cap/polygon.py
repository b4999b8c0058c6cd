"""CAP polygons (多边形区域): exact validation of a ring's text, and a ring that converts to floats lazily.

Owns: deciding whether the text of a CAP ``<polygon>`` is a usable ring — coordinates ``lat,lon``
separated by whitespace, at least 4 points, closed (first point == last point), at least 3 distinct
points, latitudes in [-90, 90] and longitudes in [-180, 180] — raising ``BAD_POLYGON`` with a Chinese
message that says what to fix; and `CapRing`, the read-only sequence of (lat, lon) the parser hands out.
Never does I/O, never selects terminals (see ``terminals.geo``), never accepts a ring the exact check
would refuse.

Why it is fast and still exact (a ring may have 20,000 points; ``float()`` on each of 40,000 numbers
dominated the whole parse):
- `validate_ring` first tries a *certificate* made of C-speed bytes operations. Usual case (single
  spaces, every token of one shape such as ``dd.dddddd,ddd.dddddd``): the text is taken in ~64 KB
  pieces (no second copy of a 1 MB polygon), each ``translate``d to character classes (digit → ``d``)
  and compared with the shape repeated — that proves every token is ``number,number`` in a spelling
  ``float()`` accepts; integer digits then sit at fixed offsets, so strided slices prove every latitude
  is below 90 and every longitude below 180 in magnitude. Otherwise (several shapes, odd spacing): the
  text is normalised, each distinct shape is checked by one regex and two literal-prefixed regex
  searches (``" 9d"`` latitudes, ``",18d"``/``",2dd"`` longitudes) find possible out-of-range values.
  Closure compares the first and last token strings (floats only if they differ); distinctness looks at
  the first few points.
- Anything the certificate cannot prove (odd spelling, exponent, ``+``, leading zeros, a value at or
  beyond the limits, a ring that really is broken) goes to the exact check (`_exact_ring`), which
  converts every coordinate and produces the error messages. The certificate only ever says "valid";
  it never refuses, so it can never reject a ring the exact check accepts.
- `CapRing` keeps the normalised text and the point count; ``len`` is free, the floats are made (in C,
  ``map(float, …)``) on first indexing/iteration/hash and then cached. A ring from the exact path holds
  its points from the start. Either way the ring was fully validated before the alert left the parser,
  so materialising can never fail later.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, overload

from broadcast.sources.cap.errors import CapError, CapErrorKind

__all__ = ["CapRing", "Point", "validate_ring"]

Point = tuple[float, float]

_POINT_SEP = re.compile(r"\s*,\s*")
# byte → class for the certificate: digits → "d"; "." "," "-" and space kept; anything else → "x".
_CLASS = bytes(
    ord("d") if chr(i).isdigit() and i < 128 else (i if chr(i) in ".,- " else ord("x")) for i in range(256)
)
# One token shape: number "," number, a number being "-"? digits "." digits with either part optional.
_SHAPE = re.compile(rb"-?(d*)(?:\.(d*))?,-?(d*)(?:\.(d*))?")
# Latitudes (after a space: the text is padded with one) of 90 or more / longitudes of 180 or more.
_LAT_90 = re.compile(rb" -?9\d")
_LON_180 = re.compile(rb",-?(?:1[89]|[2-9]\d)\d")
_IS_1 = bytes(1 if i == ord("1") else 0 for i in range(256))
_IS_8_OR_9 = bytes(1 if i in b"89" else 0 for i in range(256))


class CapRing(Sequence[Point]):
    """A validated closed ring of (lat, lon); converts its text to floats on first use.

    Compares equal to another `CapRing` or a tuple with the same points (so it can stand wherever a
    ``tuple[tuple[float, float], ...]`` ring was used) and hashes like that tuple.
    """

    __slots__ = ("_n", "_points", "_text")

    def __init__(self, text: str, count: int, points: tuple[Point, ...] | None = None) -> None:
        self._text = text  # normalised "lat,lon lat,lon …" ("" when built from points)
        self._n = count
        self._points = points

    @classmethod
    def of(cls, points: Sequence[Point]) -> CapRing:
        pts = tuple((float(lat), float(lon)) for lat, lon in points)
        return cls("", len(pts), pts)

    def points(self) -> tuple[Point, ...]:
        """The ring as a tuple of (lat, lon) floats (computed once)."""
        if self._points is None:
            numbers = map(float, self._text.replace(",", " ").split())
            self._points = tuple(zip(numbers, numbers, strict=True))
        return self._points

    def _first(self) -> Point:
        if self._points is not None:
            return self._points[0]
        return _floats(self._text[: self._text.find(" ")])

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> Point: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Point, ...]: ...

    def __getitem__(self, index: int | slice) -> Point | tuple[Point, ...]:
        return self.points()[index]

    def __iter__(self) -> Iterator[Point]:
        return iter(self.points())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CapRing):
            if self is other or (self._text and self._text == other._text):
                return True
            if self._n != other._n or self._first() != other._first():
                return False  # decided without converting the whole rings
            return self.points() == other.points()
        if isinstance(other, tuple):
            return self._n == len(other) and self.points() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.points())

    def __repr__(self) -> str:
        head = ", ".join(f"({lat}, {lon})" for lat, lon in self.points()[:3])
        return f"CapRing({self._n} points: {head}, …)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (CapRing, (self._text, self._n, self._points))


def certified_count(text: str) -> tuple[str, int] | None:
    """(normalised text, point count) when the cheap certificate proves the ring valid, else None."""
    in_range = _uniform_in_range(text)
    if in_range is None:  # not single-spaced tokens of one shape: normalise, then check shape by shape
        text = " ".join(text.split())
        if ", " in text or " ," in text:
            text = _POINT_SEP.sub(",", text)
        in_range = _mixed_in_range(text)
        count = text.count(" ") + 1
    else:
        count = (len(text) + 1) // (text.find(" ") + 1)
    if not in_range:
        return None
    first, last = text[: text.find(" ")], text[text.rfind(" ") + 1 :]
    if first != last and _floats(first) != _floats(last):
        return None
    distinct: set[Point] = set()
    start = 0
    for _ in range(16):  # three distinct points are nearly always among the first few
        end = text.find(" ", start)
        distinct.add(_floats(text[start:] if end < 0 else text[start:end]))
        if len(distinct) == 3 or end < 0:
            break
        start = end + 1
    if len(distinct) < 3:
        return None
    return text, count


def _shape_limits(shape: bytes) -> tuple[int, int] | None:
    """(latitude, longitude) integer-part lengths of a token shape, or None for a shape the exact check
    must judge (a number without digits, more than 2 / 3 integer digits, anything but d . , -)."""
    m = _SHAPE.fullmatch(shape)
    if m is None:
        return None
    lat_int, lat_frac, lon_int, lon_frac = m.groups()
    if not (lat_int or lat_frac) or not (lon_int or lon_frac) or len(lat_int) > 2 or len(lon_int) > 3:
        return None
    return len(lat_int), len(lon_int)


def _uniform_in_range(text: str) -> bool | None:
    """Single-spaced tokens all of one shape (the usual case: fixed decimals): True when every latitude
    is below 90 and every longitude below 180 in magnitude, False when that is not proven, None when
    the text is not of that form. Integer digits then sit at fixed offsets, read with C-speed slices.

    Works through the text in pieces of about 64 KB: each piece is encoded, classified and compared to
    the expected shapes on its own, so no second copy of a 1 MB polygon is ever made."""
    width = text.find(" ")
    stride, end = width + 1, len(text)
    if width <= 0 or (end + 1) % stride or (end + 1) // stride < 4:
        return None
    try:
        shape = text[:width].encode("ascii").translate(_CLASS)
    except UnicodeEncodeError:
        return None
    limits = _shape_limits(shape)
    if limits is None:
        return None  # may still be a spelling the normalising path accepts ("24.9, 102.3")
    lat_digits, lon_digits = limits
    lat_at = 1 if shape[:1] == b"-" else 0
    comma = shape.index(b",")
    lon_at = comma + 1 + (shape[comma + 1 : comma + 2] == b"-")
    unit = (shape + b" ") * max(1, 65536 // stride)
    size = len(unit)
    for pos in range(0, end, size):
        try:
            piece = text[pos : pos + size].encode("ascii")
        except UnicodeEncodeError:
            return None
        if piece.translate(_CLASS) != (unit if len(piece) == size else unit[: len(piece)]):
            return None
        if lat_digits == 2 and b"9" in piece[lat_at::stride]:
            return False  # some latitude is 9x: let the exact check decide
        if lon_digits == 3:
            hundreds = piece[lon_at::stride]
            if hundreds.translate(None, b"01"):
                return False  # 2xx…9xx
            tens_8_9 = int.from_bytes(piece[lon_at + 1 :: stride].translate(_IS_8_OR_9), "big")
            if tens_8_9 & int.from_bytes(hundreds.translate(_IS_1), "big"):
                return False  # some longitude is 18x / 19x
    return True


def _mixed_in_range(text: str) -> bool:
    """Any single-spaced text: every distinct token shape is checked, then the limits are searched."""
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        return False
    shapes = set(raw.translate(_CLASS).split(b" "))
    if len(shapes) == 0 or len(text.split(" ", 4)) < 4:
        return False
    lat2 = lon3 = False
    for shape in shapes:
        limits = _shape_limits(shape)
        if limits is None:
            return False
        lat2 = lat2 or limits[0] == 2
        lon3 = lon3 or limits[1] == 3
    if lat2 and _LAT_90.search(b" " + raw):
        return False
    return not (lon3 and _LON_180.search(raw))


def _floats(token: str) -> Point:
    lat, lon = token.split(",")
    return float(lat), float(lon)


def _point(token: str) -> Point:
    lat_s, lon_s = token.split(",")
    lat, lon = float(lat_s), float(lon_s)
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lon <= 180.0):
        hint = "（纬度超出范围，经纬度可能写反了）" if abs(lat) > 90.0 and abs(lon) <= 90.0 else ""
        raise ValueError(f"坐标 {token} 超出范围{hint}")
    return lat, lon


def _exact_ring(raw: str, where: str) -> tuple[Point, ...]:
    """Convert and check every coordinate; the source of every BAD_POLYGON message."""
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


def validate_ring(text: str, area_desc: str, line: int) -> CapRing:
    """The ring written in ``text`` (a CAP polygon), or `CapError(BAD_POLYGON)` naming area and line."""
    certified = certified_count(text.strip())
    if certified is not None:
        return CapRing(*certified)
    points = _exact_ring(text, f"区域「{area_desc}」第 {line} 行")
    return CapRing("", len(points), points)
