"""Hand-written inline SVG charts for the reports: horizontal bars, a day trend line, a histogram.

Owns drawing only: takes ready numbers and labels, returns an ``<svg>`` string with escaped text.
Must never compute report figures or read anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

FONT = "'WenQuanYi Micro Hei','Noto Sans CJK SC','Microsoft YaHei',sans-serif"
BAR = "#2f6fb0"
WARN = "#c0392b"


def _fmt(value: float, percent: bool) -> str:
    return f"{value * 100:.1f}%" if percent else f"{value:g}"


def _open(width: int, height: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}" font-size="12" role="img">',
        f"<title>{escape(title)}</title>",
        f'<text x="{width // 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    value_max: float = 1.0,
    percent: bool = True,
    warn_below: float | None = None,
    width: int = 720,
) -> str:
    """Horizontal bars, one per (label, value); bars under ``warn_below`` are drawn in red."""
    row, label_w, top = 22, 170, 30
    height = top + row * max(1, len(items)) + 10
    plot_w = width - label_w - 70
    out = _open(width, height, title)
    top_value = value_max if value_max > 0 else 1.0
    for i, (label, value) in enumerate(items):
        y = top + i * row
        w = max(0.0, min(1.0, value / top_value)) * plot_w
        colour = WARN if warn_below is not None and value < warn_below else BAR
        out.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{colour}"/>')
        out.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 15}">{escape(_fmt(value, percent))}</text>')
    out.append("</svg>")
    return "".join(out)


def line_chart(
    points: Sequence[tuple[str, float]],
    *,
    title: str,
    y_max: float = 1.0,
    y_min: float = 0.0,
    percent: bool = True,
    width: int = 720,
    height: int = 260,
) -> str:
    """A line over labelled points (e.g. days), y from ``y_min`` to ``y_max``, with grid lines at quarters."""
    left, right, top, bottom = 50, 20, 30, 40
    pw, ph = width - left - right, height - top - bottom
    out = _open(width, height, title)
    span = y_max - y_min if y_max > y_min else 1.0
    for k in range(5):
        y = top + ph - ph * k / 4
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_fmt(y_min + span * k / 4, percent))}</text>"
        )
    n = len(points)
    coords: list[tuple[float, float]] = []
    for i, (_label, value) in enumerate(points):
        x = left + (pw * i / (n - 1) if n > 1 else pw / 2)
        y = top + ph - ph * max(0.0, min(1.0, (value - y_min) / span))
        coords.append((x, y))
    if coords:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        out.append(f'<polyline points="{path}" fill="none" stroke="{BAR}" stroke-width="2"/>')
    step = max(1, math.ceil(n / 10))
    for i, ((label, value), (x, y)) in enumerate(zip(points, coords, strict=True)):
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{BAR}"><title>'
            f"{escape(label)}：{escape(_fmt(value, percent))}</title></circle>"
        )
        if i % step == 0 or i == n - 1:
            out.append(f'<text x="{x:.1f}" y="{top + ph + 16}" text-anchor="middle">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def histogram(
    values: Sequence[float], *, title: str, unit: str = "秒", bins: int = 12, width: int = 720
) -> str:
    """Counts of values in equal-width bins from min to max."""
    height, left, top, bottom = 240, 40, 30, 40
    pw, ph = width - left - 20, height - top - bottom
    out = _open(width, height, title)
    if not values:
        out.append(f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle">无数据</text></svg>')
        return "".join(out)
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / span * bins))] += 1
    peak = max(counts)
    bw = pw / bins
    for i, c in enumerate(counts):
        h = ph * c / peak
        x = left + i * bw
        out.append(
            f'<rect x="{x + 1:.1f}" y="{top + ph - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
            f'fill="{BAR}"><title>{c}</title></rect>'
        )
        if c:
            out.append(
                f'<text x="{x + bw / 2:.1f}" y="{top + ph - h - 3:.1f}" text-anchor="middle">{c}</text>'
            )
    for edge, anchor in ((lo, "start"), (hi, "end")):
        x = left if anchor == "start" else left + pw
        out.append(
            f'<text x="{x}" y="{top + ph + 16}" text-anchor="{anchor}">{edge:.2f} {escape(unit)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
