"""CAP polygons: the fast certificate must agree exactly with the float-by-float check it replaces (same
rings accepted with the same points, same rings refused with the same message), and `CapRing` must
behave like the tuple of points it stands for."""

from __future__ import annotations

import math
import pickle
import random
import re

import pytest

from broadcast.sources.cap.convert import to_draft
from broadcast.sources.cap.errors import CapError, CapErrorKind
from broadcast.sources.cap.parse import parse_cap
from broadcast.sources.cap.polygon import CapRing, certified_count, validate_ring
from tests.sources.cap_doc import alert, info

# --- the reference: the parser's polygon check before this change, verbatim ---------------------------

_SEP = re.compile(r"\s*,\s*")


def _ref_point(token: str) -> tuple[float, float]:
    lat_s, lon_s = token.split(",")
    lat, lon = float(lat_s), float(lon_s)
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lon <= 180.0):
        hint = "（纬度超出范围，经纬度可能写反了）" if abs(lat) > 90.0 and abs(lon) <= 90.0 else ""
        raise ValueError(f"坐标 {token} 超出范围{hint}")
    return lat, lon


def reference(raw: str, area_desc: str, line: int) -> tuple[tuple[float, float], ...]:
    where = f"区域「{area_desc}」第 {line} 行"
    try:
        points = tuple(_ref_point(t) for t in _SEP.sub(",", raw.strip()).split())
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


def outcome(fn: object, text: str) -> tuple[str, object]:
    try:
        result = fn(text, "安宁市", 7)  # type: ignore[operator]
    except CapError as e:
        return ("refused", (e.kind, e.message))
    return ("accepted", tuple(result))


def agrees(text: str) -> None:
    assert outcome(validate_ring, text) == outcome(reference, text), text[:200]


# --- generated rings ---------------------------------------------------------------------------------


def ring_points(rng: random.Random, n: int, lat0: float, lon0: float, r: float) -> list[tuple[float, float]]:
    pts = [
        (
            lat0 + r * math.sin(2 * math.pi * i / n) * rng.uniform(0.5, 1),
            lon0 + r * math.cos(2 * math.pi * i / n),
        )
        for i in range(n)
    ]
    return [*pts, pts[0]]


def spell(rng: random.Random, pts: list[tuple[float, float]], style: str) -> str:
    def num(v: float) -> str:
        if style == "fixed":
            return f"{v:.6f}"
        if style == "trimmed":
            return f"{v:.{rng.randint(0, 7)}f}".rstrip("0") or "0"
        if style == "repr":
            return repr(v)
        if style == "exp":
            return f"{v:e}"
        if style == "plus":
            return f"{v:+.4f}"
        if style == "lead0":
            return f"{v:011.5f}"
        raise AssertionError(style)

    tokens = [f"{num(a)},{num(b)}" for a, b in pts]
    tokens[-1] = tokens[0]  # closed as written (the trimmed style would otherwise spell them apart)
    sep = rng.choice([" ", " ", "\n", "  ", "\t", " \n  "]) if rng.random() < 0.3 else " "
    return sep.join(tokens)


CENTRES = [
    (24.9, 102.4),
    (-33.9, 151.2),
    (0.0, 0.0),
    (64.1, -21.9),
    (-89.0, 179.0),
    (89.5, -179.5),
    (9.5, 99.0),
]


@pytest.mark.parametrize("seed", range(12))
def test_certificate_agrees_with_reference_on_generated_rings(seed: int) -> None:
    rng = random.Random(seed)
    for style in ("fixed", "trimmed", "repr", "exp", "plus", "lead0"):
        for lat0, lon0 in CENTRES:
            pts = ring_points(rng, rng.randint(3, 60), lat0, lon0, rng.choice([0.01, 0.3, 2.0]))
            agrees(spell(rng, pts, style))


