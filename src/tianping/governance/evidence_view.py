"""What a frozen piece of evidence says, for the people who vote on it (pure).

An approver should not approve blind: each evidence item of a decision is shown by what it
concluded (``headline``: the experiment's recommendation, the race's verdict, the metric's
latest value...), its key figures (``facts``) and a chart, beside its SHA-256 digest. Everything
here is read from the frozen text itself (never recomputed), so it shows what was frozen.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tianping.experiments.html import forest_svg
from tianping.races.report import standings_rows, verdict
from tianping.report.bars import bar_chart
from tianping.report.svg import line_chart


def summarise(kind: str, content: str) -> dict[str, Any]:
    """``{"headline", "facts": [(label, value)], "chart": svg or None, "pretty": JSON text}``
    of a frozen evidence item of ``kind`` (its canonical JSON text).

    >>> s = summarise("metric", '{"grain":"month","history":[["2024-04-01",5],["2024-05-01",7]],"metric":"gmv"}')
    >>> s["headline"], s["facts"][1]
    ('gmv by month: 7 in 2024-05-01', ('change from the period before', '+40.00%'))
    """
    try:
        data = json.loads(content)
    except ValueError:
        return {"headline": "not JSON", "facts": [], "chart": None, "pretty": content}
    pretty = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)
    try:
        headline, facts, chart = _SUMMARIES.get(kind, _document)(data)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        headline, facts, chart = "its content has an unexpected shape; the JSON below", [], None
    return {"headline": headline, "facts": facts, "chart": chart, "pretty": pretty}


def _experiment(r: dict[str, Any]) -> tuple[str, list, str | None]:
    facts = [
        ("window", f"{r['window']['start']} to {r['window']['end']}"),
        ("units", ", ".join(f"{a['name']} {a['units']:,}" for a in r["arms"])),
    ]
    if r.get("srm_pvalue") is not None:
        facts.append(("sample-ratio check", f"p = {r['srm_pvalue']:.3g}"
                      + (" (MISMATCH)" if r.get("srm_flagged") else "")))  # fmt: skip
    rows, good, bad = [], set(), set()
    for m in r["metrics"]:
        for c in m.get("comparisons", []):
            label = f"{m['metric']}: {c['treatment']}"
            rows.append({**c, "treatment": label})
            if c["treatment"] in m.get("significant_improvement_in", []):
                good.add(label)
            if c["treatment"] in m.get("guardrail_hurt_in", []):
                bad.add(label)
            facts.append((f"{m['metric']} ({m['role']}), {c['treatment']}", _effect(c)))
    facts += [("reason", reason) for reason in r.get("reasons", [])]
    facts += [("warning", w) for w in r.get("warnings", [])]
    return r["recommendation"], facts, forest_svg(rows, good=good, bad=bad)


def _effect(c: dict[str, Any]) -> str:
    p = c.get("decision_pvalue", c.get("pvalue_adjusted"))
    if c.get("scale", "relative") == "relative" and c.get("rel_effect_size") is not None:
        lo, hi = c.get("rel_effect_size_ci_lower"), c.get("rel_effect_size_ci_upper")
        interval = "" if lo is None or hi is None else f" [{lo:+.2%}, {hi:+.2%}]"
        return f"{c['rel_effect_size']:+.2%}{interval}, relative p {p:.3g}"
    return (
        f"{c['effect_size']:+.4g} [{c['effect_size_ci_lower']:.4g}, "
        f"{c['effect_size_ci_upper']:.4g}], absolute p {p:.3g}"
    )


def _race(data: dict[str, Any]) -> tuple[str, list, str | None]:
    race = data["race"]
    steps = data["steps"]
    v = verdict(data)
    if race.get("shipped_variant"):
        headline = f"shipped {race['shipped_variant']}"
    elif race["phase"] == "decided":
        headline = f"decided: {'ship' if race['decision'] == 'ship' else 'do not ship'} " \
                   f"{race['winner']}"  # fmt: skip
    else:
        leader = steps[-1]["leader"] if steps else None
        headline = f"{race['phase']} after {len(steps)} step(s)" + (
            f", leader {leader}" if leader else ""
        )
    facts = [("goal metric", race["goal_metric"]), ("strategies", ", ".join(race["strategies"])),
             ("still racing", ", ".join(race["active"]))]  # fmt: skip
    if v is not None:
        facts.append(("confirmation (unbiased)",
                      f"{v['winner']} vs {v['comparator']}: {v['effect_size']:+.4g} "
                      f"[{v['effect_size_ci_lower']:.4g}, {v['effect_size_ci_upper']:.4g}], "
                      f"p = {v['pvalue']:.3g}"))  # fmt: skip
    rows = standings_rows(data)
    facts += [(f"{row['arm']}", f"{row['units']:,} units, chance best {row['p_best']:.1%}, "
               f"next traffic {row['weight']:.1%} ({row['status']})") for row in rows]  # fmt: skip
    chart = None
    if rows:
        chart = bar_chart([row["arm"] for row in rows], [row["p_best"] for row in rows],
                          title="chance to be best at the latest step", percent=True)  # fmt: skip
    return headline, facts, chart


def _metric(data: dict[str, Any]) -> tuple[str, list, str | None]:
    history = [(str(p), v) for p, v in data["history"]]
    name = f"{data['metric']} by {data['grain']}"
    if not history:
        return f"{name}: no data", [], None
    last_p, last_v = history[-1]
    facts = [("periods", f"{history[0][0]} to {last_p} ({len(history)})")]
    values = [None if v is None else float(v) for _, v in history]  # money is frozen as text
    if len(values) > 1 and values[-2] and values[-1] is not None:
        facts.append(("change from the period before", f"{values[-1] / values[-2] - 1:+.2%}"))
    chart = line_chart([p for p, _ in history], values, title=name)
    return f"{name}: {_num(values[-1])} in {last_p}", facts, chart


def _goal(data: dict[str, Any]) -> tuple[str, list, str | None]:
    revs = data["revisions"]
    cur = revs[-1]
    headline = (f"goal {data['goal']}: {cur['metric']} to {_num(float(cur['target']))} by "
                f"{cur['deadline']} (revision {cur['number']} of {len(revs)})")  # fmt: skip
    facts = [(f"revision {r['number']}", f"{_num(float(r['target']))} by {r['deadline']}, by "
              f"{r['author']}: {r['reason']}") for r in revs]  # fmt: skip
    chart = bar_chart([f"revision {r['number']}" for r in revs],
                      [float(r["target"]) for r in revs], title="target by revision")  # fmt: skip
    return headline, facts, chart


def _policy_replay(data: dict[str, Any]) -> tuple[str, list, str | None]:
    sections = data["sections"]
    window = sections["window"][0]
    outcomes = sections["outcome"]
    first = outcomes[0]
    headline = (f"{data['policy']} on {window['requests']:,} past requests "
                f"({window['from']} to {window['to']}): {first['auto_decision_rate']:.1%} "
                f"decided automatically, {first['refunded_total']} refunded")  # fmt: skip
    facts = []
    errors = {e["policy"]: e for e in sections.get("two-sided errors") or []}
    for o in outcomes:
        loss = "" if o.get("abuse_loss") is None else f", abuse loss {o['abuse_loss']}"
        facts.append((o["policy"], f"{o['auto_decision_rate']:.1%} automatic; refunded "
                      f"{o['refunded_by_merchant']} by merchants, {o['refunded_by_platform']} by "
                      f"the platform{loss}{_two_sided(errors.get(o['policy']))}"))  # fmt: skip
    by_action = sections.get("decisions by action") or []
    chart = None
    if by_action:
        column = first["policy"]
        chart = bar_chart([r["action"] for r in by_action], [float(r[column]) for r in by_action],
                          title=f"decisions by action, {column}")  # fmt: skip
    return headline, facts, chart


def _two_sided(e: dict[str, Any] | None) -> str:
    """The two errors of a frozen replay in words ("unknown" where its source knew nothing)."""
    if e is None:
        return ""

    def share(key: str) -> str:
        value = e[f"{key}_rate"]
        return value if isinstance(value, str) else f"{value:.2%}"

    return (f"; honest buyers refused {share('honest_refused')}, abusive claims paid "
            f"{share('abusive_paid')} ({e['source']})")  # fmt: skip


def _policy(data: dict[str, Any]) -> tuple[str, list, str | None]:
    rules = data.get("rules") or []
    headline = f"refund policy {data['name']}: {data.get('title', '')}"
    facts = [("rules", str(len(rules))), ("source", data.get("source", "")),
             ("what it does", data.get("description", ""))]  # fmt: skip
    return headline, facts, None


def _document(data: Any) -> tuple[str, list, str | None]:
    return "a document attached as it is (its JSON below)", [], None


def _num(v: Any) -> str:
    if isinstance(v, int | float):
        return f"{v:,.2f}" if isinstance(v, float) and not v.is_integer() else f"{v:,.0f}"
    return str(v)


_SUMMARIES: dict[str, Callable[[Any], tuple[str, list, str | None]]] = {
    "experiment": _experiment,
    "race": _race,
    "metric": _metric,
    "goal": _goal,
    "policy-replay": _policy_replay,
    "policy": _policy,
    "document": _document,
}
