"""Geometric targeting: polygons and circles over terminal coordinates, checked against geometry known
independently (hand-built squares, a convex hull around one Anning street, a slow winding-number
reference on random star polygons, haversine distances to known cities)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest

from broadcast.model import TerminalKind, TerminalRef
from terminals.geo import (
    GeoIndex,
    PreparedPolygon,
    haversine_km,
    resolve_geometry,
    terminals_in_circle,
    terminals_in_polygon,
)
from terminals.inventory import default_inventory
from terminals.inventory_model import Inventory

Point = tuple[float, float]


def _t(n: int, lat: float, lon: float) -> TerminalRef:
    return TerminalRef(
        resource_code=f"T{n:05d}",
        area_code="530181001000",
        name=f"t{n}",
        kind=TerminalKind.VILLAGE,
        physical_address=f"{n:012X}",
        latitude=lat,
        longitude=lon,
    )


def _names(found: Sequence[TerminalRef]) -> set[str]:
    return {t.name for t in found}


# ------------------------------------------------------------------------------------ hand-built shapes

SQUARE = [(24.0, 102.0), (24.0, 103.0), (25.0, 103.0), (25.0, 102.0), (24.0, 102.0)]


def test_square_inside_outside_and_boundary_rule() -> None:
    terminals = [
        _t(1, 24.5, 102.5),  # centre
        _t(2, 24.0, 102.0),  # a vertex
        _t(3, 24.0, 102.5),  # on the bottom (horizontal) edge
        _t(4, 24.5, 103.0),  # on the right (vertical) edge
        _t(5, 25.0, 102.7),  # on the top edge
        _t(6, 25.0000002, 102.5),  # just above the top edge, beyond tolerance
        _t(7, 24.5, 101.9999998),  # just left of the left edge
        _t(8, 24.5, 104.0),  # same latitude, far right
        _t(9, 24.5, 101.0),  # same latitude, far left (ray crosses both vertical edges)
    ]
    assert _names(terminals_in_polygon(terminals, SQUARE)) == {"t1", "t2", "t3", "t4", "t5"}


def test_ring_orientation_start_and_closure_do_not_matter() -> None:
    terminals = [_t(i, 24.0 + i * 0.11, 102.0 + (i % 5) * 0.26) for i in range(12)]
    base = _names(terminals_in_polygon(terminals, SQUARE))
    open_ring = SQUARE[:-1]
    assert _names(terminals_in_polygon(terminals, open_ring)) == base
    assert _names(terminals_in_polygon(terminals, list(reversed(SQUARE)))) == base
    assert _names(terminals_in_polygon(terminals, open_ring[2:] + open_ring[:2])) == base
    assert base  # the sample actually hits the square


def test_ray_through_a_vertex_is_counted_once() -> None:
    # A diamond: the horizontal ray from a point left of the centre passes exactly through the right vertex.
    diamond = [(24.0, 102.5), (24.5, 103.0), (25.0, 102.5), (24.5, 102.0)]
    inside = _t(1, 24.5, 102.2)
    left_outside = _t(2, 24.5, 101.5)  # ray passes through both side vertices
    below_vertex = _t(3, 23.9, 102.5)  # directly below the bottom vertex
    assert _names(terminals_in_polygon([inside, left_outside, below_vertex], diamond)) == {"t1"}


def test_concave_u_shape() -> None:
    # (lat, lon): a U opening north; the notch is lon 1..2, lat 1..3
    u_shape = [(0, 0), (0, 3), (3, 3), (3, 2), (1, 2), (1, 1), (3, 1), (3, 0)]
    terminals = [
        _t(1, 0.5, 0.5),  # bottom bar
        _t(2, 2.0, 1.5),  # inside the notch: outside the polygon
        _t(3, 2.0, 0.5),  # west arm
        _t(4, 2.0, 2.5),  # east arm
        _t(5, 1.0, 1.5),  # on the notch's floor edge: boundary, inside
    ]
    found = _names(terminals_in_polygon(terminals, [(float(a), float(b)) for a, b in u_shape]))
    assert found == {"t1", "t3", "t4", "t5"}


def test_degenerate_ring_is_refused() -> None:
    with pytest.raises(ValueError):
        PreparedPolygon.of([(24.0, 102.0), (24.5, 102.5), (24.0, 102.0)])


# ------------------------------------------------------------------------------- slow reference check


def _on_segment(p: Point, a: Point, b: Point, tol: float) -> bool:
    (py, px), (ay, ax), (by, bx) = p, a, b
    vx, vy = bx - ax, by - ay
    seg2 = vx * vx + vy * vy
    t = 0.0 if seg2 == 0 else max(0.0, min(1.0, ((px - ax) * vx + (py - ay) * vy) / seg2))
    return math.hypot(px - (ax + t * vx), py - (ay + t * vy)) <= tol


def _winding_inside(p: Point, ring: Sequence[Point]) -> bool:
    """Reference: boundary (distance to any segment) first, else winding number by summed angles."""
    n = len(ring)
    if any(_on_segment(p, ring[i], ring[(i + 1) % n], 5e-8) for i in range(n)):
        return True
    total = 0.0
    for i in range(n):
        a1 = math.atan2(ring[i][0] - p[0], ring[i][1] - p[1])
        a2 = math.atan2(ring[(i + 1) % n][0] - p[0], ring[(i + 1) % n][1] - p[1])
        d = a2 - a1
        while d > math.pi:
            d -= 2 * math.pi
        while d < -math.pi:
            d += 2 * math.pi
        total += d
    return abs(total) > math.pi


def _star(rng: random.Random, centre: Point, points: int, radius: float) -> list[Point]:
    radii = [radius * rng.uniform(0.3, 1.0) for _ in range(points)]
    return [
        (
            centre[0] + r * math.sin(2 * math.pi * i / points),
            centre[1] + r * math.cos(2 * math.pi * i / points),
        )
        for i, r in enumerate(radii)
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_slow_reference_on_random_star_polygons(seed: int) -> None:
    rng = random.Random(seed)
    centre = (24.9, 102.4)
    ring = _star(rng, centre, 300, 0.2)
    terminals = [
        _t(i, centre[0] + rng.uniform(-0.25, 0.25), centre[1] + rng.uniform(-0.25, 0.25)) for i in range(400)
    ]
    # plus terminals exactly on vertices and on edge midpoints: the boundary rule says inside
    for j in range(0, 300, 37):
        a, b = ring[j], ring[(j + 1) % 300]
        terminals.append(_t(1000 + j, *a))
        terminals.append(_t(2000 + j, (a[0] + b[0]) / 2, (a[1] + b[1]) / 2))
    expected = {t.name for t in terminals if _winding_inside((t.latitude, t.longitude), ring)}
    assert _names(terminals_in_polygon(terminals, ring)) == expected
    assert {f"t{1000 + j}" for j in range(0, 300, 37)} <= expected
    assert 50 < len(expected) < len(terminals)


# ---------------------------------------------------------------------------------------- Anning data


def _hull(points: list[Point]) -> list[Point]:
    """Andrew's monotone chain; counter-clockwise in (lon, lat), no repeated end point."""
    pts = sorted(set(points), key=lambda p: (p[1], p[0]))

    def cross(o: Point, a: Point, b: Point) -> float:
        return (a[1] - o[1]) * (b[0] - o[0]) - (a[0] - o[0]) * (b[1] - o[1])

    lower: list[Point] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[Point] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def _grow(hull: list[Point], margin: float) -> list[Point]:
    """Push each vertex away from the centroid by ``margin`` degrees (keeps a convex hull convex)."""
    cy = sum(p[0] for p in hull) / len(hull)
    cx = sum(p[1] for p in hull) / len(hull)
    out = []
    for y, x in hull:
        d = math.hypot(y - cy, x - cx)
        out.append((y + (y - cy) / d * margin, x + (x - cx) / d * margin))
    return out


