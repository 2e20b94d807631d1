"""A self-contained HTML page of an experiment report (pure: strings only, no CDN, no script).

Every metric gets a table of its comparisons and an inline SVG chart of the relative
effect's interval per treatment (a "forest plot"): the dot is ``rel_effect_size``, the bar
its interval, the vertical line zero. Green means significantly better in the metric's good
direction, red significantly worse, grey neither.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from tianping.experiments.report import cupac_note
from tianping.report.figures import POINTS, points
from tianping.report.svg import nice_ticks, pct_tick

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;
color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.25rem .6rem;text-align:right}td{white-space:nowrap}
th:first-child,td:first-child{text-align:left}
.rec{font-size:1.2rem;padding:.6rem 1rem;border-radius:.3rem;display:inline-block}
.ship{background:#e3f4e3}.noship{background:#fbe4e4}.none{background:#eee}
.warn{color:#a33}.muted{color:#777}
.pass{color:#2a7a2a}.fail{color:#c0392b;font-weight:600}.gatewarn{color:#a66a00}
td.text{text-align:left;white-space:normal;min-width:14rem}
"""

_COLUMNS = (
    ("treatment", "treatment"),
    ("control_mean", "control"),
    ("treatment_mean", "treatment value"),
    ("effect_size", "effect"),
    ("rel_effect_size", "relative"),
    ("interval", "interval"),
    ("decision_pvalue", "relative p (decides)"),
    ("pvalue", "absolute p"),
    ("chance_to_win", "chance to win"),
    ("risk", "risk"),
    ("variance_reduction", "variance reduction"),
)
_PCT = {"rel_effect_size", "rel_effect_size_ci_lower", "rel_effect_size_ci_upper"}
_PCT |= {"chance_to_win", "variance_reduction"}


def render_html(report: Mapping[str, Any]) -> str:
    """The report (the dict of :meth:`Report.to_dict`) as one HTML document.

    >>> page = render_html({"experiment": "x", "arms": [], "metrics": [], "reasons": [],
    ...                     "warnings": [], "recommendation": "no decision"})
    >>> page.startswith("<!DOCTYPE html>") and "http" not in page
    True
    """
    e = html.escape
    rec = str(report.get("recommendation", ""))
    cls = "ship" if rec.startswith("ship") else ("noship" if rec.startswith("do not") else "none")
    cls = "noship" if rec == "investigate" else cls
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Experiment {e(str(report.get('experiment', '')))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Experiment {e(str(report.get('experiment', '')))}</h1>",
    ]
    if report.get("hypothesis"):
        parts.append(f"<p><em>{e(str(report['hypothesis']))}</em></p>")
    window = report.get("window") or {}
    parts.append(
        f'<p class="muted">{e(str(window.get("start", "")))} – {e(str(window.get("end", "")))}'
        f" · method {e(str(report.get('method', '')))} · alpha {report.get('alpha', '')}"
        f" · correction {e(str(report.get('correction', '')))}"
        f" · CUPED {'on' if report.get('cuped') else 'off'}"
        f"{' · CUPAC on' if report.get('cupac') else ''}{_split(report)}</p>"
    )
    if cupac_note(report):
        parts.append(f'<p class="muted">{e(cupac_note(report))}</p>')
    parts.append(f'<p class="rec {cls}"><strong>{e(rec)}</strong></p>')
    if report.get("scale_note"):
        parts.append(f'<p class="muted">{e(str(report["scale_note"]))}</p>')
    parts += [f"<p>{e(r)}</p>" for r in report.get("reasons", [])]
    parts += [f'<p class="warn">⚠ {e(w)}</p>' for w in report.get("warnings", [])]
    parts.append(rule_section(report))
    parts.append(_arms_table(report))
    run = report.get("runtime")
    if run:
        parts.append(
            f"<p>Runtime: {run['units_needed']:,} units to detect {run['rel_mde']:+.1%} on "
            f"{e(str(run['metric']))} with {run['power']:.0%} power; at "
            f"{run['units_per_day']:,.0f} units/day that is {run['days_needed']} days "
            f"({run['days_so_far']} so far, {run['days_left']} left).</p>"
        )
    for metric in report.get("metrics", []):
        parts.append(_metric_section(metric))
    parts.append(_slices_section(report.get("slices") or {}))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


