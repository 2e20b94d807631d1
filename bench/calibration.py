"""Calibration of the sharper methods on the simulator: A/A false positives, coverage of a
known effect, and variance against single-covariate CUPED.

Each *world* is one run of the marketplace simulator (``--buyers`` buyers over 56 days, red
packets off so an order's amount is its goods value) with ``--aa`` A/A experiments and
``--effects`` experiments whose treatment multiplies order value by 1.05 and the chance of
a refund request by 0.9. Every experiment sits in its own layer (independently randomised
by the production assigner), starts on day 28 (so a 28-day pre-period) and runs to the
end. The true relative effects are then +5 % for GMV per buyer, AOV and every quantile of
order value, and -10 % for the refund rate (exactly -10 % for an order with one possible
refund cause; the simulator draws each cause with its rate x 0.9, so orders with two live
causes move the truth by the product of two small rates — far below the intervals' width).

Each experiment is analysed through the warehouse path (``fetch_aggregates``: the one
grouped query with every covariate, CUPAC's models, the quantile queries; a second query by
``buyer_type`` for the post-stratified estimate), then by every method from the same sums:

- ``CUPED``: the single pre-period covariate (the reference for the variance ratios);
- ``regression``: every pre-period feature and ``returning`` (the default);
- ``CUPAC``: the same plus the cross-fitted predictions;
- ``ratio covariate`` (refund rate): last period's refund rate;
- ``post-stratified`` (GMV per buyer): new vs returning, CUPED within each;
- quantiles: p90 and median of order value (Woodruff, clustered by buyer);
- the report's multiple-testing rules: an alpha split primary 0.8 / secondary 0.2 (GMV
  primary at 4 %, AOV and p90 secondary at 1 % jointly) and Benjamini–Yekutieli across
  the five metrics.

Prints, per method, the A/A rejection rate at its alpha and the coverage of the truth by its
interval, each with an exact 95 % binomial interval, and the variance relative to CUPED;
``--out`` writes the same as JSON.

python bench/calibration.py [--worlds 100] [--aa 10] [--effects 10] [--buyers 20000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
from scipy import stats

from tianping.experiments import analysis as an
from tianping.experiments.report import ReportPlan, build_report
from tianping.settings import Settings
from tianping.simulate.scenario import parse_scenario
from tianping.simulate.service import run_simulation
from tianping.stats import CovariateSums, adjust_pvalues, analyze, analyze_stratified
from tianping.warehouse import connect

VARIANTS = ("control", "treatment")
METRICS = ("gmv", "refund_rate", "aov", "order_value_p90", "order_value_median")
TRUTH = {"gmv": 0.05, "aov": 0.05, "order_value_p90": 0.05, "order_value_median": 0.05,
         "refund_rate": -0.10}  # fmt: skip
FIRST, LAST = date(2024, 4, 29), date(2024, 5, 26)  # days 28..55 of a run from 2024-04-01
EFFECTS = "{order_value: 0.05, refund: -0.1}"


def scenario_yaml(aa: int, effects: int) -> str:
    """``aa`` A/A experiments and ``effects`` with the known effect, one layer each."""
    rows = []
    for i in range(aa + effects):
        lift = f", effects: {EFFECTS}" if i >= aa else ""
        arms = f"[{{name: control, weight: 0.5}}, {{name: treatment, weight: 0.5{lift}}}]"
        rows.append(f"  - {{name: e{i}, kind: ab, layer: l{i}, start_day: 28, arms: {arms}}}")
    body = "\n".join(rows)
    return f"name: calibration\nmarket: {{red_packets_per_30_days: 0}}\nexperiments:\n{body}\n"


def restricted(arms, keep):
    """The arms with only the covariates ``keep`` (in that order): the same sums, fewer of
    them, so every method reads the one query's numbers."""
    out = []
    for a in arms:
        c = a.covariates
        idx = [c.names.index(k) for k in keep]
        cov = CovariateSums(
            tuple(keep),
            tuple(c.sum[i] for i in idx),
            tuple(tuple(c.cross[i][j] for j in idx) for i in idx),
            tuple(c.y_cross[i] for i in idx),
            None if c.den_cross is None else tuple(c.den_cross[i] for i in idx),
        )
        out.append(replace(a, covariates=cov))
    return out


