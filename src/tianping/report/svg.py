"""Small inline SVG charts for self-contained HTML reports (pure: strings in, strings out).

No JavaScript and no external file: each function returns one ``<svg>`` element whose text is
escaped, so a report opens the same offline, in any browser, and prints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 760, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64, 16, 16, 34


def _fmt(v: float) -> str:
    """Compact axis label: 1.2M, 35K, 2.5K, 0.8, 0.

    >>> [_fmt(v) for v in (0, 2500, 35000, 1.2e6, 0.8)]
    ['0', '2.5K', '35K', '1.2M', '0.8']
    """
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= size:
            return f"{v / size:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{v:.3g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round axis ticks (steps of 1, 2, 2.5 or 5 times a power of ten) from at or below
    ``lo`` to at or above ``hi``; a range that spans zero has a tick at zero.

    >>> nice_ticks(0, 13_700)
    [0.0, 5000.0, 10000.0, 15000.0]
    >>> nice_ticks(-0.319, 0.354)
    [-0.4, -0.2, 0.0, 0.2, 0.4]
    """
    span = hi - lo or abs(hi) or 1.0
    raw = span / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw - 1e-12)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    last = max(last, first + 1)  # an axis needs two ends, even for a single value
    # 15 digits drop the float noise of k * step (0.30000000000000004 → 0.3)
    return [float(f"{k * step:.15g}") + 0.0 for k in range(first, last + 1)]


def line_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    marks: dict[str, str] | None = None,
) -> str:
    """A line over daily values; ``marks`` puts a labelled rule at some labels (e.g. 618).

    >>> "<polyline" in line_chart(["a", "b"], [1.0, 2.0], title="t")
    True
    """
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if not points:
        return f'<svg class="chart" viewBox="0 0 {WIDTH} 40" role="img" aria-label="{escape(title)}"><text x="8" y="24">no data</text></svg>'
    ticks = nice_ticks(0.0, max(v for _, v in points) or 1.0)
    top = ticks[-1]
    span_x = WIDTH - PAD_LEFT - PAD_RIGHT
    span_y = HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(i: float) -> float:
        return PAD_LEFT + span_x * i / max(len(values) - 1, 1)

    def y(v: float) -> float:
        return PAD_TOP + span_y * (1 - v / top)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
    ]
    for v in ticks:
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{PAD_LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{_fmt(v)}</text>'
        )
    last = len(labels) - 1
    for i in sorted({0, len(labels) // 2, last}):
        anchor = "start" if i == 0 else "end" if i == last else "middle"
        parts.append(
            f'<text class="axis" x="{x(i):.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}">{escape(labels[i])}</text>'
        )
    for label, name in (marks or {}).items():
        if label in labels:
            i = labels.index(label)
            parts.append(
                f'<line class="mark" x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{PAD_TOP}" y2="{HEIGHT - PAD_BOTTOM}"/>'
            )
            parts.append(
                f'<text class="mark-label" x="{x(i) + 4:.1f}" y="{PAD_TOP + 12}">{escape(name)}</text>'
            )
    path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in points)
    parts.append(f'<polyline class="line" points="{path}"/>')
    parts.append("</svg>")
    return "".join(parts)


def interval_chart(rows: Sequence[dict], *, title: str) -> str:
    """Estimates with intervals, one row each, and the true value as a diamond where known.

    Each row: ``label``, ``estimate``, ``lower``, ``upper`` and optionally ``truth`` (same
    units, e.g. relative lift). A dashed rule marks zero.

    >>> "<circle" in interval_chart([{"label": "a", "estimate": 0.1, "lower": 0, "upper": 0.2}], title="t")
    True
    """
    values = [v for r in rows for v in (r["lower"], r["upper"], r.get("truth")) if v is not None]
    ticks = nice_ticks(min([0.0, *values]), max([0.0, *values]) or 0.01)
    lo, hi = ticks[0], ticks[-1]
    row_h, left, right = 34, 150, WIDTH - 24
    height = PAD_TOP + row_h * len(rows) + PAD_BOTTOM

    def x(v: float) -> float:
        return left + (right - left) * (v - lo) / (hi - lo)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">',
        f'<line class="zero" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{PAD_TOP - 6}" y2="{height - PAD_BOTTOM + 6}"/>',
    ]
    for v in ticks:
        if v != 0:  # zero has its own dashed rule
            parts.append(
                f'<line class="grid" x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{PAD_TOP - 6}" y2="{height - PAD_BOTTOM + 6}"/>'
            )
        parts.append(
            f'<text class="axis" x="{x(v):.1f}" y="{height - 10}" text-anchor="middle">{pct_tick(v)}</text>'
        )
    for n, r in enumerate(rows):
        cy = PAD_TOP + row_h * n + row_h / 2
        parts.append(
            f'<text class="axis" x="{left - 10}" y="{cy + 4:.1f}" text-anchor="end">{escape(str(r["label"]))}</text>'
        )
        parts.append(
            f'<line class="ci" x1="{x(r["lower"]):.1f}" x2="{x(r["upper"]):.1f}" y1="{cy:.1f}" y2="{cy:.1f}"/>'
        )
        parts.append(f'<circle class="estimate" cx="{x(r["estimate"]):.1f}" cy="{cy:.1f}" r="5"/>')
        if r.get("truth") is not None:
            t = x(r["truth"])
            parts.append(
                f'<path class="truth" d="M{t:.1f},{cy - 8:.1f} l6,8 l-6,8 l-6,-8 z"><title>true value {r["truth"]:+.2%}</title></path>'
            )
    parts.append("</svg>")
    return "".join(parts)


def pct_tick(v: float) -> str:
    """``+20%``, ``0%``, ``-2.5%``: as few decimals as the tick needs."""
    if v == 0:
        return "0%"
    text = f"{100 * v:+.2f}".rstrip("0").rstrip(".")
    return f"{text}%"
