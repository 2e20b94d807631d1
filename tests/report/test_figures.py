"""Figures for people and chart axes: the same formatting on every page (pure functions)."""

from __future__ import annotations

import math
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tianping.report.figures import cell, label, metric_value, money, number, points
from tianping.report.svg import interval_chart, line_chart, nice_ticks, pct_tick


def test_money_is_major_units_with_symbol_and_separators():
    assert money(Decimal("14112.88")) == "¥14,112.88"
    assert money(1_411_288, minor=True) == "¥14,112.88"
    assert money(-5, "USD") == "-$5.00" and money(3, "CHF") == "3.00 CHF"
    assert money(None) == "—"


def test_cells_follow_what_their_key_holds():
    assert cell("refunded_by_platform", "2825.47") == "¥2,825.47"
    assert cell("to_refund_minor", 4952) == "¥49.52"
    assert cell("auto_decision_rate", 0.98765) == "98.77%"
    assert cell("requests", 1234) == "1,234" and cell("abuse_loss", None) == "—"
    assert cell("action", "merchant_negotiation") == "merchant negotiation"
    assert cell("policy", "1688-2025-03@b8e743298904") == "1688-2025-03@b8e743298904"
    assert label("refunded_by_merchant") == "Refunded by merchant" and label("aov") == "AOV"


def test_nps_is_read_in_points_everywhere():
    assert points("nps", 0.3529) == 35.29 and metric_value("nps", 0.3529) == "35.3"
    assert points("gmv", 12.5) == 12.5
    assert metric_value("refund_rate", 0.0833) == "8.33%" and metric_value("aov", 119) == "¥119.00"
    assert number(1_200_000.0) == "1,200,000" and number(58.7333) == "58.73"


@given(  # what charts show: money in yuan, counts, rates and lifts (not 1e-300 or 1e15)
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 3)),
    st.one_of(st.just(0.0), st.floats(0.01, 1e6)),
)
def test_ticks_are_round_cover_the_range_and_include_zero(lo, width):
    hi = lo + width
    ticks = nice_ticks(lo, hi)
    step = (ticks[-1] - ticks[0]) / (len(ticks) - 1)
    assert ticks[0] <= lo + 1e-6 * step and ticks[-1] >= hi - 1e-6 * step  # covers the data
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5, 10)), ticks
    assert all(math.isclose(b - a, step, rel_tol=1e-6)
               for a, b in zip(ticks, ticks[1:], strict=False))  # fmt: skip
    if lo <= 0 <= hi:
        assert 0.0 in ticks
    assert len(ticks) <= 9


def test_charts_label_round_ticks_and_zero():
    svg = interval_chart(
        [{"label": "orders", "estimate": 0.12, "lower": 0.02, "upper": 0.23, "truth": 0.08}],
        title="lift",
    )
    assert ">0%<" in svg and ">+10%<" in svg and ">+25%<" not in svg
    assert [pct_tick(v) for v in (-0.2, 0.0, 0.025)] == ["-20%", "0%", "+2.5%"]
    gmv = line_chart(["d1", "d2", "d3"], [4_000.0, 13_700.0, 9_000.0], title="GMV per day")
    assert all(f">{t}<" in gmv for t in ("0", "5K", "10K", "15K"))
