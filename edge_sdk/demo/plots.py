"""Small SVG charts for the demo report: histogram, line chart and bar chart.

The charts are plain SVG text, so the report needs no plotting library on a
vehicle-sized install. Every chart is a self-contained `<svg>` element that an
HTML page can inline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 560, 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 20, 36, 56
BAR_COLOR = "#3b6ea8"
LINE_COLOR = "#c0392b"


def _frame(title: str, x_label: str, y_label: str, body: list[str], y_max: float, x_ticks: list[tuple[float, str]]) -> str:
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP + plot_h}" x2="{MARGIN_LEFT + plot_w}" y2="{MARGIN_TOP + plot_h}" stroke="black"/>',
        f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP}" x2="{MARGIN_LEFT}" y2="{MARGIN_TOP + plot_h}" stroke="black"/>',
    ]
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = MARGIN_TOP + plot_h * (1 - fraction)
        parts.append(f'<line x1="{MARGIN_LEFT - 4}" y1="{y:.1f}" x2="{MARGIN_LEFT}" y2="{y:.1f}" stroke="black"/>')
        parts.append(f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_format(y_max * fraction)}</text>')
    for x, text in x_ticks:
        parts.append(f'<text x="{x:.1f}" y="{MARGIN_TOP + plot_h + 16}" text-anchor="middle">{escape(text)}</text>')
    parts.append(f'<text x="{MARGIN_LEFT + plot_w / 2}" y="{HEIGHT - 12}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(
        f'<text x="16" y="{MARGIN_TOP + plot_h / 2}" text-anchor="middle" transform="rotate(-90 16 {MARGIN_TOP + plot_h / 2})">{escape(y_label)}</text>'
    )
    parts.extend(body)
    parts.append("</svg>")
    return "\n".join(parts)


def _format(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


def _nice_max(value: float) -> float:
    """Round up to 1, 2 or 5 times a power of ten, so axis labels read well."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _empty(title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="80" font-family="sans-serif" font-size="12">'
        f'<text x="10" y="30">{escape(title)}: no data</text></svg>'
    )


def histogram_svg(values: Sequence[float], title: str, x_label: str, bins: int = 30) -> str:
    """Draw a histogram of `values` with `bins` equal-width bins."""
    if not values:
        return _empty(title)
    low, high = min(values), max(values)
    if high <= low:
        high = low + 1.0
    width = (high - low) / bins
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / width))] += 1
    y_max = _nice_max(max(counts))
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    bar_w = plot_w / bins
    body = []
    for index, count in enumerate(counts):
        h = plot_h * count / y_max
        body.append(f'<rect x="{MARGIN_LEFT + index * bar_w:.1f}" y="{MARGIN_TOP + plot_h - h:.1f}" width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}" fill="{BAR_COLOR}"/>')
    ticks = [(MARGIN_LEFT + plot_w * f, _format(low + (high - low) * f)) for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    return _frame(title, x_label, "count", body, y_max, ticks)


def line_svg(xs: Sequence[float], ys: Sequence[float], title: str, x_label: str, y_label: str) -> str:
    """Draw `ys` against `xs` as a polyline (xs ascending)."""
    if not xs or len(xs) != len(ys):
        return _empty(title)
    x_low, x_high = xs[0], xs[-1] if xs[-1] > xs[0] else xs[0] + 1.0
    y_max = _nice_max(max(ys))
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    points = " ".join(
        f"{MARGIN_LEFT + plot_w * (x - x_low) / (x_high - x_low):.1f},{MARGIN_TOP + plot_h * (1 - y / y_max):.1f}" for x, y in zip(xs, ys)
    )
    body = [f'<polyline points="{points}" fill="none" stroke="{LINE_COLOR}" stroke-width="2"/>']
    ticks = [(MARGIN_LEFT + plot_w * f, _format(x_low + (x_high - x_low) * f)) for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    return _frame(title, x_label, y_label, body, y_max, ticks)


def bar_svg(labels: Sequence[str], values: Sequence[float], title: str, y_label: str) -> str:
    """Draw one bar per label."""
    if not labels:
        return _empty(title)
    y_max = _nice_max(max(values))
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    slot = plot_w / len(labels)
    body = []
    ticks = []
    for index, (label, value) in enumerate(zip(labels, values)):
        h = plot_h * value / y_max
        x = MARGIN_LEFT + index * slot
        body.append(f'<rect x="{x + slot * 0.15:.1f}" y="{MARGIN_TOP + plot_h - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{BAR_COLOR}"/>')
        body.append(f'<text x="{x + slot / 2:.1f}" y="{MARGIN_TOP + plot_h - h - 4:.1f}" text-anchor="middle">{_format(value)}</text>')
        ticks.append((x + slot / 2, label))
    return _frame(title, "class", y_label, body, y_max, ticks)