def _densify(ring: list[Point], per_edge: int) -> list[Point]:
    out: list[Point] = []
    for i, a in enumerate(ring):
        b = ring[(i + 1) % len(ring)]
        out.extend(
            (a[0] + (b[0] - a[0]) * k / per_edge, a[1] + (b[1] - a[1]) * k / per_edge)
            for k in range(per_edge)
        )
    return [*out, out[0]]


@pytest.fixture(scope="module")
def anning() -> Inventory:
    return default_inventory()


BAJIE = "530181003"  # 八街街道, in the south of the county


def test_polygon_around_one_street_selects_exactly_its_terminals(anning: Inventory) -> None:
    street = [t for t in anning.terminals if t.area_code.startswith(BAJIE)]
    others = [t for t in anning.terminals if not t.area_code.startswith(BAJIE)]
    margin = 0.004
    ring = _densify(_grow(_hull([(t.latitude, t.longitude) for t in street]), margin), 40)
    # Independent precondition: the ring's bounding box already excludes every other street's terminal.
    lats, lons = [p[0] for p in ring], [p[1] for p in ring]
    assert not [
        t for t in others if min(lats) <= t.latitude <= max(lats) and min(lons) <= t.longitude <= max(lons)
    ]
    assert len(ring) > 300
    found = resolve_geometry(anning, [ring], [])
    assert [t.resource_code for t in found] == sorted(t.resource_code for t in street)