_GATE_CLASS = {"pass": "pass", "fail": "fail", "warn": "gatewarn", "n/a": "muted"}


def rule_section(report: Mapping[str, Any]) -> str:
    """The decision rule (frozen when, changed since), its health gates one line each, and
    its tests per treatment; empty for a report without a rule."""
    rule = report.get("rule")
    if not rule:
        return ""
    e = html.escape
    frozen = rule.get("frozen_at")
    out = [
        "<h2>Decision rule</h2>",
        f'<p class="muted">version {e(str(rule.get("version")))} · '
        + (
            f"frozen at start {e(str(frozen)[:16].replace('T', ' '))} UTC"
            if frozen
            else "not frozen yet (draft)"
        )
        + f" · success alpha {rule['alpha_success']:g} (one-sided), guardrail alpha "
        f"{rule['alpha_guardrails']:g} (one-sided) · power {rule['power']:.0%}</p>",
    ]
    for c in rule.get("changes") or []:
        out.append(
            f'<p class="warn">⚠ rule changed after start on {e(str(c["at"])[:16].replace("T", " "))} UTC '
            f"({e(str(c['before']))} → {e(str(c['after']))}): {e(str(c['reason']))}</p>"
        )
    items = [
        f"<li>success: {e(s['metric'])}, improvement of at least {s['min_effect']:+.1%} "
        f"planned ({'higher' if s['higher_is_better'] else 'lower'} is better)</li>"
        for s in rule.get("success", [])
    ]
    items += [
        f"<li>guardrail: {e(g['metric'])} at most {_margin(g)} worse "
        f"({'higher' if g['higher_is_better'] else 'lower'} is better)</li>"
        for g in rule.get("guardrails", [])
    ]
    out.append(f"<ul>{''.join(items)}</ul>")
    out.append("<h2>Health</h2><table><tr><th>gate</th><th>status</th><th>detail</th></tr>")
    for g in report.get("health", []):
        out.append(
            f"<tr><td>{e(g['gate'])}</td><td class='{_GATE_CLASS.get(g['status'], '')}'>"
            f"{e(g['status'])}</td><td class='text'>"
            f"{e(g['detail'])}</td></tr>"
        )
    out.append("</table>")
    out.append(_tests_table(report.get("rule_tests", [])))
    out.append(_interactions_table(report.get("interactions")))
    plan = report.get("rule_plan") or {}
    if plan.get("units"):
        out.append(
            f"<p>The whole rule needs {plan['units']:,} units ({plan['tests_to_pass']} tests "
            f"must pass, each at power {plan['lines'][0]['power']:.1%}; set by "
            f"{e(str(plan['binding']))}).</p>"
        )
    return "".join(out)


def _interactions_table(tests: Sequence[Mapping[str, Any]] | None) -> str:
    if not tests:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(t['first'])}</td><td>{html.escape(t['second'])}</td>"
        f"<td>{html.escape(t['metric'])}</td><td>{t['units']:,}</td>"
        f"<td>{html.escape(' × '.join(t['contrast']))}</td><td>{t['estimate']:+.4g}</td>"
        f"<td>{'—' if t['relative'] is None else format(t['relative'], '+.2%')}</td>"
        f"<td>{t['pvalue']:.3g}</td><td>{t['qvalue']:.3g}</td>"
        f"<td class='{'fail' if t['flagged'] else 'pass'}'>"
        f"{'interaction' if t['flagged'] else 'none found'}</td></tr>"
        for t in tests
    )
    return (
        "<table><caption>interactions with concurrent experiments (difference in differences "
        "of the first one's metric; q: Benjamini-Hochberg over every pair)</caption><tr>"
        "<th>effect of</th><th>depends on</th><th>metric</th><th>units in both</th>"
        "<th>contrast</th><th>interaction</th><th>relative</th><th>p</th><th>q</th>"
        f"<th>result</th></tr>{rows}</table>"
    )


