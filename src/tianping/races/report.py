"""The race report: standings over time, allocation, regret, budget and the confirmation, as
rows for a terminal, plain JSON data and one self-contained HTML page with inline SVG charts
(pure: no web or CLI library, no external assets).

The input is :func:`tianping.races.service.report_data`'s dict. Estimates from the adaptive
phase are labelled *biased*: the race sent traffic toward arms that looked good, and it stopped
when the leader looked best, so its numbers overstate the winner. Only the confirmation's
effect (fresh units, fixed weights) is unbiased.
"""

from __future__ import annotations

from html import escape
from typing import Any

from tianping.aftersales import two_sided

PALETTE = (
    "#1b6ca8", "#d9534f", "#3c9d5d", "#e8a33d", "#7b5ea7",
    "#2bb3b1", "#c2185b", "#6d4c41", "#546e7a", "#9e9d24",
)  # fmt: skip
BIASED = "adaptive phase: biased (traffic followed the leaders), not for the ship decision"


def standings_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per arm at the latest adaptive step (empty before the first step)."""
    racing = [s for s in data["steps"] if s["phase"] == "racing"]
    if not racing:
        return []
    last = racing[-1]
    budget = {b["arm"]: b for b in last["budget"] or []}
    rows = []
    for s in last["standings"]:
        row = {
            "arm": s["arm"],
            "units": s["n"],
            "estimate (biased)": _num(s["estimate"]),
            "p_best": _num(s["p_best"]),
            "weight": _num(s["weight"]),
            "status": "active" if s["active"] else "eliminated",
        }
        if budget:
            b = budget[s["arm"]]
            row |= {
                "spend_minor": b["spend_minor"],
                "return": _num(b["return_value"]),
                "roi": _num(b["roi"]),
                "next_budget_minor": b["allocated_minor"],
            }
        rows.append(row)
    return rows


def _num(x: Any, digits: int = 4) -> Any:
    return None if x is None else round(float(x), digits)


def history(data: dict[str, Any], field: str) -> dict[str, list[tuple[int, float]]]:
    """``arm -> [(step, value)]`` of a standings field over the adaptive steps."""
    out: dict[str, list[tuple[int, float]]] = {a: [] for a in data["race"]["strategies"]}
    for step in data["steps"]:
        if step["phase"] != "racing":
            continue
        for s in step["standings"]:
            if s.get(field) is not None:
                out[s["arm"]].append((step["number"], float(s[field])))
    return out


def history_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per adaptive step: units, the leader, each arm's chance to be best, regret."""
    rows = []
    for step in data["steps"]:
        if step["phase"] != "racing":
            continue
        row: dict[str, Any] = {
            "step": step["number"],
            "units": sum(s["n"] for s in step["standings"]),
            "leader": step["leader"],
        }
        row |= {f"p_best {s['arm']}": _num(s["p_best"], 3) for s in step["standings"]}
        row |= {"regret": _num(step["regret"]), "equal split": _num(step["equal_split_regret"])}
        rows.append(row)
    return rows


