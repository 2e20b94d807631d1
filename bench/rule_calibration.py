"""Calibration of the experiments' decision rule on the simulator's ground truth.

Each *world* is one run of the marketplace simulator (``--buyers`` buyers over 56 days, red
packets off) with experiments that each sit in their own layer and run from day 28 (a
28-day pre-period):

- ``--aa`` A/A experiments (no effect);
- ``--ab`` experiments whose treatment raises order value by ``δ`` (GMV per buyer +δ) with
  the refund rate unchanged;
- ``--bad`` experiments with the same gain but a refund rate 1.25 × its margin worse.

The rule: success metric GMV per buyer (minimum effect δ), guardrail the refund rate (a
relative margin ``m``), alphas 0.05 one-sided, power 0.8 for the whole rule, health gates with
SRM by day and by channel. A pre-run world (seed − 1, A/A only) gives the baselines; ``δ``
and ``m`` are then solved so that the plan's sample is what one experiment gets in 28 days
(each test at exactly that size): the A/B experiments run at their planned size.

Every experiment goes through the warehouse path (the grouped query with the regression
covariates, the health queries) and :func:`build_report` with the rule. Counted:

- A/A: false ships (nominal ≤ alpha 5 %);
- A/B at the planned size: misses (not ship; nominal ≤ β = 20 %);
- bad guardrail: ships (nominal ≤ 5 %; the issue asks ≥ 95 % blocked);
- planted SRM: in two A/A experiments per world, 70 % of the treatment's exposures are lost
  on one of the first seven days (one experiment) or for the units whose last order before
  exposure came through the ``live_stream`` channel (another); located when that gate fails
  and names exactly the planted day / channel; false alarms: any SRM gate failing on an
  A/A experiment without a planted cause.

python bench/rule_calibration.py [--worlds 50] [--aa 10] [--ab 6] [--bad 4] [--buyers 20000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from scipy import stats

from tianping.experiments import analysis as an
from tianping.experiments.report import ReportPlan, build_report
from tianping.experiments.rule import (
    Baseline,
    DecisionRule,
    GuardrailRule,
    HealthRule,
    SuccessMetric,
    plan_rule,
)
from tianping.experiments.service import health_data
from tianping.settings import Settings
from tianping.simulate.scenario import parse_scenario
from tianping.simulate.service import run_simulation
from tianping.warehouse import connect

VARIANTS = ("control", "treatment")
METRICS = ("gmv", "refund_rate")
FIRST, LAST = date(2024, 4, 29), date(2024, 5, 26)  # days 28..55 of a run from 2024-04-01
WINDOW = an.AnalysisWindow.from_dates(FIRST, LAST)
LOST = 0.7  # share of the treatment's exposures a planted SRM cause loses


def scenario_yaml(kinds: list[str], delta: float, refund: float) -> str:
    """One experiment per kind (``aa``, ``ab``, ``bad``), one layer each."""
    rows = []
    for i, kind in enumerate(kinds):
        effects = {"aa": "", "ab": f", effects: {{order_value: {delta:.6f}}}",
                   "bad": f", effects: {{order_value: {delta:.6f}, refund: {refund:.6f}}}"}[kind]  # fmt: skip
        arms = f"[{{name: control, weight: 0.5}}, {{name: treatment, weight: 0.5{effects}}}]"
        rows.append(f"  - {{name: e{i}, kind: ab, layer: l{i}, start_day: 28, arms: {arms}}}")
    body = "\n".join(rows)
    return f"name: rule-calibration\nmarket: {{red_packets_per_30_days: 0}}\nexperiments:\n{body}\n"


def rule_of(delta: float, margin: float, min_units: int | None) -> DecisionRule:
    return DecisionRule(
        success=(SuccessMetric("gmv", True, delta),),
        guardrails=(GuardrailRule("refund_rate", False, margin),),
        health=HealthRule(dimensions=("channel",), min_units=min_units),
    )


def plan_of(rule: DecisionRule) -> ReportPlan:
    return ReportPlan(experiment="e", variants=VARIANTS, weights=(0.5, 0.5), primary="gmv",
                      guardrails=(("refund_rate", False),), rule=rule)  # fmt: skip


def simulate(home: Path, buyers: int, seed: int, kinds, delta, refund):
    wh = connect(Settings(home=home))
    sc = parse_scenario(scenario_yaml(kinds, delta, refund), "rule-calibration")
    run_simulation(wh, buyers=buyers, days=56, seed=seed, scenario=sc)
    return wh


def aggregates(wh, name: str):
    q = an.Query(name, WINDOW, METRICS)
    agg = an.fetch_aggregates(wh, q)
    stats_ = {m: an.arm_stats(agg, m, VARIANTS, cuped=True) for m in METRICS}
    return q, agg, stats_


def solve(baselines: dict[str, Baseline], units: int) -> tuple[float, float]:
    """δ and the margin whose plan lines each need exactly ``units``."""

    def line(metric: str, value: float) -> int:
        probe = rule_of(value if metric == "gmv" else 0.05, value if metric != "gmv" else 0.05,
                        None)  # fmt: skip
        lines = {x.metric: x.units for x in plan_rule(probe, baselines, (1, 1)).lines}
        return lines[metric]

    out = []
    for metric in ("gmv", "refund_rate"):
        lo, hi = 1e-4, 5.0
        for _ in range(60):
            mid = (lo * hi) ** 0.5
            lo, hi = (mid, hi) if line(metric, mid) > units else (lo, mid)
        out.append(hi)
    return out[0], out[1]


def calibrate_sizes(args, root: Path) -> dict:
    """The pre-run: baselines from A/A experiments, then δ and m for the planned size."""
    wh = simulate(root / "pre", args.buyers, args.seed - 1, ["aa"] * 4, 0.0, 0.0)
    try:
        units, base = [], {"gmv": [], "refund_rate": []}
        for i in range(4):
            _, agg, stats_ = aggregates(wh, f"e{i}")
            units.append(sum(an.observed_counts(agg, VARIANTS)))
            for m in METRICS:
                plan = plan_of(rule_of(0.05, 0.05, None))
                rep = build_report(plan, stats_, an.observed_counts(agg, VARIANTS))
                arm = next(r for r in rep.metrics if r.metric == m).analysis.arms[0]
                base[m].append((arm.mean, arm.variance**0.5))
    finally:
        wh.close()
    baselines = {m: Baseline(m, float(np.mean([b[0] for b in v])), float(np.mean([b[1] for b in v])))
                 for m, v in base.items()}  # fmt: skip
    planned = int(0.97 * min(units))  # reached by every experiment of a world
    delta, margin = solve(baselines, planned)
    # The simulator's refund knob scales each refund cause's rate, but the refund rate moves
    # by less (causes interact with order value and timing): measure how much, so the bad
    # experiments' true refund-rate change is 1.25 x the margin.
    knob = 0.4
    wh = simulate(root / "pre-bad", args.buyers, args.seed - 2, ["bad"] * 12, delta, knob)
    try:
        lifts = [_lift(aggregates(wh, f"e{i}")[2]["refund_rate"]) for i in range(12)]
    finally:
        wh.close()
    per_knob = float(np.mean(lifts)) / knob
    return {"units": planned, "delta": delta, "margin": margin, "refund_per_knob": per_knob,
            "refund_knob": 1.25 * margin / per_knob,
            "baselines": {m: [b.mean, b.sd] for m, b in baselines.items()}}  # fmt: skip


def _lift(arms) -> float:
    """The relative effect of the treatment (plain delta method: the realised change)."""
    from tianping.stats import analyze

    return (
        analyze(arms, metric_type="ratio" if arms[0].den_sum is not None else "mean")
        .comparisons[0]
        .rel_effect_size
    )


def plant_srm(wh, day_exp: str, channel_exp: str, rng) -> date:
    """Lose 70 % of the treatment's exposures on one day in ``day_exp``, and of the units
    whose last order before exposure was through ``live_stream`` in ``channel_exp``."""
    ex = wh.to_arrow(wh.table("exposures")).to_pandas()
    orders = wh.to_arrow(wh.table("orders").select("buyer_id", "created_at", "channel")).to_pandas()
    day = FIRST + timedelta(days=int(rng.integers(0, 7)))
    drop = np.zeros(len(ex), dtype=bool)
    lose = rng.random(len(ex)) < LOST
    treated = ex["variant"].to_numpy() == "treatment"
    on_day = (ex["experiment"] == day_exp) & (ex["exposed_at"].dt.date == day)
    drop |= on_day.to_numpy() & treated & lose
    mine = ex[ex["experiment"] == channel_exp]
    first = mine.groupby("unit_id")["exposed_at"].min()
    prior = orders[orders["created_at"] < orders["buyer_id"].map(first)]
    last = prior.sort_values("created_at").groupby("buyer_id")["channel"].last()
    live = (ex["experiment"] == channel_exp) & ex["unit_id"].map(last).eq("live_stream")
    drop |= live.to_numpy() & treated & lose
    table = pa.Table.from_pandas(ex[~drop], preserve_index=False)
    schema = wh.to_arrow(wh.table("exposures").limit(0)).schema
    wh.replace("exposures", table.select(schema.names).cast(schema))
    return day


def run(args) -> dict:
    root = Path(tempfile.mkdtemp(prefix="rule-calibration-"))
    started = time.perf_counter()
    tally: dict[str, list] = {k: [] for k in ("aa_ship", "ab_miss", "bad_ship", "srm_day",
                                              "srm_channel", "srm_false_alarm")}  # fmt: skip
    realised: dict[str, list] = {"ab_gmv": [], "ab_refund_rate": [], "bad_refund_rate": []}
    try:
        sizes = calibrate_sizes(args, root)
        print(f"plan: {sizes['units']:,} units; δ = {sizes['delta']:+.2%} on GMV per buyer, "
              f"refund-rate margin {sizes['margin']:.2%}; refund knob {sizes['refund_knob']:.3f} "
              f"({sizes['refund_per_knob']:.3f} per unit)", flush=True)  # fmt: skip
        rule = rule_of(sizes["delta"], sizes["margin"], sizes["units"])
        kinds = ["aa"] * args.aa + ["ab"] * args.ab + ["bad"] * args.bad
        for w in range(args.worlds):
            rng = np.random.default_rng(args.seed + w)
            wh = simulate(root / f"w{w}", args.buyers, args.seed + w, kinds, sizes["delta"],
                          sizes["refund_knob"])  # fmt: skip
            day = plant_srm(wh, "e0", "e1", rng)
            for i, kind in enumerate(kinds):
                q, agg, stats_ = aggregates(wh, f"e{i}")
                counts = an.observed_counts(agg, VARIANTS)
                rep = build_report(plan_of(rule), stats_, counts,
                                   multiple_exposed=an.multiple_exposed(agg),
                                   health=health_data(wh, q, rule, "gmv", VARIANTS))  # fmt: skip
                gates = {g.name: g for g in rep.health}
                srm_failed = any(g.status == "fail" for n, g in gates.items() if "SRM" in n)
                if i == 0:
                    g = gates["SRM by day"]
                    tally["srm_day"].append(g.status == "fail"
                                            and list(g.data["located"]) == [day.isoformat()])  # fmt: skip
                elif i == 1:
                    g = gates["SRM by channel"]
                    tally["srm_channel"].append(g.status == "fail"
                                                and list(g.data["located"]) == ["live_stream"])  # fmt: skip
                elif kind == "aa":
                    tally["srm_false_alarm"].append(srm_failed)
                    tally["aa_ship"].append(rep.verdict.verdict == "ship")
                elif kind == "ab":
                    tally["ab_miss"].append(rep.verdict.verdict != "ship")
                    realised["ab_gmv"].append(_lift(stats_["gmv"]))
                    realised["ab_refund_rate"].append(_lift(stats_["refund_rate"]))
                else:
                    tally["bad_ship"].append(rep.verdict.verdict == "ship")
                    realised["bad_refund_rate"].append(_lift(stats_["refund_rate"]))
            wh.close()
            shutil.rmtree(root / f"w{w}", ignore_errors=True)
            print(f"world {w + 1}/{args.worlds} ({time.perf_counter() - started:.0f}s): "
                  + ", ".join(f"{k} {np.mean(v):.3f}" for k, v in tally.items() if v), flush=True)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = {}
    for k, v in tally.items():
        n, hits = len(v), int(np.sum(v))
        ci = stats.binomtest(hits, n).proportion_ci(0.95) if n else None
        rows[k] = {"rate": hits / n if n else None, "runs": n,
                   "ci": None if ci is None else [ci.low, ci.high]}  # fmt: skip
    truth = {k: {"mean": float(np.mean(v)), "se": float(np.std(v, ddof=1) / np.sqrt(len(v)))}
             for k, v in realised.items() if len(v) > 1}  # fmt: skip
    return {
        **{k: str(v) for k, v in vars(args).items()},
        "plan": sizes,
        "seconds": time.perf_counter() - started,
        "rates": rows,
        "realised_effects": truth,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worlds", type=int, default=50)
    ap.add_argument("--aa", type=int, default=10)
    ap.add_argument("--ab", type=int, default=6)
    ap.add_argument("--bad", type=int, default=4)
    ap.add_argument("--buyers", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.aa < 3:
        ap.error("--aa must be at least 3: two carry a planted SRM cause")
    out = run(args)
    for k, r in out["rates"].items():
        if r["runs"]:
            print(f"{k:<18} {r['rate']:7.2%} of {r['runs']:5d}  95% CI "
                  f"[{r['ci'][0]:.2%}, {r['ci'][1]:.2%}]")  # fmt: skip
    for k, r in out["realised_effects"].items():
        print(f"realised {k:<16} {r['mean']:+.2%} ± {r['se']:.2%}")
    if args.out:
        args.out.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
