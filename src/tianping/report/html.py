"""The demo's self-contained HTML report: Jinja2 template, inline CSS and SVG, no CDN.

:func:`demo_context` turns a finished :class:`tianping.demo.DemoRun` into plain values (numbers
formatted for people, charts as SVG text); :func:`render_demo_report` renders the template
``templates/demo.html.j2`` with autoescaping on.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from tianping import __version__
from tianping.report import figures
from tianping.report.svg import interval_chart, line_chart

#: Headline metrics shown as cards, with how to display them.
HEADLINE = (
    ("gmv", "GMV", "money"),
    ("orders", "Orders", "count"),
    ("buyers", "Buying customers", "count"),
    ("aov", "Average order value", "money"),
    ("dac", "Daily buying customers (DAC)", "decimal"),
    ("dau", "Daily active users (DAU)", "decimal"),
    ("refund_rate", "Refund rate", "pct"),
    ("review_score", "Review score", "score"),
    ("nps", "NPS", "nps"),
    ("repurchase_30d", "30-day repurchase", "pct"),
    ("door_delivery_rate", "Door delivery", "pct"),
    ("new_buyers", "New buyers", "count"),
)
MONTHLY = ("gmv", "orders", "buyers", "aov", "dac", "refund_rate", "review_score", "nps")


def fmt(value: Any, kind: str) -> str:
    """A value for people: money with thousands separators, rates as percentages.

    >>> fmt(Decimal("1234567.5"), "money"), fmt(0.0768, "pct"), fmt(None, "pct")
    ('¥1,234,567.50', '7.68%', '—')
    >>> fmt(1.5e-6, "share")
    '0.00015%'

    """
    if value is None:
        return "—"
    if kind == "money":
        return figures.money(value)
    if kind == "count":
        return f"{int(value):,}"
    if kind == "pct":
        return f"{float(value):.2%}"
    if kind == "share":  # tiny market shares stay readable: 0.00015%
        v = float(value)
        if v == 0 or v >= 0.0001:
            return f"{v:.2%}"
        return f"{100 * v:.{1 - math.floor(math.log10(100 * v))}f}%"
    if kind == "score":
        return f"{float(value):.2f}"
    if kind == "nps":
        return f"{float(value):+.1f}"
    if kind == "big":
        return _big(float(value))
    return f"{float(value):,.1f}"


def _big(v: float) -> str:
    for size, suffix in ((1e12, " trillion"), (1e9, " billion"), (1e6, " million")):
        if abs(v) >= size:
            return f"{v / size:,.2f}{suffix}"
    return f"{v:,.0f}"


def true_lifts(effects: dict[str, float]) -> dict[str, float]:
    """The true relative effect of an arm on the experiment metrics the scenario pins down.

    Orders per unit scale with conversion; GMV per unit with conversion and order value; AOV
    with order value; the refund rate with the refund effect. Other metrics have no exact
    target (conversion of a unit saturates; NPS is in points).
    """
    c, v = effects.get("conversion", 0.0), effects.get("order_value", 0.0)
    return {
        "orders": c,
        "gmv": (1 + c) * (1 + v) - 1,
        "aov": v,
        "refund_rate": effects.get("refund", 0.0),
    }


def experiment_context(experiment: dict[str, Any]) -> dict[str, Any]:
    """Rows of the A/B test table and its interval chart."""
    report = experiment["report"]
    rows, chart = [], []
    for m in report["metrics"]:
        for c in m.get("comparisons", []):
            truth = true_lifts(experiment["true_lift"].get(c["treatment"], {})).get(m["metric"])
            row = {
                "metric": m["metric"],
                "role": m["role"],
                "treatment": c["treatment"],
                "control_mean": figures.points(m["metric"], c["control_mean"]),
                "treatment_mean": figures.points(m["metric"], c["treatment_mean"]),
                "control_raw": c["control_mean"],
                "treatment_raw": c["treatment_mean"],
                "unit": "points" if m["metric"] in figures.POINTS else "",
                "lift": c["rel_effect_size"],
                "lower": c["rel_effect_size_ci_lower"],
                "upper": c["rel_effect_size_ci_upper"],
                "pvalue": c["decision_pvalue"],
                "abs_pvalue": c["pvalue_adjusted"] if m["role"] != "guardrail" else c["pvalue"],
                "truth": truth,
                "covered": None
                if truth is None or c["rel_effect_size_ci_lower"] is None
                else c["rel_effect_size_ci_lower"] <= truth <= c["rel_effect_size_ci_upper"],
            }
            rows.append(row)
            # the chart shows the metrics whose true lift the scenario pins down
            if truth is not None and None not in (row["lift"], row["lower"], row["upper"]):
                chart.append({"label": m["metric"], "estimate": row["lift"], "lower": row["lower"],
                              "upper": row["upper"], "truth": truth})  # fmt: skip
    return {
        "rows": rows,
        "chart": Markup(interval_chart(chart, title="relative effects with 95% intervals")),
        "arms": report["arms"],
        "recommendation": report["recommendation"],
        "reasons": report["reasons"],
        "warnings": report["warnings"],
        "window": report["window"],
        "srm_pvalue": report["srm_pvalue"],
        "scale_note": report.get("scale_note"),
    }


def demo_context(run: Any) -> dict[str, Any]:
    """Everything the template shows, from a finished demo run."""
    days = [r["period"].isoformat() for r in run.daily]
    festivals = run.marks  # the marketplace calendar's events inside the window
    return {
        "version": __version__,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "options": run.options,
        "truth": run.truth,
        "rows": run.rows,
        "start": run.start,
        "end": run.end,
        "cards": [(label, fmt(run.headline.get(key), kind)) for key, label, kind in HEADLINE],
        "monthly": [
            {
                "period": r["period"].strftime("%Y-%m"),
                **{k: fmt(r[k], dict((h[0], h[2]) for h in HEADLINE)[k]) for k in MONTHLY},
            }
            for r in run.monthly
        ],  # fmt: skip
        "monthly_columns": MONTHLY,
        "gmv_chart": Markup(
            line_chart(
                days, [_float(r["gmv"]) for r in run.daily], title="GMV per day", marks=festivals
            )
        ),  # fmt: skip
        "orders_chart": Markup(
            line_chart(
                days,
                [_float(r["orders"]) for r in run.daily],
                title="orders per day",
                marks=festivals,
            )
        ),  # fmt: skip
        "market": run.market,
        "experiment": experiment_context(run.experiment),
        "refunds": run.refunds,
        "race": run.race,
        "store": run.store,
        "people": run.people,
        "not_yet": run.not_yet,
        "seconds": run.seconds,
        "fmt": fmt,
        "money_minor": lambda minor: fmt(Decimal(minor) / 100, "money"),
        "label": figures.label,
        "metric_value": figures.metric_value,
        "cell": lambda key, value: figures.cell(key, value, run.settings.currency),
    }


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def environment() -> Environment:
    """The Jinja2 environment of tianping's report templates (autoescaping HTML)."""
    return Environment(
        loader=PackageLoader("tianping.report", "templates"),
        autoescape=select_autoescape(("html", "j2")),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_demo_report(run: Any) -> str:
    """The demo report as one HTML document."""
    return environment().get_template("demo.html.j2").render(**demo_context(run))
