"""A policy as a GoRules JDM decision graph, for the zen-engine (pure).

The graph is input → one decision table (hit policy ``first``, rules in tianping's evaluation
order, so the same rule fires) → output, and each cell is a ZEN unary test: ``[2000..5000)``,
``>= 4.8``, ``"quality", "damaged"``, ``not in ["electronics"]``, ``true``. The table outputs the
rule id and the action (a policy's negotiation first adds, before each rule it covers, a row
for that rule's region at merchants above the bar); the benchmark and the cross-check tests evaluate it with the zen-engine.
"""

from __future__ import annotations

import json
import math

from tianping.aftersales.policy_space import Interval, Values
from tianping.aftersales.policy_table import DIMENSION_NAMES, Policy


def to_jdm(policy: Policy) -> dict:
    """The JDM graph (a JSON-ready dict) equivalent to ``policy``."""
    inputs = [{"id": f"in_{n}", "name": n, "field": n} for n in DIMENSION_NAMES]
    outputs = [
        {"id": "out_rule", "name": "rule_id", "field": "rule_id"},
        {"id": "out_action", "name": "action", "field": "action"},
    ]
    rules = []
    neg = policy.negotiation
    for r in policy.rules:
        row = {"_id": r.id, **{f"in_{n}": "" for n in DIMENSION_NAMES}}
        for c in r.conditions:
            row[f"in_{c.dimension}"] = unary_test(c.set)
        row["out_rule"] = json.dumps(r.id)
        row["out_action"] = json.dumps(r.action.action)
        if neg is not None and neg.applies(5.0, r):
            # negotiation first: the rule's region at merchants above the bar, one row before it
            score = next((c.set for c in r.conditions if c.dimension == "merchant_score"), None)
            bar = Interval.make(neg.quality_bar, True, math.inf, False, False)
            first = bar if score is None else score.intersect(bar)
            if not first.empty:
                rules.append(
                    row
                    | {
                        "_id": f"{r.id}:negotiation",
                        "in_merchant_score": unary_test(first),
                        "out_action": json.dumps("merchant_negotiation"),
                    }
                )
        rules.append(row)
    table = {"hitPolicy": "first", "inputs": inputs, "outputs": outputs, "rules": rules}
    return {
        "nodes": [
            {"id": "request", "type": "inputNode", "name": "request", "position": {"x": 0, "y": 0}},
            {
                "id": "policy",
                "type": "decisionTableNode",
                "name": policy.name,
                "position": {"x": 300, "y": 0},
                "content": table,
            },
            {
                "id": "decision",
                "type": "outputNode",
                "name": "decision",
                "position": {"x": 600, "y": 0},
            },
        ],
        "edges": [
            {"id": "e1", "sourceId": "request", "targetId": "policy", "type": "edge"},
            {"id": "e2", "sourceId": "policy", "targetId": "decision", "type": "edge"},
        ],
    }


def unary_test(cset: Interval | Values) -> str:
    """One condition as a ZEN unary test.

    >>> unary_test(Interval(2000, True, 5000, False))
    '[2000..5000)'
    >>> unary_test(Values(frozenset({"electronics"}), negated=True))
    'not in ["electronics"]'
    """
    if isinstance(cset, Values):
        listed = [json.dumps(v) for v in sorted(cset.values, key=str)]
        if cset.negated:
            return f"not in [{', '.join(listed)}]"
        return ", ".join(listed)
    lo, hi = cset.lo, cset.hi
    if lo == -math.inf:
        return f"{'<=' if cset.hi_closed else '<'} {_num(hi)}"
    if hi == math.inf:
        return f"{'>=' if cset.lo_closed else '>'} {_num(lo)}"
    return f"{'[' if cset.lo_closed else '('}{_num(lo)}..{_num(hi)}{']' if cset.hi_closed else ')'}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))
