"""Two-sided errors of refund policies over seeded simulated markets, and Pareto dominance.

For each seed, simulates a market of the given scenario (``--scenario``, default the default
scenario), replays the last ``--window`` days of its refund requests under every policy
(``--policies``, default every shipped one) and counts, on the simulator's ground truth, the
share of honest requests each policy refuses and the share of abusive requests it pays without
the goods coming back (:mod:`tianping.aftersales.two_sided`, the same figures as
``tianping policy replay``). Prints per policy the mean of each rate over the seeds with a 95 %
t-interval, then which policies Pareto-dominate which on (honest refused, abusive paid):

- *by means*: no worse on both mean rates and better on one;
- *by intervals*: on the same seeds (paired, so the market's noise cancels), the 95 % interval
  of the mean difference of each rate is at or below 0 for both and wholly below 0 for one.

Run: python bench/policy_errors.py [--seeds N] [--buyers N] [--days N] [--window N]
     [--scenario NAME|FILE] [--policies a,b,...] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from scipy import stats

from tianping.aftersales import whatif
from tianping.aftersales.policy import builtin_names, evaluate_batch, load_builtin
from tianping.aftersales.replay import replay_inputs
from tianping.settings import Settings
from tianping.simulate.service import load_scenario, run_simulation
from tianping.warehouse import connect

ERRORS = ("honest_refused", "abusive_paid")
#: First simulated day (the simulator's default, so 120 days include 618).
START = date(2024, 4, 1)


def one_seed(
    seed: int, args: argparse.Namespace, folder: Path, names: list[str]
) -> dict[str, dict[str, float]]:
    """Each policy's two error rates on one simulated market's last ``args.window`` days."""
    wh = connect(Settings(home=folder, warehouse=f"duckdb://{folder / f'w{seed}.duckdb'}"))
    try:
        run_simulation(
            wh, buyers=args.buyers, days=args.days, seed=seed, start=START,
            scenario=load_scenario(args.scenario),
        )  # fmt: skip
        end = START + timedelta(days=args.days - 1)
        start = end - timedelta(days=args.window - 1)
        inputs = replay_inputs(wh, start=start, end=end)
    finally:
        wh.close()
    out = {}
    for name in names:
        policy = load_builtin(name)
        batch = evaluate_batch(policy, inputs.columns | {"currency": policy.currency})
        e = whatif.outcome(
            batch, inputs.abusive, amount_minor=inputs.columns["amount_minor"]
        ).errors
        if e.honest_refused.rate is None or e.abusive_paid.rate is None:
            raise SystemExit(
                f"seed {seed}: no {'honest' if e.honest_refused.rate is None else 'abusive'} "
                f"request in the last {args.window} days; simulate more buyers or days"
            )
        out[name] = {
            "honest_refused": e.honest_refused.rate,
            "abusive_paid": e.abusive_paid.rate,
            "honest": e.honest_requests,
            "abusive": e.abusive_requests,
        }
    return out


def interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % t-interval of ``values`` (one per seed)."""
    mean = float(values.mean())
    if values.size < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return mean, mean - half, mean + half


def dominance(runs: list[dict], names: list[str]) -> list[dict[str, object]]:
    """Every ordered pair where the first policy Pareto-dominates the second (see module doc)."""
    rows = []
    for a in names:
        for b in names:
            if a == b:
                continue
            means, highs = [], []
            for err in ERRORS:
                diff = np.array([r[a][err] - r[b][err] for r in runs])
                mean, _low, high = interval(diff)
                means.append(mean)
                highs.append(high if diff.any() else 0.0)
            by_means = all(m <= 0 for m in means) and any(m < 0 for m in means)
            by_intervals = all(h <= 0 for h in highs) and any(h < 0 for h in highs)
            if by_means:
                rows.append({"dominates": a, "over": b, "by_means": True,
                             "by_intervals": by_intervals,
                             "difference_honest_refused": means[0],
                             "difference_abusive_paid": means[1]})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--buyers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--window", type=int, default=60, help="days replayed, ending last day")
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--policies", default=",".join(builtin_names()))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    names = [n.strip() for n in args.policies.split(",") if n.strip()]
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [one_seed(seed, args, Path(tmp), names) for seed in range(args.seeds)]
    table = []
    for name in names:
        row: dict[str, object] = {"policy": name}
        for err in ERRORS:
            mean, low, high = interval(np.array([r[name][err] for r in runs]))
            row |= {f"{err}_mean": mean, f"{err}_low": low, f"{err}_high": high}
        table.append(row)
    doc = {
        "scenario": args.scenario, "seeds": args.seeds, "buyers": args.buyers,
        "days": args.days, "window_days": args.window,
        "honest_requests_per_seed": [r[names[0]]["honest"] for r in runs],
        "abusive_requests_per_seed": [r[names[0]]["abusive"] for r in runs],
        "policies": table, "pareto": dominance(runs, names),
        "seconds": round(time.perf_counter() - began, 1),
    }  # fmt: skip
    if args.json:
        print(json.dumps(doc, indent=2))
        return
    print(f"scenario {args.scenario}: {args.seeds} seeds x {args.buyers:,} buyers, "
          f"{args.days} days; the last {args.window} days replayed ({doc['seconds']} s)")  # fmt: skip
    print(f"honest requests per seed {doc['honest_requests_per_seed']}, "
          f"abusive {doc['abusive_requests_per_seed']}")  # fmt: skip
    print(
        f"{'policy':<16}{'honest refused (95 % over seeds)':>36}{'abusive paid (95 % over seeds)':>36}"
    )
    for row in table:
        cells = [
            f"{row[f'{e}_mean']:.2%} [{row[f'{e}_low']:.2%}, {row[f'{e}_high']:.2%}]"
            for e in ERRORS
        ]
        print(f"{row['policy']:<16}{cells[0]:>36}{cells[1]:>36}")
    if not doc["pareto"]:
        print("no policy Pareto-dominates another")
    for p in doc["pareto"]:
        sure = "also by paired 95 % intervals" if p["by_intervals"] else "by means only"
        print(f"{p['dominates']} Pareto-dominates {p['over']} ({sure})")


if __name__ == "__main__":
    main()
