"""The pre-registered decision rule: its YAML, freezing and audited changes, its sizing
(checked against statsmodels) and its verdict (checked by simulation)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower

from tianping.errors import Conflict, InvalidInput
from tianping.experiments import service
from tianping.experiments.report import ReportPlan, build_report
from tianping.experiments.rule import (
    Baseline,
    Bound,
    DecisionRule,
    Gate,
    GuardrailRule,
    SuccessMetric,
    decide,
    plan_rule,
)
from tianping.stats import ArmStats

YAML = """
name: one-click
variants: [control, treatment]
primary_metric: conversion
secondary_metrics: [gmv]
mde: 0.03
start_date: 2024-06-01
end_date: 2024-06-28
"""

RULE = """
rule:
  success:
    - {metric: conversion, min_effect: 0.04}
    - gmv
  guardrails:
    - {metric: refund_rate, margin: 0.1}
    - {metric: nps, margin: 3, scale: absolute}
  health: {dimensions: [channel], max_multiple_exposed: 0.02}
  alpha: {success: 0.1, guardrails: 0.025}
  power: 0.9
"""


# -- the rule as written ----------------------------------------------------------------------


def test_defaults_follow_the_consumer_first_policy():
    rule = service.load_yaml(YAML).decision_rule()
    assert rule.success == (SuccessMetric("conversion", True, 0.03),)  # min effect = mde
    assert [(g.metric, g.higher_is_better, g.margin, g.scale) for g in rule.guardrails] == [
        ("nps", True, 2.0, "absolute"),
        ("refund_rate", False, 0.05, "relative"),
        ("review_score", True, 0.01, "relative"),
        ("door_delivery_rate", True, 0.02, "relative"),
    ]
    assert (rule.alpha_success, rule.alpha_guardrails, rule.power) == (0.05, 0.05, 0.8)
    assert rule.health.srm_alpha == 0.001 and rule.health.dimensions == ()


def test_a_written_rule_replaces_the_guardrails_and_round_trips():
    spec = service.load_yaml(YAML + RULE)
    rule = spec.decision_rule()
    assert [g.metric for g in spec.guardrails] == ["refund_rate", "nps"]
    assert rule.success == (
        SuccessMetric("conversion", True, 0.04),
        SuccessMetric("gmv", True, 0.03),
    )
    assert rule.guardrails == (
        GuardrailRule("refund_rate", False, 0.1, "relative"),
        GuardrailRule("nps", True, 3.0, "absolute"),
    )
    assert (rule.alpha_success, rule.alpha_guardrails, rule.power) == (0.1, 0.025, 0.9)
    assert rule.health.dimensions == ("channel",) and rule.health.max_multiple_exposed == 0.02
    again = service.load_yaml(service.dump_yaml(spec))
    assert again.decision_rule() == rule
    assert DecisionRule.from_dict(rule.to_dict()) == rule


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("rule: {success: [aov]}", "rule.success metric aov is neither the primary"),
        ("rule: {guardrails: [{metric: nps, margin: -1}]}", "margin"),
        ("rule: {health: {dimensions: [colour]}}", "dimensions"),
        ("rule: {alpha: {success: 0.7}}", "success"),
        ("rule: {sucess: [gmv]}", "sucess"),
        ("rule: {success: [happiness]}", "happiness"),
    ],
)
def test_bad_rules_name_the_field(rule, message):
    with pytest.raises(InvalidInput, match=message):
        service.load_yaml(YAML + rule)


def test_guardrails_written_twice_must_agree():
    text = YAML + "guardrails: [nps]\nrule: {guardrails: [refund_rate]}\n"
    with pytest.raises(InvalidInput, match="name different metrics"):
        service.load_yaml(text)


# -- frozen at start, changed only with a reason ------------------------------------------------


def test_the_rule_is_frozen_at_start_and_every_later_change_is_audited(session):
    from tianping.audit import log as audit
    from tianping.clock import FixedClock

    service.create(service.load_yaml(YAML), session=session)
    row = service.change_rule("one-click", {"guardrails": ["refund_rate"]}, reason="",
                              session=session)  # fmt: skip
    assert row.rule_frozen_at is None and row.rule_changes == []  # a draft is edited freely
    assert [g["metric"] for g in row.guardrails] == ["refund_rate"]

    at = datetime(2024, 6, 1, 8, tzinfo=UTC)
    row = service.set_status("one-click", "running", session=session, clock=FixedClock(at))
    assert row.rule_frozen_at == at
    frozen = service.decision_rule_of(row)
    with pytest.raises(InvalidInput, match="frozen when it started .*give the reason"):
        service.change_rule("one-click", {"guardrails": ["nps"]}, reason=" ", session=session)

    later = FixedClock(datetime(2024, 6, 9, tzinfo=UTC))
    row = service.change_rule("one-click", {"guardrails": [{"metric": "refund_rate",
                              "margin": 0.2}]}, reason="legal asked for a looser margin",
                              session=session, clock=later)  # fmt: skip
    changed = service.decision_rule_of(row)
    assert changed.guardrails[0].margin == 0.2 and changed.version != frozen.version
    assert row.rule_changes == [{"at": "2024-06-09T00:00:00+00:00",
                                 "reason": "legal asked for a looser margin",
                                 "before": frozen.version, "after": changed.version}]  # fmt: skip
    assert service.rule_record(row)["frozen_at"] == at.isoformat()
    entries = audit.entries(session=session,
                            where=audit.AuditFilter(subject="experiment:one-click"))  # fmt: skip
    actions = [e.action for e in entries]
    assert actions == ["experiment.created", "experiment.rule_set", "experiment.started",
                       "experiment.rule_changed"]  # fmt: skip
    detail = json.loads(entries[-1].detail)
    assert detail["before"] == frozen.version and detail["after"] == changed.version

    service.ship("one-click", "treatment", session=session)
    with pytest.raises(Conflict, match="shipped; its rule is history"):
        service.change_rule("one-click", {}, reason="too late", session=session)


def test_an_experiment_created_running_is_frozen_at_creation(session):
    row = service.create(service.load_yaml(YAML + "status: running\n"), session=session)
    assert row.rule_frozen_at is not None and row.rule == service.decision_rule_of(row).to_dict()


# -- power for the whole rule ---------------------------------------------------------------


def test_the_plan_of_one_success_metric_is_statsmodels_one_sided_sample_size():
    cv, delta = 1.7, 0.05
    rule = DecisionRule(success=(SuccessMetric("gmv", True, delta),), alpha_success=0.05,
                        power=0.8)  # fmt: skip
    plan = plan_rule(rule, {"gmv": Baseline("gmv", 100.0, 100.0 * cv)}, (1, 1))
    per_arm = NormalIndPower().solve_power(
        effect_size=delta / ((1 + delta) * cv), alpha=0.05, power=0.8, alternative="larger"
    )
    assert plan.units == pytest.approx(2 * per_arm, rel=1e-6, abs=2)
    assert plan.tests_to_pass == 1


def test_guardrails_share_beta_so_the_whole_rule_has_its_power():
    rule = DecisionRule(
        success=(SuccessMetric("gmv", True, 0.05),),
        guardrails=(GuardrailRule("refund_rate", False, 0.1),
                    GuardrailRule("nps", True, 2.0, "absolute")),
        alpha_guardrails=0.05, power=0.8,
    )  # fmt: skip
    base = {"gmv": Baseline("gmv", 100.0, 170.0), "refund_rate": Baseline("refund_rate", 0.08, 0.5),
            "nps": Baseline("nps", 0.3, 0.9)}  # fmt: skip
    plan = plan_rule(rule, base, (1, 2), display={"nps": 100.0})
    lines = {line.metric: line for line in plan.lines}
    assert plan.tests_to_pass == 3 and lines["gmv"].power == pytest.approx(1 - 0.2 / 3)
    # a non-inferiority test at the margin with no true change: statsmodels, ratio 2:1
    refund = NormalIndPower().solve_power(
        effect_size=0.1 / (0.5 / 0.08), alpha=0.05, power=1 - 0.2 / 3, ratio=2.0,
        alternative="larger",
    )  # fmt: skip
    assert lines["refund_rate"].units == pytest.approx(3 * refund, rel=1e-6, abs=3)
    nps = NormalIndPower().solve_power(effect_size=2.0 / 90.0, alpha=0.05, power=1 - 0.2 / 3,
                                       ratio=2.0, alternative="larger")  # fmt: skip
    assert lines["nps"].units == pytest.approx(3 * nps, rel=1e-6, abs=3)
    assert plan.units == max(line.units for line in plan.lines)
    with pytest.raises(ValueError, match="no baseline for nps"):
        plan_rule(rule, {"gmv": base["gmv"], "refund_rate": base["refund_rate"]}, (1, 1))


def test_an_arm_without_traffic_does_not_set_the_size():
    # A race's eliminated strategy keeps a weight of 1e-9: it gains no units whatever the size,
    # so it must not make the rule need 10^14 units (as the demo's race plan once said).
    rule = DecisionRule(success=(SuccessMetric("gmv", True, 0.05),), alpha_success=0.05,
                        power=0.8)  # fmt: skip
    base = {"gmv": Baseline("gmv", 100.0, 170.0)}
    plan = plan_rule(rule, base, (0.5, 0.5, 1e-9))
    assert plan.units == plan_rule(rule, base, (0.5, 0.5, 0.0)).units
    per_arm = NormalIndPower().solve_power(  # two comparisons are still analysed and corrected
        effect_size=0.05 / (1.05 * 1.7), alpha=rule.success_alpha(2), power=0.8,
        alternative="larger",
    )  # fmt: skip
    assert plan.units == pytest.approx(2 * per_arm, rel=1e-6, abs=2)
    with pytest.raises(ValueError, match="the control receives no traffic"):
        plan_rule(rule, base, (1e-9, 0.5, 0.5))
    with pytest.raises(ValueError, match="no treatment arm receives traffic"):
        plan_rule(rule, base, (1.0, 0.0))


# -- the verdict ------------------------------------------------------------------------------


def _b(metric, passed, worse=False, role="success"):
    return Bound(metric, "t", 0.01, 0.001 if passed else -0.01, 0.05, passed, worse,
                 threshold=0.0 if role == "success" else -0.02, role=role)  # fmt: skip


def test_verdict_order_investigate_then_ship_then_blocks_then_keep_running():
    rule = DecisionRule(success=(SuccessMetric("gmv", True, 0.05),))
    ok = [Gate("SRM", "pass", ""), Gate("sample size", "pass", "")]
    early = [Gate("SRM", "pass", ""), Gate("sample size", "warn", "")]
    broken = [Gate("SRM by day", "fail", "the mismatch comes from 2024-06-03"), *ok]
    win, guard = [_b("gmv", True)], [_b("nps", True, role="guardrail")]
    v = decide(rule, ["t"], win, guard, broken)
    assert v.verdict == "investigate" and "2024-06-03" in v.reasons[0]
    assert decide(rule, ["t"], win, guard, ok).recommendation == "ship t"
    v = decide(rule, ["t"], win, guard, early)
    assert v.verdict == "keep running" and "would ship t" in v.reasons[0]
    unproven = [_b("nps", False, role="guardrail")]
    v = decide(rule, ["t"], win, unproven, ok)
    assert v.verdict == "do not ship" and any("not shown non-inferior" in r for r in v.reasons)
    assert decide(rule, ["t"], win, unproven, early).verdict == "keep running"
    hurt = [_b("nps", False, worse=True, role="guardrail")]
    assert decide(rule, ["t"], win, hurt, early).verdict == "do not ship"  # no need to wait
    assert decide(rule, ["t"], [_b("gmv", False)], guard, ok).verdict == "do not ship"


# -- calibration on simulated sufficient statistics (scaled down; bench/ has the full run) ---


def _arms(rng, n, mean, sd, lift, pre=False):
    """Two arms of normal per-unit values with a known relative lift, as sufficient stats."""
    out = []
    for name, m in (("control", mean), ("treatment", mean * (1 + lift))):
        y = rng.normal(m, sd, n)
        out.append(ArmStats(name, n, float(y.sum()), float((y * y).sum())))
    return out


def _plan(rule):
    return ReportPlan(
        experiment="sim", variants=("control", "treatment"), weights=(1.0, 1.0), primary="gmv",
        guardrails=(("orders", True),), cuped=False, rule=rule,
    )  # fmt: skip


def _verdicts(rng, rule, runs, lift, guard_lift, units):
    out = []
    for _ in range(runs):
        stats_ = {"gmv": _arms(rng, units, 100.0, 150.0, lift),
                  "orders": _arms(rng, units, 2.0, 1.5, guard_lift)}  # fmt: skip
        rep = build_report(_plan(rule), stats_, [units, units])
        out.append(rep.verdict.verdict)
    return np.array(out)


def test_the_rule_ships_at_its_error_rates_on_simulated_experiments():
    """A/A: false ships ≤ alpha; a true effect of the planned size with the guardrail
    unchanged: misses ≤ beta; a guardrail 4 % worse than its 2 % margin: ships ≤ 5 %."""
    from dataclasses import replace

    from tianping.experiments.rule import HealthRule

    rng = np.random.default_rng(7)
    rule = DecisionRule(success=(SuccessMetric("gmv", True, 0.05),),
                        guardrails=(GuardrailRule("orders", True, 0.02),))  # fmt: skip
    plan = plan_rule(rule, {"gmv": Baseline("gmv", 100.0, 150.0),
                            "orders": Baseline("orders", 2.0, 1.5)}, (1, 1))  # fmt: skip
    rule = replace(rule, health=HealthRule(min_units=plan.units))  # sized before the start
    units = plan.units // 2
    runs = 300
    aa = _verdicts(rng, rule, runs, 0.0, 0.0, units)
    ab = _verdicts(rng, rule, runs, 0.05, 0.0, units)
    bad = _verdicts(rng, rule, runs, 0.05, -0.04, units)
    # one-sided exact binomial tests at 1 %: the rates are not above their nominal levels
    assert stats.binomtest(int((aa == "ship").sum()), runs, 0.05, "greater").pvalue > 0.01
    assert stats.binomtest(int((ab != "ship").sum()), runs, 0.2, "greater").pvalue > 0.01
    assert stats.binomtest(int((bad == "ship").sum()), runs, 0.05, "greater").pvalue > 0.01
    # and the power is real: most true effects ship
    assert (ab == "ship").mean() > 0.8


def test_cli_changes_a_frozen_rule_only_with_a_reason(tmp_path):
    from typer.testing import CliRunner

    from tianping.cli.main import app

    runner = CliRunner()
    home = ["--home", str(tmp_path / "home")]
    (tmp_path / "exp.yaml").write_text(YAML, encoding="utf-8")
    (tmp_path / "rule.yaml").write_text("rule:\n  guardrails: [{metric: nps, margin: 4, "
                                        "scale: absolute}]\n", encoding="utf-8")  # fmt: skip
    assert (
        runner.invoke(app, [*home, "experiment", "create", str(tmp_path / "exp.yaml")]).exit_code
        == 0
    )
    assert runner.invoke(app, [*home, "experiment", "start", "one-click"]).exit_code == 0
    refused = runner.invoke(
        app, [*home, "experiment", "rule", "one-click", str(tmp_path / "rule.yaml")]
    )
    assert refused.exit_code == 1 and "give the reason" in refused.output
    assert "Traceback" not in refused.output and len(refused.output.strip().splitlines()) <= 2
    done = runner.invoke(app, [*home, "experiment", "rule", "one-click", str(tmp_path / "rule.yaml"),
                               "--reason", "NPS answers are too few"])  # fmt: skip
    assert done.exit_code == 0 and "(change recorded)" in done.output
    shown = runner.invoke(app, [*home, "experiment", "show", "one-click"]).output
    assert "margin: 4.0" in shown and "scale: absolute" in shown
    (tmp_path / "bad.yaml").write_text("rule:\n  guardrails: [{metric: nps, margn: 4}]\n",
                                       encoding="utf-8")  # fmt: skip
    bad = runner.invoke(app, [*home, "experiment", "rule", "one-click", str(tmp_path / "bad.yaml"),
                              "--reason", "x"])  # fmt: skip
    assert bad.exit_code == 1 and "margn" in bad.output and "Traceback" not in bad.output