@pytest.mark.parametrize(
    "text",
    [
        # limits, exactly and just beyond
        "90,180 -90,-180 0,0 90,180",
        "90.0,180.0 -90.000,-180.00 0,0 90.0,180.0",
        "90.0000001,10 0,0 1,1 90.0000001,10",
        "10,180.0000001 0,0 1,1 10,180.0000001",
        "89.999999,179.999999 -89.999999,-179.999999 0,1 89.999999,179.999999",
        "95,102 0,0 1,1 95,102",
        "102.3,24.9 102.4,25.0 102.4,24.8 102.3,24.9",
        "24.9,190.4 25.0,102.4 24.8,102.4 24.9,190.4",
        "24.9,199.9 25.0,102.4 24.8,102.4 24.9,199.9",
        "24.9,280 25.0,102.4 24.8,102.4 24.9,280",
        "-24.9,-179.9 -25.0,-102.4 -24.8,-102.4 -24.9,-179.9",
        "-24.9,-181.0 -25.0,-102.4 -24.8,-102.4 -24.9,-181.0",
        "024.9,0102.4 025.0,0102.5 024.8,0102.5 024.9,0102.4",
        "099.5,10 0,0 1,1 099.5,10",
        # spellings float() accepts, and ones it does not
        ".5,5. -.5,-5. 5,.5 .5,5.",
        "24.9,102.3 25.0,102.4 24.8,102.4 24.90,102.30",
        "-0.0,0.0 1,1 2,0 0.0,-0.0",
        "1e1,2e1 3,4 5,6 1e1,2e1",
        "inf,1 2,3 4,5 inf,1",
        "nan,1 2,3 4,5 nan,1",
        "--1,2 3,4 5,6 --1,2",
        "1-2,3 3,4 5,6 1-2,3",
        "1.2.3,4 3,4 5,6 1.2.3,4",
        "1_0,2 3,4 5,6 1_0,2",
        ".,1 2,3 4,5 .,1",
        "-,1 2,3 4,5 -,1",
        "1,,2 3,4 5,6 1,,2",
        "1,2, 3,4 5,6 1,2",
        ",1 2,3 4,5 ,1",
        "1, 2 3 ,4 5 , 6 1,2",
        "24.9, 102.3 25.0, 102.4 24.8, 102.4 24.9, 102.3",
        "24.9,102.3 25.0 102.4 24.8,102.4 24.9,102.3",
        "24.9,102.3,5 25.0,102.4 24.8,102.4 24.9,102.3",
        "a,b c,d e,f a,b",
        "２４.9,102.3 25.0,102.4 24.8,102.4 ２４.9,102.3",
        "24.9,102.3\u00a025.0,102.4 24.8,102.4 24.9,102.3",
        "24.9,102.3\u300025.0,102.4 24.8,102.4 24.9,102.3",
        # structure
        "24.9,102.3 25.0,102.4 24.9,102.3",
        "24.9,102.3 25.0,102.4 24.8,102.4 24.9,102.31",
        "24.9,102.3 24.9,102.3 25.0,102.4 24.9,102.3",
        "24.9,102.3 25.0,102.4 25.0,102.4 24.9,102.3",
        "24.9,102.3 25.0,102.4 24.9,102.3 25.0,102.4 24.9,102.3",
        "1,1 1,1 1,1 2,2 3,3 1,1",
        "  24.9,102.3 25.0,102.4 24.8,102.4 24.9,102.3  ",
        "\n24.9,102.3\n25.0,102.4\n24.8,102.4\n24.9,102.3\n",
        "",
        "   ",
    ],
)
def test_certificate_agrees_with_reference_on_edge_cases(text: str) -> None:
    agrees(text)


def test_mutations_of_a_valid_ring_agree() -> None:
    rng = random.Random(99)
    base = spell(rng, ring_points(rng, 40, 24.9, 102.4, 0.2), "fixed")
    alphabet = "0123456789.,- 9+eX"
    for _ in range(400):
        chars = list(base)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(chars))
            action = rng.random()
            if action < 0.4:
                chars[i] = rng.choice(alphabet)
            elif action < 0.7:
                del chars[i]
            else:
                chars.insert(i, rng.choice(alphabet))
        agrees("".join(chars))


