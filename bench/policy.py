"""Benchmark: refund-policy evaluation against the GoRules zen-engine, in the same run.

Targets (issue 6): batch evaluation at least 200,000 decisions/s; a single decision under 50 µs.
Every shipped policy is evaluated on the same seeded requests by

- ``evaluate_batch`` (vectorised NumPy; category and reason dictionary-encoded as replay
  passes them),
- ``evaluate`` one request at a time (the refund service's path, with the full explanation),
- the zen-engine on the same table as a JDM graph (``policy_jdm.to_jdm``, hit policy "first"):
  one ``ZenDecision.evaluate`` per request, and ``ZenEngine.evaluate_batch`` over the batch.

Before timing, the rule each engine picks is compared on a sample, so both time the same table.
Run: python bench/policy.py [--rows N] [--single N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from statistics import median

import numpy as np

from tianping.aftersales.policy import (
    Coded,
    RefundInputs,
    builtin_names,
    evaluate,
    evaluate_batch,
    load_builtin,
)
from tianping.aftersales.policy_jdm import to_jdm

CATEGORIES = ["apparel", "baby", "beauty", "books", "electronics", "food", "home", "sports"]
REASONS = [
    "quality", "damaged", "not_as_described", "counterfeit", "wrong_item", "not_received",
    "empty_parcel", "changed_mind", "other",
]  # fmt: skip


def requests(n: int, seed: int = 6) -> dict[str, np.ndarray]:
    """``n`` seeded requests spread over every rule's region."""
    rng = np.random.default_rng(seed)
    return {
        "amount_minor": np.exp(rng.uniform(np.log(100), np.log(1_000_000), n)).astype(np.int64),
        "category": rng.integers(0, len(CATEGORIES), n).astype(np.int32),
        "reason": rng.integers(0, len(REASONS), n).astype(np.int32),
        "buyer_score": rng.uniform(350, 950, n).round(),
        "merchant_score": rng.uniform(3.5, 5.0, n).round(2),
        "defect_flag": rng.random(n) < 0.1,
        "delivered": rng.random(n) < 0.9,
        "days_since_delivery": rng.integers(0, 30, n),
        "buyer_recent_claims": rng.poisson(1.0, n),
        "abnormal_behaviour": rng.random(n) < 0.05,
    }


def batch_columns(cols: dict[str, np.ndarray]) -> dict[str, object]:
    out: dict[str, object] = dict(cols)
    out["category"] = Coded(cols["category"], CATEGORIES)
    out["reason"] = Coded(cols["reason"], REASONS)
    out["currency"] = "CNY"
    return out


def one(cols: dict[str, np.ndarray], i: int) -> RefundInputs:
    return RefundInputs(
        amount_minor=int(cols["amount_minor"][i]),
        currency="CNY",
        category=CATEGORIES[cols["category"][i]],
        reason=REASONS[cols["reason"][i]],
        buyer_score=float(cols["buyer_score"][i]),
        merchant_score=float(cols["merchant_score"][i]),
        defect_flag=bool(cols["defect_flag"][i]),
        delivered=bool(cols["delivered"][i]),
        days_since_delivery=int(cols["days_since_delivery"][i]),
        buyer_recent_claims=int(cols["buyer_recent_claims"][i]),
        abnormal_behaviour=bool(cols["abnormal_behaviour"][i]),
    )


def as_context(x: RefundInputs) -> dict[str, object]:
    return {f: getattr(x, f) for f in RefundInputs.__dataclass_fields__}


def per_call_us(fn, items, repeats: int = 3) -> float:
    """Median over ``repeats`` passes of the mean µs per call."""
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        for x in items:
            fn(x)
        runs.append((time.perf_counter() - t) / len(items) * 1e6)
    return median(runs)


def best_seconds(fn, repeats: int = 3) -> float:
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return min(runs)


def bench_policy(name: str, rows: int, singles: int, zen_batch_rows: int) -> dict[str, object]:
    import zen

    policy = load_builtin(name)
    cols = requests(rows)
    columns = batch_columns(cols)
    items = [one(cols, i) for i in range(singles)]
    contexts = [as_context(x) for x in items]
    content = json.dumps(to_jdm(policy))
    decision = zen.ZenEngine().create_decision(content)
    engine = zen.ZenEngine({"loader": {"type": "static", "content": {name: json.loads(content)}}})

    batch = evaluate_batch(policy, columns)
    for i in range(min(singles, 2000)):  # same table, same rule, before anything is timed
        ours = evaluate(policy, items[i])
        theirs = decision.evaluate(contexts[i])["result"]
        assert batch.row(i)["rule_id"] == ours.rule_id == theirs["rule_id"], (name, i)

    batch_s = best_seconds(lambda: evaluate_batch(policy, columns))
    zen_requests = [{"key": name, "context": c} for c in contexts[:zen_batch_rows]]
    zen_batch_s = best_seconds(lambda: engine.evaluate_batch(zen_requests))
    return {
        "policy": name,
        "rules": len(policy.rules),
        "batch_per_s": rows / batch_s,
        "zen_batch_per_s": len(zen_requests) / zen_batch_s,
        "single_us": per_call_us(lambda x: evaluate(policy, x), items),
        "zen_single_us": per_call_us(decision.evaluate, contexts),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="requests per batch")
    ap.add_argument("--single", type=int, default=20_000, help="requests decided one by one")
    ap.add_argument("--quick", action="store_true", help="100k batch, 5k singles")
    args = ap.parse_args()
    rows, singles = (100_000, 5_000) if args.quick else (args.rows, args.single)
    print(f"batch of {rows:,} requests; {singles:,} single decisions; best/median of 3 passes")
    header = (
        f"{'policy':<16}{'rules':>6}{'batch/s':>13}{'zen batch/s':>13}{'ratio':>8}"
        f"{'single µs':>11}{'zen µs':>9}{'ratio':>8}"
    )
    print(header)
    results = []
    for name in builtin_names():
        r = bench_policy(name, rows, singles, zen_batch_rows=singles)
        results.append(r)
        print(
            f"{name:<16}{r['rules']:>6}{r['batch_per_s']:>13,.0f}{r['zen_batch_per_s']:>13,.0f}"
            f"{r['batch_per_s'] / r['zen_batch_per_s']:>7.1f}x"
            f"{r['single_us']:>11.1f}{r['zen_single_us']:>9.1f}"
            f"{r['zen_single_us'] / r['single_us']:>7.2f}x"
        )
    worst_batch = min(r["batch_per_s"] for r in results)
    worst_single = max(r["single_us"] for r in results)
    print(
        f"target batch >= 200,000/s: slowest {worst_batch:,.0f}/s "
        f"({'met' if worst_batch >= 200_000 else 'NOT met'}); "
        f"target single < 50 µs: slowest {worst_single:.1f} µs "
        f"({'met' if worst_single < 50 else 'NOT met'})"
    )
    print(
        "ratio columns: ours over zen for throughput, zen over ours for latency (>1 = ours faster)"
    )


if __name__ == "__main__":
    main()