def budget_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Spend, return and ROI per strategy, after every allocation so far."""
    lines = [s["budget"] for s in data["steps"] if s["budget"]]
    if not lines:
        return []
    rows = []
    for b in lines[-1]:
        spend = b["spend_minor"] + b["allocated_minor"]
        rows.append(
            {
                "strategy": b["arm"],
                "spent_minor": b["spend_minor"],
                "allocated_next_minor": b["allocated_minor"],
                "committed_minor": spend,
                "return": _num(b["return_value"]),
                "roi": _num(b["roi"]),
                "p_best_roi": _num(b["p_best"]),
            }
        )
    return rows


#: What the two-sided error table of a policy race covers.
ERRORS_NOTE = (
    "every request each arm's policy decided, over all steps of both phases "
    "(docs/aftersales.md, two-sided errors)"
)


def error_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """A policy race's two-sided errors per arm, summed over every step (empty for other races).

    Each step keeps its window's counts per arm (``standings[].errors``); the rows are
    :func:`tianping.aftersales.two_sided.error_row`'s, as ``tianping policy replay`` shows them.
    """
    totals: dict[str, dict[str, Any]] = {}
    for step in data["steps"]:
        for s in step["standings"]:
            counts = s.get("errors")
            if counts is None:
                continue
            arm = s["arm"]
            totals[arm] = (
                counts
                if arm not in totals
                else two_sided.add(totals[arm], counts) | {"currency": counts["currency"]}
            )
    return [
        {"arm": arm} | two_sided.error_row(arm, two_sided.from_counts(c), c["currency"])
        for arm in data["race"]["strategies"]
        if (c := totals.get(arm)) is not None
    ]


def verdict(data: dict[str, Any]) -> dict[str, Any] | None:
    """The latest confirmation result (None before the confirmation has data)."""
    done = [s["confirmation"] for s in data["steps"] if s["confirmation"]]
    return done[-1] if done else None


def report_json(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON report: the race, latest standings, budget, confirmation and every step."""
    return {
        "race": data["race"],
        "rule": data.get("rule"),
        "standings": standings_rows(data),
        "standings_note": BIASED,
        "budget": budget_rows(data),
        "confirmation": verdict(data),
        "errors": error_rows(data),
        "errors_note": ERRORS_NOTE,
        "steps": data["steps"],
    }


# -- HTML ---------------------------------------------------------------------------------


