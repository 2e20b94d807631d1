"""Validity on simulated marketplace data: A/A splits reject at rate alpha with uniform
p-values, and 95% intervals cover the simulator's known effects about 95% of the time."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from scipy import stats

from tianping.experiments import analysis as an
from tianping.experiments.aa import run_aa
from tianping.simulate.scenario import parse_scenario
from tianping.simulate.service import load_scenario, run_simulation
from tianping.stats import analyze

FIRST, LAST = date(2024, 4, 1), date(2024, 4, 28)
EXPERIMENTS = 30
LIFT = 0.05


def _warehouse(folder):
    from tianping.settings import Settings
    from tianping.warehouse import connect

    return connect(Settings(home=folder))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    wh = _warehouse(tmp_path_factory.mktemp("aa"))
    run_simulation(wh, buyers=20_000, days=28, seed=5, scenario=load_scenario("baseline"))
    yield wh
    wh.close()


@pytest.mark.parametrize("metric", ["conversion", "aov"])
def test_aa_false_positive_rate_is_alpha_and_pvalues_are_uniform(baseline, metric):
    r = run_aa(baseline, metric, FIRST, LAST, splits=1000, alpha=0.05)
    assert r.units > 15_000
    assert r.report.fpr_ci_lower <= 0.05 <= r.report.fpr_ci_upper, r.report
    assert r.report.ks_pvalue > 0.001 and r.report.consistent
    assert 0.93 <= r.ci_coverage <= 0.97
    assert stats.chisquare(r.pvalue_histogram).pvalue > 0.001


def _many_experiments() -> str:
    arms = (
        "[{name: control, weight: 0.5}, "
        f"{{name: treatment, weight: 0.5, effects: {{order_value: {LIFT}}}}}]"
    )
    rows = "\n".join(
        f"  - {{name: e{i}, kind: ab, layer: l{i}, arms: {arms}}}" for i in range(EXPERIMENTS)
    )
    # no red packets: an order's amount is then its goods value, which the effect scales
    return f"name: coverage\nmarket: {{red_packets_per_30_days: 0}}\nexperiments:\n{rows}\n"


@pytest.fixture(scope="module")
def known_effects(tmp_path_factory):
    wh = _warehouse(tmp_path_factory.mktemp("cov"))
    scenario = parse_scenario(_many_experiments(), "coverage")
    run_simulation(wh, buyers=20_000, days=28, seed=7, scenario=scenario)
    yield wh
    wh.close()


def test_intervals_cover_the_simulators_true_lift(known_effects):
    """Each experiment sits in its own layer, so the 30 are independently randomised; the
    treatment multiplies order value by 1.05, so the true lift of AOV and of GMV per buyer
    is +5% (conversion is untouched)."""
    window = an.AnalysisWindow.from_dates(FIRST, LAST)
    covered, estimates = [], []
    for i in range(EXPERIMENTS):
        agg = an.fetch_aggregates(
            known_effects, an.Query(f"e{i}", window, ("aov", "gmv"), cuped=False)
        )
        for metric, kind in (("aov", "ratio"), ("gmv", "mean")):
            arms = an.arm_stats(agg, metric, ("control", "treatment"), cuped=False)
            c = analyze(arms, metric_type=kind).comparisons[0]
            covered.append(c.rel_effect_size_ci_lower <= LIFT <= c.rel_effect_size_ci_upper)
            estimates.append(c.rel_effect_size)
    coverage = np.mean(covered)
    # 60 intervals at 95%: below 85% would be ~4 standard errors off
    assert coverage >= 0.85, coverage
    assert np.mean(estimates) == pytest.approx(LIFT, abs=0.012)