def test_typical_rings_take_the_fast_path() -> None:
    rng = random.Random(5)
    pts = ring_points(rng, 20_000, 24.9, 102.4, 0.2)
    fixed = " ".join(f"{a:.6f},{b:.6f}" for a, b in pts[:-1]) + " " + f"{pts[0][0]:.6f},{pts[0][1]:.6f}"
    assert certified_count(fixed) is not None
    trimmed = " ".join(f"{a:.5f},{b:.4f}".rstrip("0") for a, b in pts[:-1])
    trimmed += " " + trimmed.split(" ", 1)[0]
    assert certified_count(trimmed) is not None  # several token shapes
    western = " ".join(f"{a:.4f},{b - 20:.4f}" for a, b in pts[:-1])  # 82.x° E: two-digit longitudes
    western += " " + western.split(" ", 1)[0]
    assert certified_count(western) is not None
    ring = validate_ring(fixed, "x", 1)
    assert len(ring) == 20_001 and ring[0] == ring[-1] == (round(pts[0][0], 6), round(pts[0][1], 6))


# --- CapRing behaves like the tuple it replaces -------------------------------------------------------


def test_cap_ring_is_a_tuple_like_sequence() -> None:
    text = "24.9,102.3 25.0,102.4 24.8,102.4 24.9,102.3"
    ring = validate_ring(text, "x", 1)
    as_tuple = ((24.9, 102.3), (25.0, 102.4), (24.8, 102.4), (24.9, 102.3))
    wrapped: tuple[object, ...] = (ring,)
    lookup: dict[object, int] = {ring: 1}
    assert len(ring) == 4
    assert ring == as_tuple and as_tuple == ring and wrapped == (as_tuple,)
    assert hash(ring) == hash(as_tuple) and lookup[as_tuple] == 1
    assert ring[1] == (25.0, 102.4) and ring[-1] == ring[0] and ring[1:3] == as_tuple[1:3]
    assert list(ring) == list(as_tuple) and tuple(ring) == as_tuple
    assert (24.8, 102.4) in ring and ring.index((24.8, 102.4)) == 2
    respelled = validate_ring("24.90,102.30 25.0,102.40 24.8,102.4 24.9,102.3", "x", 1)
    assert respelled == ring and ring != validate_ring("24.9,102.3 25.0,102.4 24.7,102.4 24.9,102.3", "x", 1)
    assert ring != [list(p) for p in as_tuple] and ring != "x"
    assert pickle.loads(pickle.dumps(ring)) == ring
    assert CapRing.of(as_tuple) == ring and "4 points" in repr(ring)


def test_big_polygon_through_parse_and_conversion() -> None:
    rng = random.Random(1)
    pts = ring_points(rng, 5_000, 24.9, 102.4, 0.2)
    text = " ".join(f"{a:.6f},{b:.6f}" for a, b in pts[:-1])
    text += " " + text.split(" ", 1)[0]
    doc = alert(
        info(
            language="en-US", event="Rainstorm", headline="Rainstorm", area_extra=f"<polygon>{text}</polygon>"
        ),
        info(area_extra=f"<polygon>{text}</polygon>"),
    )
    a = parse_cap(doc, max_bytes=1 << 20)
    zh_ring, en_ring = a.infos[1].areas[0].polygons[0], a.infos[0].areas[0].polygons[0]
    assert zh_ring is en_ring  # the repeated polygon is validated once
    assert len(zh_ring) == 5_001
    conv = to_draft(a, now=a.sent)
    assert len(conv.polygons) == 1 and conv.polygons[0][0] == (round(pts[0][0], 6), round(pts[0][1], 6))


def test_broken_big_polygon_is_refused_at_parse_time() -> None:
    rng = random.Random(2)
    pts = ring_points(rng, 5_000, 24.9, 102.4, 0.2)
    tokens = [f"{a:.6f},{b:.6f}" for a, b in pts]
    tokens[2500] = "24.900000,192.400000"  # one bad longitude deep inside
    with pytest.raises(CapError) as e:
        parse_cap(alert(info(area_extra=f"<polygon>{' '.join(tokens)}</polygon>")))
    assert e.value.kind is CapErrorKind.BAD_POLYGON
    assert "192.4" in e.value.message and "区域「安宁市」" in e.value.message
