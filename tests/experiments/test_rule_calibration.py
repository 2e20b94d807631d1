"""The decision rule on the simulator's ground truth, scaled down (the 1,000-run calibration is
bench/rule_calibration.py): one simulated month with A/A experiments, experiments with a known
gain, experiments whose refund rate is far worse than its margin, and a planted SRM cause."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pyarrow as pa
import pytest

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

VARIANTS = ("control", "treatment")
WINDOW = an.AnalysisWindow.from_dates(date(2024, 4, 29), date(2024, 5, 26))
KINDS = ["aa"] * 6 + ["ab"] * 4 + ["bad"] * 2
EFFECTS = {"aa": "", "ab": ", effects: {order_value: 0.25}",
           "bad": ", effects: {order_value: 0.25, refund: 1.5}"}  # fmt: skip
RULE = DecisionRule(
    success=(SuccessMetric("gmv", True, 0.2),),
    guardrails=(GuardrailRule("refund_rate", False, 0.4),),
    health=HealthRule(dimensions=("channel",)),
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tianping.settings import Settings
    from tianping.simulate.scenario import parse_scenario
    from tianping.simulate.service import run_simulation
    from tianping.warehouse import connect

    rows = "\n".join(
        f"  - {{name: e{i}, kind: ab, layer: l{i}, start_day: 28, arms: [{{name: control, "
        f"weight: 0.5}}, {{name: treatment, weight: 0.5{EFFECTS[k]}}}]}}"
        for i, k in enumerate(KINDS)
    )
    text = f"name: t\nmarket: {{red_packets_per_30_days: 0}}\nexperiments:\n{rows}\n"
    home = tmp_path_factory.mktemp("sim")
    wh = connect(Settings(home=home))
    run_simulation(wh, buyers=20_000, days=56, seed=5, scenario=parse_scenario(text, "t"))
    ex = wh.to_arrow(wh.table("exposures")).to_pandas()  # plant: e0 loses treatment on one day
    lost = ((ex.experiment == "e0") & (ex.variant == "treatment")
            & (ex.exposed_at.dt.date == date(2024, 5, 1)))  # fmt: skip
    keep = ~(lost & (np.random.default_rng(0).random(len(ex)) < 0.7))
    schema = wh.to_arrow(wh.table("exposures").limit(0)).schema
    wh.replace("exposures", pa.Table.from_pandas(ex[keep], preserve_index=False)
               .select(schema.names).cast(schema))  # fmt: skip
    yield wh
    wh.close()


def _report(wh, i, rule):
    q = an.Query(f"e{i}", WINDOW, ("gmv", "refund_rate"))
    agg = an.fetch_aggregates(wh, q)
    stats = {m: an.arm_stats(agg, m, VARIANTS, cuped=True) for m in ("gmv", "refund_rate")}
    plan = ReportPlan(experiment=f"e{i}", variants=VARIANTS, weights=(0.5, 0.5), primary="gmv",
                      guardrails=(("refund_rate", False),), rule=rule)  # fmt: skip
    counts = an.observed_counts(agg, VARIANTS)
    return build_report(plan, stats, counts, health=health_data(wh, q, rule, "gmv", VARIANTS))


def test_the_rule_on_simulated_experiments(world):
    # the plan, from the A/A experiments' controls, fits in what one experiment gets
    first = [_report(world, i, RULE) for i in range(1, 6)]
    base = {}
    for m in ("gmv", "refund_rate"):
        arms = [next(r for r in rep.metrics if r.metric == m).analysis.arms[0] for rep in first]
        base[m] = Baseline(m, float(np.mean([a.mean for a in arms])),
                           float(np.mean([a.variance for a in arms])) ** 0.5)  # fmt: skip
    units = min(sum(rep.counts) for rep in first)
    planned = plan_rule(RULE, base, (1, 1)).units
    assert planned <= units
    rule = replace(RULE, health=replace(RULE.health, min_units=planned))
    verdicts = {i: _report(world, i, rule) for i in range(len(KINDS))}

    srm = {g.name: g for g in verdicts[0].health}["SRM by day"]
    assert srm.status == "fail" and list(srm.data["located"]) == ["2024-05-01"]
    assert verdicts[0].verdict.verdict == "investigate"
    for i in range(1, len(KINDS)):
        gates = [g for g in verdicts[i].health if g.name.startswith("SRM")]
        assert all(g.status == "pass" for g in gates), (i, gates)  # no false alarm
    said = [verdicts[i].verdict.verdict for i in range(len(KINDS))]
    assert said[1:6].count("ship") <= 1  # A/A: nominal 5 % each
    assert said[6:10].count("ship") >= 3  # a gain above the planned size ships
    assert said[10:] == ["do not ship", "do not ship"]  # refund rate far past its margin