def _margin(g: Mapping[str, Any]) -> str:
    if g.get("scale") == "absolute":
        return f"{g['margin']:.4g} (absolute)"
    return f"{g['margin']:.1%}"


def _tests_table(tests: Sequence[Mapping[str, Any]]) -> str:
    if not tests:
        return ""
    rows = []
    for t in tests:
        fmt = "{:+.2%}" if t["scale"] == "relative" else "{:+.4g}"
        cell = lambda v, f=fmt: "—" if v is None else f.format(v)  # noqa: E731
        result = "worse" if t["worse"] else ("pass" if t["passed"] else "not shown")
        css = "fail" if t["worse"] else ("pass" if t["passed"] else "gatewarn")
        rows.append(
            f"<tr><td>{html.escape(t['treatment'])}</td><td>{html.escape(t['metric'])}</td>"
            f"<td>{t['role']}</td><td>{cell(t['improvement'])}</td><td>{cell(t['bound'])}</td>"
            f"<td>{cell(t['threshold'])}</td><td>{t['alpha']:.3g}</td>"
            f"<td class='{css}'>{result}</td></tr>"
        )
    return (
        "<table><caption>the rule's tests (improvement in each metric's good direction; "
        "one-sided bound must exceed the threshold)</caption><tr><th>arm</th><th>metric</th>"
        "<th>role</th><th>improvement</th><th>bound</th><th>threshold</th><th>alpha</th>"
        f"<th>result</th></tr>{''.join(rows)}</table>"
    )


def _split(report: Mapping[str, Any]) -> str:
    split = report.get("alpha_split")
    if not split:
        return ""
    return " · alpha split " + ", ".join(f"{html.escape(g)} {a:.4g}" for g, a in split.items())


def _arms_table(report: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(str(a['name']))}</td><td>{a['units']:,}</td>"
        f"<td>{a['planned_weight']:.3g}</td></tr>"
        for a in report.get("arms", [])
    )
    srm = report.get("srm_pvalue")
    windows = report.get("srm_windows") or []
    against = (
        f" against the weights in force over time ({len(windows)} windows: each window's new "
        "units at the split the race had written then)"
        if windows
        else " against the planned weights"
    )
    srm_text = "" if srm is None else f"<p>sample-ratio check{against}: p = {srm:.3g}</p>"
    weight = "expected share" if windows else "planned weight"
    return (
        f"<h2>Arms</h2><table><tr><th>arm</th><th>units</th><th>{weight}</th></tr>{rows}</table>"
        f"{srm_text}{_windows_table(report, windows)}"
    )


def _windows_table(report: Mapping[str, Any], windows: Sequence[Mapping[str, Any]]) -> str:
    if not windows:
        return ""
    names = [html.escape(str(a["name"])) for a in report.get("arms", [])]
    head = "".join(f"<th>{n}</th>" for n in names)
    rows = []
    for w in windows:
        total = sum(w["weights"]) or 1.0
        start = "start" if w["from"] is None else html.escape(str(w["from"])[:16])
        cells = "".join(
            f"<td>{u:,} <span class='muted'>({wt / total:.0%})</span></td>"
            for u, wt in zip(w["units"], w["weights"], strict=True)
        )
        rows.append(f"<tr><td>from {start}</td>{cells}</tr>")
    return (
        "<table><caption>new units per window (weight in force)</caption>"
        f"<tr><th>window</th>{head}</tr>{''.join(rows)}</table>"
    )


