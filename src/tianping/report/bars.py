"""Horizontal bar charts for self-contained HTML pages (pure: strings in, strings out)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from tianping.report.svg import PAD_TOP, WIDTH, _fmt


def bar_chart(
    labels: Sequence[str], values: Sequence[float], *, title: str, percent: bool = False
) -> str:
    """Horizontal bars from zero, one row per label, each with its value written beside it.

    >>> "<rect" in bar_chart(["a", "b"], [0.7, 0.3], title="t", percent=True)
    True
    """
    if not values:
        return f'<svg class="chart" viewBox="0 0 {WIDTH} 40" role="img" aria-label="{escape(title)}"><text x="8" y="24">no data</text></svg>'
    row_h, left, right = 26, 150, WIDTH - 90
    top = max(max(values), 0.0) or 1.0
    height = PAD_TOP + row_h * len(values) + 8
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">'
    ]
    for n, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = PAD_TOP + row_h * n
        w = max(v, 0.0) / top * (right - left)
        shown = f"{v:.1%}" if percent else _fmt(v)
        parts.append(
            f'<text class="axis" x="{left - 10}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end">{escape(str(label))}</text>'
        )
        parts.append(
            f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="#1b6ca8"><title>{escape(str(label))}: {shown}</title></rect>'
        )
        parts.append(
            f'<text class="axis" x="{left + w + 6:.1f}" y="{y + row_h / 2 + 4:.1f}">{shown}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