def test_bare_hull_through_terminals_includes_the_hull_vertices(anning: Inventory) -> None:
    street = [t for t in anning.terminals if t.area_code.startswith(BAJIE)]
    hull = _hull([(t.latitude, t.longitude) for t in street])  # vertices ARE terminals: boundary rule
    found = terminals_in_polygon(anning.terminals, hull)
    assert set(found) == set(street)


def test_circle_against_known_distances(anning: Inventory) -> None:
    # Kunming (25.0389, 102.7183) to Beijing (39.9042, 116.4074) is about 2,100 km great-circle.
    assert haversine_km(25.0389, 102.7183, 39.9042, 116.4074) == pytest.approx(2097, rel=0.01)
    # One degree of longitude at latitude 24.919 is 111.195 km * cos(24.919°).
    assert haversine_km(24.919, 102.0, 24.919, 103.0) == pytest.approx(
        111.195 * math.cos(math.radians(24.919)), rel=1e-3
    )
    centre = (24.919, 102.478)
    radius = 6.0
    expected = {
        t.resource_code
        for t in anning.terminals
        if haversine_km(centre[0], centre[1], t.latitude, t.longitude) <= radius
    }
    found = terminals_in_circle(anning.terminals, centre[0], centre[1], radius)
    assert {t.resource_code for t in found} == expected
    assert 10 < len(expected) < len(anning.terminals)


def test_circle_boundary_is_inclusive_and_zero_radius_hits_the_centre() -> None:
    centre = _t(1, 24.9, 102.4)
    east = _t(2, 24.9, 102.5)
    d = haversine_km(24.9, 102.4, 24.9, 102.5)
    assert _names(terminals_in_circle([centre, east], 24.9, 102.4, d)) == {"t1", "t2"}
    assert _names(terminals_in_circle([centre, east], 24.9, 102.4, d * 0.999)) == {"t1"}
    assert _names(terminals_in_circle([centre, east], 24.9, 102.4, 0.0)) == {"t1"}
    with pytest.raises(ValueError):
        terminals_in_circle([centre], 24.9, 102.4, -1.0)


def test_resolve_geometry_unions_shapes_once_in_resource_code_order(anning: Inventory) -> None:
    street = [t for t in anning.terminals if t.area_code.startswith(BAJIE)]
    ring = _grow(_hull([(t.latitude, t.longitude) for t in street]), 0.004)
    first = street[0]
    circle = (first.latitude, first.longitude, 30.0)  # overlaps the polygon and reaches further
    in_circle = {
        t.resource_code
        for t in anning.terminals
        if haversine_km(circle[0], circle[1], t.latitude, t.longitude) <= circle[2]
    }
    found = resolve_geometry(anning, [ring], [circle])
    codes = [t.resource_code for t in found]
    assert codes == sorted(in_circle | {t.resource_code for t in street})
    assert len(codes) == len(set(codes))
    assert resolve_geometry(anning, [], []) == ()


def test_index_reuse_gives_the_same_answers(anning: Inventory) -> None:
    index = GeoIndex(anning.terminals)
    ring = _star(random.Random(7), (24.9, 102.42), 1000, 0.15)
    prepared = PreparedPolygon.of(ring)
    assert index.in_polygon(prepared) == terminals_in_polygon(anning.terminals, ring)
    assert index.in_any([prepared], []) == index.in_polygon(ring)