def _metric_section(m: Mapping[str, Any]) -> str:
    unit = ", in points" if m["metric"] in POINTS else ""
    title = f"{html.escape(m['metric'])} <span class='muted'>({m['role']}, {m['metric_type']}{unit}"
    title += ", higher is better" if m.get("higher_is_better", True) else ", lower is better"
    title += _adjusted_by(m) + ")"
    if m.get("error"):
        return f"<h2>{title}</span></h2><p class='warn'>not analysed: {html.escape(m['error'])}</p>"
    comps = [_shown(c, m.get("role")) for c in m.get("comparisons", [])]
    cols = [(k, _label(k, m)) for k, _ in _COLUMNS if any(c.get(k) is not None for c in comps)]
    head = "".join(f"<th>{label}</th>" for _, label in cols)
    shown = [_in_points(m["metric"], c) for c in comps]
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(k, c.get(k))}</td>" for k, _ in cols) + "</tr>" for c in shown
    )
    good = set(m.get("significant_improvement_in", []))
    bad = set(m.get("guardrail_hurt_in", []))
    chart = forest_svg(m.get("comparisons", []), good=good, bad=bad)
    return f"<h2>{title}</span></h2>{chart}<table><tr>{head}</tr>{body}</table>"


def _adjusted_by(m: Mapping[str, Any]) -> str:
    """``, regression on 5 covariates, alpha 0.04``: what the analysis adjusted for and the
    alpha it was tested at (which an alpha split makes differ between metrics)."""
    out = ""
    first = (m.get("comparisons") or [{}])[0]
    coefficients = first.get("covariate_coefficients")
    if coefficients:
        out += f", regression on {len(coefficients)} covariates"
        predicted = sum(name.startswith("cupac_") for name in coefficients)
        out += f" ({predicted} CUPAC predictions)" if predicted else ""
    elif m.get("cuped"):
        out += ", CUPED"
    if m.get("alpha") is not None:
        out += f", alpha {m['alpha']:.4g}"
    return out


def _label(key: str, m: Mapping[str, Any]) -> str:
    """Column headers say whether the p-values are adjusted (guardrails are not)."""
    adj = " adj." if m.get("role") != "guardrail" else ""
    if key == "decision_pvalue":
        return f"relative p{adj}" + ("" if m.get("method") == "bayesian" else " (decides)")
    if key == "pvalue":
        return f"absolute p{adj}"
    return dict(_COLUMNS)[key]


def _shown(c: Mapping[str, Any], role: str | None) -> dict[str, Any]:
    """A comparison's cells: the interval on the scale that decides it, and the absolute
    p-value (adjusted like the deciding one) for reference."""
    out = dict(c)
    if c.get("scale") == "absolute":
        lo, hi, fmt = c.get("effect_size_ci_lower"), c.get("effect_size_ci_upper"), "{:.4g}"
        out["decision_pvalue"] = _Absolute(c.get("decision_pvalue"))
    else:
        lo, hi = c.get("rel_effect_size_ci_lower"), c.get("rel_effect_size_ci_upper")
        fmt = "{:+.2%}"
    if role != "guardrail" and c.get("pvalue_adjusted") is not None:
        out["pvalue"] = c["pvalue_adjusted"]
    out["interval"] = _Text(
        f"[{'−∞' if lo is None else fmt.format(lo)}, {'∞' if hi is None else fmt.format(hi)}]"
    )
    return out


class _Text(str):
    """A cell already formatted."""


class _Absolute(float):
    """A deciding p-value taken on the absolute scale (the comparison has no relative one)."""


def _slices_section(slices: Mapping[str, Any]) -> str:
    if not slices or not slices.get("metrics"):
        return ""
    out = [f"<h2>Slices by {html.escape(str(slices.get('by')))}</h2>"]
    if slices.get("warning"):
        out.append(f"<p class='warn'>⚠ {html.escape(slices['warning'])}</p>")
    for metric, per_slice in slices["metrics"].items():
        if "error" in per_slice:
            out.append(
                f"<p class='warn'>{html.escape(metric)}: {html.escape(per_slice['error'])}</p>"
            )
            continue
        rows = [
            {**c, "treatment": f"{s}: {c['treatment']}"}
            for s, analysis in per_slice.items()
            for c in analysis.get("comparisons", [])
        ]
        strat = (slices.get("post_stratified") or {}).get(metric) or {}
        rows += [
            {**c, "treatment": f"post-stratified: {c['treatment']}"}
            for c in strat.get("comparisons", [])
        ]
        out.append(f"<p>{html.escape(metric)}</p>{forest_svg(rows)}")
        if strat.get("error"):
            out.append(f"<p class='warn'>post-stratified: {html.escape(strat['error'])}</p>")
    return "".join(out)