def comparisons(agg, strata_agg) -> dict[str, tuple]:
    """method → (comparison, same metric's CUPED comparison or None, metric, alpha)."""
    out = {}
    plain = [c for c in agg.covariates if not c.startswith("cupac_")]
    for metric in ("gmv", "refund_rate", "aov"):
        kind = an.METRICS[metric].type
        arms = an.arm_stats(agg, metric, VARIANTS, cuped=True)
        cuped = analyze(arms, metric_type=kind, cuped=True).comparisons[0]
        regression = analyze(restricted(arms, plain), metric_type=kind, covariates="regression")
        cupac = analyze(arms, metric_type=kind, covariates="regression")
        out[f"CUPED: {metric}"] = (cuped, cuped, metric, 0.05)
        out[f"regression: {metric}"] = (regression.comparisons[0], cuped, metric, 0.05)
        out[f"CUPAC: {metric}"] = (cupac.comparisons[0], cuped, metric, 0.05)
        if metric == "refund_rate":
            ratio_arms = restricted(arms, ["pre_refunded_orders", "pre_orders"])
            ratio = analyze(ratio_arms, metric_type=kind, covariates="ratio").comparisons[0]
            out["ratio covariate: refund_rate"] = (ratio, cuped, metric, 0.05)
        if metric == "gmv":
            gmv_cuped = cuped
    strata = {
        s: an.arm_stats(strata_agg, "gmv", VARIANTS, cuped=True, slice_value=s)
        for s in an.slices_of(strata_agg)
    }
    post = analyze_stratified(strata, metric_type="mean", cuped=True).comparisons[0]
    out["post-stratified: gmv"] = (post, gmv_cuped, "gmv", 0.05)
    for metric in ("order_value_p90", "order_value_median"):
        arms = an.arm_stats(agg, metric, VARIANTS, cuped=True)
        out[f"quantile: {metric}"] = (
            analyze(arms, metric_type="quantile").comparisons[0],
            None,
            metric,
            0.05,
        )
    return out


PLAN = ReportPlan(
    experiment="e",
    variants=VARIANTS,
    weights=(0.5, 0.5),
    primary="gmv",
    secondary=("aov", "order_value_p90"),
    guardrails=(("refund_rate", False),),
    alpha_split=(("primary", 0.8), ("secondary", 0.2)),
)


FAMILY = ("regression: gmv", "regression: refund_rate", "regression: aov",
          "quantile: order_value_p90", "quantile: order_value_median")  # fmt: skip


def family_rules(agg, comps, tally, effect: bool) -> None:
    """The report with an alpha split (its own code path), and BY across the five metrics'
    default comparisons."""
    stats_ = {m: an.arm_stats(agg, m, VARIANTS, cuped=True) for m in METRICS}
    report = build_report(PLAN, stats_, an.observed_counts(agg, VARIANTS))
    by_metric = {r.metric: r for r in report.metrics}
    primary = by_metric["gmv"].analysis
    c = primary.comparisons[0]
    key = "alpha split: gmv (primary, alpha 0.04)"
    if effect:
        _record(
            tally, key, "cover", c.rel_effect_size_ci_lower <= 0.05 <= c.rel_effect_size_ci_upper
        )
    else:
        _record(tally, key, "fp", c.rel_pvalue_adjusted < primary.config.alpha)
        second = [by_metric[m].analysis for m in ("aov", "order_value_p90")]
        hit = any(c.rel_pvalue_adjusted < a.config.alpha for a in second for c in a.comparisons)
        _record(tally, "alpha split: secondary family (alpha 0.01)", "fp", hit)
        raw = [comps[name][0].rel_pvalue for name in FAMILY]
        any_by = min(adjust_pvalues(raw, "by")) < 0.05
        _record(tally, "BY across the five metrics (family)", "fp", any_by)


def _record(tally, method: str, key: str, value) -> None:
    tally.setdefault(method, {"fp": [], "cover": [], "ratio": [], "alpha": None})[key].append(value)


