"""The report's decision rules (SRM and guardrails block shipping), its renderings, and
`tianping experiment analyze` end to end on DuckDB."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import numpy as np
import pytest
from experiment_data import load
from typer.testing import CliRunner

from tianping.cli.main import app
from tianping.experiments.html import render_html
from tianping.experiments.report import ReportPlan, build_report
from tianping.stats import ArmStats

PLAN = ReportPlan(
    experiment="x",
    variants=("control", "b", "c"),
    weights=(1 / 3, 1 / 3, 1 / 3),
    primary="conversion",
    guardrails=(("refund_rate", False), ("nps", True)),
    cuped=False,
)


def _prop(name: str, n: int, rate: float) -> ArmStats:
    return ArmStats(name, n, round(n * rate))


def _ratio(name: str, n: int, num_per_unit: float) -> ArmStats:
    # every unit has 2 orders and num_per_unit of them refunded (a small spread around it)
    k = n // 2
    y = np.r_[np.full(k, num_per_unit + 0.1), np.full(n - k, num_per_unit - 0.1)]
    d = np.full(n, 2.0)
    return ArmStats(
        name,
        n,
        y.sum(),
        (y * y).sum(),
        den_sum=d.sum(),
        den_sum_sq=(d * d).sum(),
        num_den_sum=(y * d).sum(),
    )


def _stats(conv=(0.10, 0.12, 0.13), refunds=(0.2, 0.2, 0.2), n=(20_000, 20_000, 20_000)):
    names = PLAN.variants
    return {
        "conversion": [_prop(v, k, r) for v, k, r in zip(names, n, conv, strict=True)],
        "refund_rate": [_ratio(v, k, r) for v, k, r in zip(names, n, refunds, strict=True)],
        "nps": [_ratio(v, k, 1.0) for v, k in zip(names, n, strict=True)],
    }


def test_ships_the_best_clean_winner():
    rep = build_report(PLAN, _stats(), [20_000] * 3)
    assert rep.recommendation == "ship c"
    primary = rep.metrics[0]
    assert primary.wins == ("b", "c") and rep.srm is not None and not rep.srm.flagged


def test_a_hurt_guardrail_blocks_that_arm():
    rep = build_report(PLAN, _stats(refunds=(0.2, 0.2, 0.3)), [20_000] * 3)
    assert rep.recommendation == "ship b"
    assert any("c improved conversion but significantly hurt guardrail" in r for r in rep.reasons)
    refund = next(m for m in rep.metrics if m.metric == "refund_rate")
    assert refund.hurt == ("c",)
    rep = build_report(PLAN, _stats(refunds=(0.2, 0.3, 0.3)), [20_000] * 3)
    assert rep.recommendation == "do not ship"


def test_a_guardrail_improving_is_not_hurt():
    rep = build_report(PLAN, _stats(refunds=(0.3, 0.2, 0.2)), [20_000] * 3)
    assert rep.recommendation == "ship c"
    assert all(not m.hurt for m in rep.metrics)


def test_sample_ratio_mismatch_blocks_shipping():
    counts = [20_000, 20_000, 21_000]  # chi2 ~ 33, p ~ 7e-8
    rep = build_report(PLAN, _stats(), counts)
    assert rep.srm.flagged and rep.recommendation == "do not ship"
    assert "sample ratio mismatch" in rep.reasons[0]
    assert any(w.startswith("SRM") for w in rep.warnings)


def test_no_significant_lift_means_no_ship_and_holm_is_applied():
    rep = build_report(PLAN, _stats(conv=(0.10, 0.1066, 0.1)), [20_000] * 3)
    primary = rep.metrics[0].analysis.comparisons
    raw = [c.pvalue for c in primary]
    assert raw[0] < 0.05  # b alone would pass (p ~ 0.03) ...
    assert [c.pvalue_adjusted for c in primary] == pytest.approx(
        [min(1.0, 2 * raw[0]), max(raw[1], min(1.0, 2 * raw[0]))]
    )
    assert rep.recommendation == "do not ship"  # ... but not after Holm (p ~ 0.06)


def test_bayesian_decisions_use_chance_to_win():
    from dataclasses import replace

    rep = build_report(replace(PLAN, method="bayesian"), _stats(), [20_000] * 3)
    assert rep.recommendation == "ship c"
    d = rep.to_dict()
    assert 0.99 < d["metrics"][0]["comparisons"][1]["chance_to_win"] <= 1


def test_sequential_decisions_use_always_valid_pvalues():
    from dataclasses import replace

    fixed = build_report(PLAN, _stats(conv=(0.10, 0.1075, 0.1)), [20_000] * 3)
    seq = build_report(
        replace(PLAN, method="sequential"), _stats(conv=(0.10, 0.1075, 0.1)), [20_000] * 3
    )
    f, s = fixed.metrics[0].analysis.comparisons[0], seq.metrics[0].analysis.comparisons[0]
    assert f.pvalue < 0.05 and fixed.recommendation == "ship b"
    # the same data is not yet conclusive for a test that may be looked at every day
    assert s.pvalue > f.pvalue and s.effect_size_ci_lower < f.effect_size_ci_lower
    assert seq.recommendation == "do not ship"
    big = build_report(replace(PLAN, method="sequential"), _stats(), [20_000] * 3)
    assert big.recommendation == "ship c"


def test_runtime_from_observed_traffic_matches_the_power_calculator():
    from dataclasses import replace

    from tianping.stats import sample_size

    plan = replace(PLAN, mde=0.1, days=10)
    rep = build_report(plan, _stats(), [20_000] * 3)
    ref = sample_size("proportion", 0.10, 0.1, relative=True, arms=3, daily_units=6000)
    assert rep.runtime["units_needed"] == ref.n_total
    assert rep.runtime["days_needed"] == ref.days
    assert rep.runtime["days_left"] == max(0, ref.days - 10)
    assert build_report(PLAN, _stats(), [20_000] * 3).runtime is None  # no MDE planned


def test_json_and_html_renderings():
    d = build_report(PLAN, _stats(refunds=(0.2, 0.2, 0.3)), [20_000] * 3).to_dict()
    json.dumps(d)  # JSON-ready
    assert d["recommendation"] == "ship b" and d["metrics"][1]["guardrail_hurt_in"] == ["c"]
    page = render_html(d)
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 3
    assert not re.search(r"https?://|<script|<link", page)  # offline: nothing to fetch
    assert "ship b" in page and "#c0392b" in page  # the hurt guardrail drawn in red


SPEC = """
name: checkout
variants: [control, treatment, {name: bold, weight: 0.5}]
mde: 0.05
primary_metric: orders
secondary_metrics: [gmv, aov]
start_date: 2024-06-01
end_date: 2024-06-14
"""


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory, experiment_data):
    from tianping.settings import Settings
    from tianping.warehouse import connect

    tmp_path = tmp_path_factory.mktemp("cli")
    home = tmp_path / "home"
    wh = connect(Settings(home=home))
    load(wh, experiment_data)
    wh.close()
    (tmp_path / "exp.yaml").write_text(SPEC, encoding="utf-8")
    runner = CliRunner()
    created = runner.invoke(
        app, ["--home", str(home), "experiment", "create", str(tmp_path / "exp.yaml")]
    )
    assert created.exit_code == 0, created.output
    return home


def test_cli_analyze_json_table_and_html(cli_home, tmp_path):
    runner = CliRunner()
    base = ["--home", str(cli_home), "experiment", "analyze", "checkout"]
    out = runner.invoke(app, [*base, "--format", "json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    assert [a["name"] for a in d["arms"]] == ["control", "treatment", "bold"]
    orders = d["metrics"][0]
    assert orders["metric"] == "orders" and orders["role"] == "primary"
    lift = orders["comparisons"][0]["rel_effect_size"]
    assert 0.15 < lift < 0.45  # the data's true lift is +30%
    assert "treatment" in orders["significant_improvement_in"]
    # CUPED on by default: regression on every pre-period feature and the returning flag
    assert orders["covariates"] == "regression" and orders["cuped"] is False
    assert set(orders["comparisons"][0]["covariate_coefficients"]) >= {"pre_orders", "returning"}
    assert orders["comparisons"][0]["variance_reduction"] > 0.1
    assert d["warnings"][0].startswith("3 unit(s) were exposed to more than one variant")
    run = d["runtime"]
    assert (run["days_so_far"], run["units_so_far"]) == (14, sum(a["units"] for a in d["arms"]))
    assert run["units_per_day"] == pytest.approx(run["units_so_far"] / 14)
    assert run["days_needed"] == math.ceil(run["units_needed"] / run["units_per_day"])
    table = runner.invoke(app, [*base, "--slice-by", "buyer_type"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "orders (p)" in table.output and "orders by buyer_type" in table.output
    assert "post-stratified" in table.output
    assert f"{run['units_needed']:,} units to detect +5.0% on orders" in table.output
    assert d["recommendation"].split(":")[0] in table.output
    page = tmp_path / "r.html"
    html = runner.invoke(app, [*base, "--format", "html", "-o", str(page)])
    assert html.exit_code == 0 and page.read_text().count("<svg") >= 4


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["analyze", "nope"], 2, "no experiment named 'nope'"),
        (["analyze", "checkout", "--format", "pdf"], 2, "unknown format 'pdf'"),
        (["analyze", "checkout", "--slice-by", "colour"], 1, "cannot slice by 'colour'"),
        (["aa", "--metric", "happiness"], 1, "unknown metric 'happiness'"),
        (["aa", "--metric", "gmv", "--splits", "0"], 1, "splits must be between"),
        (["aa", "--metric", "order_value_p90"], 1, "is a quantile of orders"),
        (["aa", "--metric", "gmv", "--from", "2020-01-01", "--to", "2020-01-02"], 2, "active unit"),
    ],
)
def test_cli_errors_are_one_line(cli_home, args, code, message):
    result = CliRunner().invoke(app, ["--home", str(cli_home), "experiment", *args])
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_html_shows_nps_in_points_and_round_ticks_with_zero():
    """NPS is read in points on every page (0.3529 is 35.29); the forest chart's axis is round
    and labels 0."""
    comparison = {"treatment": "b", "control_mean": 0.3529, "treatment_mean": 0.3243,
                  "effect_size": -0.0286, "rel_effect_size": -0.081,
                  "rel_effect_size_ci_lower": -0.319, "rel_effect_size_ci_upper": 0.354}  # fmt: skip
    metric = {"metric": "nps", "role": "guardrail", "metric_type": "mean", "error": None,
              "comparisons": [comparison], "significant_improvement_in": [],
              "guardrail_hurt_in": []}  # fmt: skip
    page = render_html({"experiment": "x", "arms": [], "metrics": [metric], "reasons": [],
                        "warnings": [], "recommendation": "no decision"})  # fmt: skip
    cells = re.findall(r"<td>([^<]*)</td>", page)
    assert cells[:4] == ["b", "35.29", "32.43", "-2.86"] and "in points" in page
    ticks = re.findall(r'text-anchor="middle" fill="#777">([^<]+)</text>', page)
    assert ticks == ["-40%", "-20%", "0%", "+20%", "+40%"]


def test_alpha_split_tests_each_group_at_its_share_and_secondaries_jointly():
    """primary 0.8 / secondary 0.2 of alpha 0.05: the primary is tested at 0.04, the two
    secondaries at 0.01 adjusted across both metrics and both arms (Holm over four)."""
    plan = ReportPlan(
        experiment="x",
        variants=("control", "b", "c"),
        weights=(1 / 3,) * 3,
        primary="conversion",
        secondary=("refund_rate", "nps"),
        cuped=False,
        alpha_split=(("primary", 0.8), ("secondary", 0.2)),
    )
    stats = _stats(conv=(0.10, 0.1072, 0.10), refunds=(0.2, 0.2, 0.2))
    split = build_report(plan, stats, [20_000] * 3)
    d = split.to_dict()
    assert d["alpha_split"] == pytest.approx({"primary": 0.04, "secondary": 0.01})
    primary, refund, nps = split.metrics
    assert primary.analysis.config.alpha == pytest.approx(0.04)
    assert refund.analysis.config.alpha == pytest.approx(0.01)
    b = primary.analysis.comparisons[0]
    assert 0.04 < b.rel_pvalue_adjusted < 0.05 and primary.wins == ()  # wins only at 0.05
    whole = build_report(replace(plan, alpha_split=()), stats, [20_000] * 3)
    assert whole.metrics[0].wins == ("b",)
    from tianping.stats import adjust_pvalues

    raw = [c.rel_pvalue for m in (refund, nps) for c in m.analysis.comparisons]
    joint = adjust_pvalues(raw, "holm")
    got = [c.rel_pvalue_adjusted for m in (refund, nps) for c in m.analysis.comparisons]
    assert got == pytest.approx(joint)
    assert "alpha split primary 0.04, secondary 0.01" in render_html(d)


def test_regression_adjusted_and_quantile_metrics_in_the_report():
    from tianping.stats import CovariateSums, QuantileArm

    rng = np.random.default_rng(4)

    def arm(name, lift):
        x = rng.gamma(2, 2, (4000, 2))
        y = x @ [1.0, 0.5] + rng.normal(0, 1, 4000) + lift
        c = CovariateSums(("pre_gmv", "returning"), tuple(x.sum(0)), tuple(map(tuple, x.T @ x)),
                          tuple(y @ x))  # fmt: skip
        return ArmStats(name, 4000, y.sum(), y @ y, covariates=c)

    plan = ReportPlan("x", ("control", "b"), (0.5, 0.5), "gmv", ("order_value_p90",))
    stats = {
        "gmv": [arm("control", 0.0), arm("b", 0.3)],
        "order_value_p90": [
            QuantileArm("control", 11054, 0.9, 7.158, 7.0988, 7.2172),
            QuantileArm("b", 10861, 0.9, 7.6945, 7.6418, 7.7472),
        ],
    }
    d = build_report(plan, stats, [4000, 4000]).to_dict()
    gmv, p90 = d["metrics"]
    assert gmv["covariates"] == "regression" and gmv["comparisons"][0]["variance_reduction"] > 0.5
    assert p90["metric_type"] == "quantile" and p90["error"] is None
    assert p90["comparisons"][0]["rel_effect_size"] == pytest.approx(7.6945 / 7.158 - 1)
    page = render_html(d)
    assert "regression on 2 covariates" in page and "quantile" in page