def forest_svg(
    comparisons: Sequence[Mapping[str, Any]],
    *,
    good: set[str] = frozenset(),
    bad: set[str] = frozenset(),
) -> str:
    """Inline SVG: one row per comparison, the relative effect's interval against zero."""
    rows = [c for c in comparisons if c.get("rel_effect_size") is not None]
    if not rows:
        return "<p class='muted'>no relative effect to chart</p>"
    bounds = [0.0]
    for c in rows:
        bounds += [v for v in (c.get("rel_effect_size_ci_lower"), c.get("rel_effect_size_ci_upper"),
                               c["rel_effect_size"]) if v is not None]  # fmt: skip
    ticks = nice_ticks(min(bounds), max(bounds) or 0.01)  # round, and 0 among them
    lo, hi = ticks[0], ticks[-1]
    # room for the longest row label (about 7 px a character at 12 px) beside the axis
    longest = max(len(str(c.get("treatment"))) for c in rows)
    left, width, row_h = max(190, 16 + 7 * longest), 430, 26
    height = row_h * len(rows) + 30
    # the last tick's label is centred on the axis' end: room for its half (and the page's
    # font, up to about 9 px a character)
    right = max(20, 8 + round(4.5 * len(pct_tick(hi))))

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * width

    out = [
        f'<svg width="{left + width + right}" height="{height}" '
        f'viewBox="0 0 {left + width + right} {height}" role="img" aria-label="relative effects with intervals" font-size="12">',
        f'<line x1="{x(0):.1f}" y1="4" x2="{x(0):.1f}" y2="{height - 22}" stroke="#999" '
        'stroke-dasharray="3,3"/>',
    ]
    for i, c in enumerate(rows):
        y = 16 + i * row_h
        name = str(c.get("treatment"))
        colour = "#2a8a2a" if name in good else ("#c0392b" if name in bad else "#555")
        low = c.get("rel_effect_size_ci_lower")
        up = c.get("rel_effect_size_ci_upper")
        low = lo if low is None else low
        up = hi if up is None else up
        out.append(
            f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{html.escape(name)}</text>'
            f'<line x1="{x(low):.1f}" y1="{y}" x2="{x(up):.1f}" y2="{y}" stroke="{colour}" '
            f'stroke-width="3"/><circle cx="{x(c["rel_effect_size"]):.1f}" cy="{y}" r="4.5" '
            f'fill="{colour}"><title>{html.escape(name)}: {c["rel_effect_size"]:+.2%} '
            f"[{low:+.2%}, {up:+.2%}]</title></circle>"
        )
    axis_y = height - 8
    for v in ticks:
        out.append(
            f'<text x="{x(v):.1f}" y="{axis_y}" text-anchor="middle" fill="#777">'
            f"{pct_tick(v)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


#: Absolute figures of a comparison, shown in the metric's unit (NPS in points, as everywhere).
_ABSOLUTE = ("control_mean", "treatment_mean", "effect_size", "effect_size_ci_lower",
             "effect_size_ci_upper")  # fmt: skip


def _in_points(metric: str, c: Mapping[str, Any]) -> Mapping[str, Any]:
    if metric not in POINTS:
        return c
    return {**c, **{k: points(metric, c.get(k)) for k in _ABSOLUTE if k in c}}


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, _Text):
        return html.escape(value)
    if isinstance(value, _Absolute):
        return f"{value:.3g} (absolute)"
    if isinstance(value, float):
        if key in _PCT:
            return f"{value:+.2%}" if key.startswith("rel") else f"{value:.1%}"
        if "pvalue" in key:
            return f"{value:.3g}"
        return f"{value:.4g}"
    return html.escape(str(value))