def report_html(data: dict[str, Any], *, health: list[dict[str, Any]] | None = None) -> str:
    """One self-contained HTML page (inline CSS and SVG; no scripts, fonts or CDN).

    ``health``: the health gates of the race's experiment (its report's ``health``), shown
    when the caller analysed it; otherwise the page says where they are checked.
    """
    race = data["race"]
    parts = [
        f"<h1>Race {escape(race['name'])}</h1>",
        _facts(race),
        _rule_html(data.get("rule"), race),
        _health_html(health, race),
        _confirmation_html(verdict(data), race),
        "<h2>Standings</h2>",
        f"<p class=note>{escape(BIASED)}</p>",
        _table(standings_rows(data)),
        "<h2>Chance to be best</h2>",
        _line_chart(history(data, "p_best"), y_max=1.0, label="chance to be best"),
        "<h2>Traffic allocation</h2>",
        _line_chart(history(data, "weight"), y_max=1.0, label="share of traffic"),
        "<h2>Cumulative regret (estimate)</h2>",
        _line_chart(_regret_series(data), label="regret (goal-metric units)"),
    ]
    if budget_rows(data):
        parts += ["<h2>Budget</h2>", _table(budget_rows(data))]
    if error_rows(data):
        parts += ["<h2>Two-sided errors</h2>", f"<p>{escape(ERRORS_NOTE)}</p>",
                  _table(error_rows(data))]  # fmt: skip
    parts += ["<h2>Steps</h2>", _table(_step_rows(data))]
    return _PAGE.format(title=escape(f"race {race['name']}"), body="\n".join(parts))


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 980px; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: right; }}
th {{ background: #f4f4f4; }} td:first-child, th:first-child {{ text-align: left; }}
.note {{ color: #8a5a00; background: #fff6e0; padding: 4px 8px; display: inline-block; }}
.ship {{ color: #1e7b34; font-weight: bold; }} .noship {{ color: #b02a2a; font-weight: bold; }}
svg text {{ font: 11px system-ui, sans-serif; }}
</style></head><body>
{body}
</body></html>
"""


def _facts(race: dict[str, Any]) -> str:
    rows = [
        ("goal metric", race["goal_metric"]),
        ("phase", race["phase"]),
        ("strategies", ", ".join(race["strategies"])),
        ("control", race["control"] or "none"),
        ("still racing", ", ".join(race["active"])),
        ("definition hash", race["spec_hash"][:12]),
    ]
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _rule_html(rule: dict[str, Any] | None, race: dict[str, Any]) -> str:
    """The race's decision rule, fixed by its definition (the hash above): when the adaptive
    phase stops and eliminates, and what the confirmation must show to ship."""
    if rule is None:
        return ""
    against = "its control" if rule["confirm_against"] == "control" else "the runner-up"
    items = [
        f"adaptive phase: a challenger with at least {rule['min_units']:,} units whose chance to "
        f"be best is below {rule['eliminate_below']:.0%} is eliminated; the race stops when the "
        f"leader's chance reaches {rule['best_threshold']:.0%}, every arm still racing has "
        f"{rule['min_units']:,} units and none of the leader's guardrails is significantly hurt",
        f"confirmation: the leader against {against} on fresh units ({rule['confirm_units']:,} "
        f"planned, {rule['confirm_method']}), {escape(race['goal_metric'])} must improve at "
        f"alpha {rule['alpha']:g} and every guardrail be shown non-inferior within its margin",
    ]
    for g in rule["guardrails"]:
        rel = g["scale"] == "relative"
        margin = f"{g['margin']:.1%}" if rel else f"{g['margin']:g} (absolute)"
        better = "higher" if g["higher_is_better"] else "lower"
        items.append(f"guardrail {escape(g['metric'])}: at most {margin} worse "
                     f"({better} is better)")  # fmt: skip
    lis = "".join(f"<li>{i}</li>" for i in items)
    return f"<h2>Decision rule</h2><ul>{lis}</ul>"


def _health_html(health: list[dict[str, Any]] | None, race: dict[str, Any]) -> str:
    if race.get("kind", "experiment") != "experiment":
        return ""
    experiment = race.get("confirm_experiment") or race.get("experiment")
    if not experiment:
        return ""
    name = escape(str(experiment))
    if health is None:
        return (
            "<h2>Health</h2><p>The health gates (sample ratio against the weights in force in "
            "each window, units seen in two arms, pre-period balance, sample size, novelty, "
            f"interactions) are checked on the race's experiment: <code>tianping experiment "
            f"analyze {name}</code>.</p>"
        )
    rows = "".join(
        f"<tr><td>{escape(g['gate'])}</td><td>{escape(g['status'])}</td>"
        f"<td class=text style='white-space:normal;text-align:left'>{escape(g['detail'])}</td></tr>"
        for g in health
    )
    failing = [g["gate"] for g in health if g["status"] == "fail"]
    said = (
        f"<p class=note>Failing: {escape(', '.join(failing))} — the race's figures are not to "
        "be trusted until the cause is found.</p>"
        if failing
        else ""
    )
    return (
        f"<h2>Health</h2><p>The traffic of experiment {name} so far (the sample ratio is tested "
        "against the weights in force in each window of the race).</p>"
        f"{said}<table><tr><th>gate</th><th>status</th><th>detail</th></tr>{rows}</table>"
    )


def _confirmation_html(v: dict[str, Any] | None, race: dict[str, Any]) -> str:
    if race["phase"] == "racing":
        return "<p>Adaptive phase running: no winner yet.</p>"
    head = (
        f"<h2>Confirmation: {escape(str(race['winner']))} vs {escape(str(race['comparator']))}</h2>"
    )
    if v is None:
        return head + f"<p>Collecting fresh units from {escape(str(race['confirm_start']))}.</p>"
    cls, word = ("ship", "ship") if v["ship"] else ("noship", "do not ship")
    state = "final" if v["final"] else "interim (not yet at the planned units)"
    return (
        head
        + (
            f"<p>Unbiased effect on fresh units ({state}): <b>{v['effect_size']:.6g}</b> "
            f"[{v['effect_size_ci_lower']:.6g}, {v['effect_size_ci_upper']:.6g}], "
            f"p = {v['pvalue']:.4g}. Decision: <span class={cls}>{word}</span>.</p>"
        )
        + _guardrail_lines(v)
    )


def _guardrail_lines(v: dict[str, Any]) -> str:
    """The confirmation's guardrails, each shown non-inferior within its margin or not (the
    experiments' decision rule), and the verdict's reasons."""
    rows = []
    for g in v.get("guardrails") or []:
        if g.get("margin") is None:
            result = "hurt" if g["hurt"] else "not hurt"
            rows.append(f"<li>{escape(g['metric'])}: {result}</li>")
            continue
        rel = g["scale"] == "relative"
        bound = f"{g['bound']:+.2%}" if rel else f"{g['bound']:+.4g}"
        margin = f"{g['margin']:.2%}" if rel else f"{g['margin']:.4g}"
        result = "hurt" if g["hurt"] else (
            "non-inferior" if g["non_inferior"] else "not shown non-inferior")  # fmt: skip
        rows.append(f"<li>guardrail {escape(g['metric'])}: worst case {bound} against a margin "
                    f"of {margin}: {result}</li>")  # fmt: skip
    reasons = "".join(f"<li>{escape(r)}</li>" for r in v.get("reasons") or [])
    return f"<ul>{''.join(rows)}</ul>" + (f"<p>Why:</p><ul>{reasons}</ul>" if reasons else "")


def _regret_series(data: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    steps = [s for s in data["steps"] if s["phase"] == "racing"]
    return {
        "race": [(s["number"], s["regret"]) for s in steps],
        "equal split": [(s["number"], s["equal_split_regret"]) for s in steps],
    }


def _step_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "step": s["number"],
            "phase": s["phase"],
            "window": f"{s['window'][0]} .. {s['window'][1]}",
            "leader": s["leader"],
            "moved share": _num(s["moved_share"]),
            "reasons": "; ".join(s["reasons"]),
        }
        for s in data["steps"]
    ]


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p class=empty>No steps yet: <code>tianping race step NAME</code> takes one.</p>"
    head = "".join(f"<th>{escape(str(c))}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(_td(v) for v in r.values()) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _td(v: Any) -> str:
    text = _cell(v)
    # long text (a step's reasons) wraps instead of widening the table past the page
    style = (
        ' class="text" style="white-space:normal;text-align:left;min-width:16em"'
        if len(text) > 40
        else ""
    )
    return f"<td{style}>{escape(text)}</td>"


def _cell(v: Any) -> str:
    return "—" if v is None else str(v)


def _line_chart(
    series: dict[str, list[tuple[int, float]]],
    *,
    y_max: float | None = None,
    label: str = "",
    width: int = 720,
    height: int = 240,
) -> str:
    """An inline SVG line chart: one polyline per series, axes, ticks and a legend."""
    points = [p for s in series.values() for p in s]
    if not points:
        return "<p class=empty>No steps yet, so nothing to draw: <code>tianping race step NAME</code> takes one.</p>"
    left, right, top, bottom = 50, 150, 10, 30
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    top_value = y_max if y_max is not None else max(max(p[1] for p in points), 1e-12)
    w, h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (0.5 if x_hi == x_lo else (x - x_lo) / (x_hi - x_lo)) * w

    def sy(y: float) -> float:
        return top + h - (y / top_value) * h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-size="11" font-family="sans-serif" '
        f'role="img" aria-label="{escape(label)}">',
        f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#999"/>',
    ]
    for frac in (0, 0.5, 1):
        y = top_value * frac
        out.append(f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
    for x in sorted({p[0] for p in points}):
        out.append(f'<text x="{sx(x):.1f}" y="{top + h + 16}" text-anchor="middle">{x}</text>')
    for i, (name, pts) in enumerate(series.items()):
        if not pts:
            continue
        color = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>')
        # a mark on every step, so one step (a line of one point) is drawn too
        out += [f'<circle class="point" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}">'
                f"<title>{escape(name)}, step {x}: {y:.4g}</title></circle>" for x, y in pts]  # fmt: skip
        ly = top + 14 * i + 8
        out.append(
            f'<rect x="{left + w + 12}" y="{ly - 8}" width="10" height="10" fill="{color}"/>'
            f'<text x="{left + w + 26}" y="{ly + 1}">{escape(name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