def nominal(method: str) -> tuple[float, float]:
    """(A/A rate, coverage) a calibrated method shows."""
    if method.startswith("alpha split: gmv"):
        return 0.04, 0.96
    if method.startswith("alpha split: secondary"):
        return 0.01, float("nan")
    return 0.05, 0.95


def run(args) -> dict:
    tally: dict[str, dict] = {}
    window = an.AnalysisWindow.from_dates(FIRST, LAST)
    text = scenario_yaml(args.aa, args.effects)
    sc = parse_scenario(text, "calibration")
    root = Path(tempfile.mkdtemp(prefix="calibration-"))
    started = time.perf_counter()
    try:
        for w in range(args.worlds):
            home = root / f"w{w}"
            wh = connect(Settings(home=home))
            run_simulation(wh, buyers=args.buyers, days=56, seed=args.seed + w, scenario=sc)
            for i in range(args.aa + args.effects):
                effect = i >= args.aa
                q = an.Query(f"e{i}", window, METRICS, cupac=not args.no_cupac)
                agg = an.fetch_aggregates(wh, q)
                strata = an.fetch_aggregates(
                    wh, an.Query(f"e{i}", window, ("gmv",), slice_by="buyer_type")
                )
                comps = comparisons(agg, strata)
                for name, (c, cuped, metric, alpha) in comps.items():
                    if effect:
                        truth = TRUTH[metric]
                        lo, hi = c.rel_effect_size_ci_lower, c.rel_effect_size_ci_upper
                        _record(tally, name, "cover", lo <= truth <= hi)
                    else:
                        _record(tally, name, "fp", c.rel_pvalue < alpha)
                    if cuped is not None:
                        _record(tally, name, "ratio", c.se**2 / cuped.se**2)
                family_rules(agg, comps, tally, effect)
            wh.close()
            shutil.rmtree(home, ignore_errors=True)
            print(f"world {w + 1}/{args.worlds} done ({time.perf_counter() - started:.0f}s)",
                  flush=True)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return summarise(tally, args, time.perf_counter() - started)


def summarise(tally, args, seconds: float) -> dict:
    rows = []
    for name, t in tally.items():
        fp_nominal, cover_nominal = nominal(name)
        row = {"method": name, "aa_nominal": fp_nominal, "coverage_nominal": cover_nominal}
        for key in ("fp", "cover"):
            k, n = int(np.sum(t[key])), len(t[key])
            if n:
                ci = stats.binomtest(k, n).proportion_ci(0.95)
                row[key] = {"rate": k / n, "runs": n, "ci": [ci.low, ci.high]}
        if t["ratio"]:
            row["variance_vs_cuped"] = float(np.mean(t["ratio"]))
        rows.append(row)
    return {"worlds": args.worlds, "aa_per_world": args.aa, "effects_per_world": args.effects,
            "buyers": args.buyers, "seed": args.seed, "seconds": seconds, "methods": rows}  # fmt: skip


def show(result: dict) -> None:
    print(f"{result['worlds']} simulated worlds of {result['buyers']:,} buyers; "
          f"{result['worlds'] * result['aa_per_world']} A/A and "
          f"{result['worlds'] * result['effects_per_world']} known-effect experiments "
          f"({result['seconds']:.0f}s)")  # fmt: skip
    print(f"{'method':<44}{'A/A rejections':>34}{'coverage of truth':>34}{'var / CUPED':>13}")
    for r in result["methods"]:
        cells = []
        for key, nominal_rate in (("fp", r["aa_nominal"]), ("cover", r["coverage_nominal"])):
            if key not in r:
                cells.append("—")
                continue
            v = r[key]
            cells.append(f"{v['rate']:6.1%} [{v['ci'][0]:.1%}, {v['ci'][1]:.1%}] "
                         f"({nominal_rate:.0%})")  # fmt: skip
        ratio = f"{r['variance_vs_cuped']:.3f}" if "variance_vs_cuped" in r else "—"
        print(f"{r['method']:<44}{cells[0]:>34}{cells[1]:>34}{ratio:>13}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worlds", type=int, default=100)
    ap.add_argument("--aa", type=int, default=10)
    ap.add_argument("--effects", type=int, default=10)
    ap.add_argument("--buyers", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--no-cupac", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    result = run(args)
    show(result)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
