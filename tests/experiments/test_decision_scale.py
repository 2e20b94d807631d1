"""One scale per decision: the report decides on the relative effect (its p-value, its
interval) and says so; the issue's case, whose absolute p-value (0.109) and relative interval
([-55.7%, -4.3%]) disagree, is a hurt guardrail."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from tianping.experiments.html import render_html
from tianping.experiments.report import ReportPlan, build_report
from tianping.stats import ArmStats

PLAN = ReportPlan(
    experiment="scale",
    variants=("control", "treatment"),
    weights=(0.5, 0.5),
    primary="conversion",
    guardrails=(("gmv", True),),
    cuped=False,
)
CONVERSION = [ArmStats("control", 1000, 100), ArmStats("treatment", 1000, 160)]
# The arms: {n 1000, sum 10000, sum of squares 3.6e6} vs {n 1000, 7000, 5e4}.
GMV = [
    ArmStats("control", 1000, 10_000, 3.6e6),
    ArmStats("treatment", 1000, 7_000, 5e4),
]


def _report():
    return build_report(PLAN, {"conversion": CONVERSION, "gmv": GMV}, [1000, 1000])


def test_a_guardrail_whose_whole_interval_is_bad_is_hurt_and_blocks_shipping():
    rep = _report()
    gmv = next(m for m in rep.metrics if m.metric == "gmv")
    c = gmv.analysis.comparisons[0]
    assert round(c.pvalue, 3) == 0.109  # the absolute scale alone would miss it
    assert c.rel_effect_size_ci_upper < 0
    assert gmv.hurt == ("treatment",)
    assert rep.recommendation == "do not ship"
    assert any("hurt guardrail(s) gmv" in r for r in rep.reasons)
    assert any("guardrail gmv significantly worse in treatment (-30.00%, relative p = 0.022)" in w
               for w in rep.warnings)  # fmt: skip


def test_the_json_says_which_scale_decides_and_gives_both_pvalues():
    doc = _report().to_dict()
    assert doc["scale"] == "relative" and "relative effect" in doc["scale_note"]
    gmv = next(m for m in doc["metrics"] if m["metric"] == "gmv")["comparisons"][0]
    assert gmv["scale"] == "relative"
    assert gmv["decision_pvalue"] == gmv["rel_pvalue"] == pytest.approx(0.022287, abs=1e-6)
    assert gmv["pvalue"] == pytest.approx(0.10935, abs=1e-5)
    primary = next(m for m in doc["metrics"] if m["metric"] == "conversion")["comparisons"][0]
    assert primary["decision_pvalue"] == primary["rel_pvalue_adjusted"]
    json.dumps(doc)


def test_the_html_shows_both_pvalues_and_the_deciding_one():
    page = render_html(_report().to_dict())
    assert "relative p (decides)" in page and "absolute p" in page
    assert "0.0223" in page and "0.109" in page
    assert "Verdicts use the relative effect" in page


def test_a_control_of_zero_is_decided_on_the_absolute_scale():
    plan = ReportPlan("z", ("control", "treatment"), (0.5, 0.5), "gmv", guardrails=(), cuped=False)
    arms = [ArmStats("control", 500, 0.0, 0.0), ArmStats("treatment", 500, 400.0, 900.0)]
    doc = build_report(plan, {"gmv": arms}, [500, 500]).to_dict()
    c = doc["metrics"][0]["comparisons"][0]
    assert c["rel_pvalue"] is None and c["scale"] == "absolute"
    assert c["decision_pvalue"] == c["pvalue_adjusted"]
    assert doc["recommendation"] == "ship treatment"
    assert re.search(r"absolute p adj\. = [0-9.e-]+", doc["reasons"][0])


def test_cli_table_shows_the_deciding_pvalue(tmp_path):
    """`tianping stats analyze` (the JSON interface) carries the relative p-value too."""
    from tianping.cli.main import app

    doc = tmp_path / "arms.json"
    doc.write_text(json.dumps({
        "metric_type": "mean",
        "arms": [{"name": "control", "n": 1000, "sum": 10000, "sum_sq": 3.6e6},
                 {"name": "treatment", "n": 1000, "sum": 7000, "sum_sq": 5e4}],
    }))  # fmt: skip
    out = CliRunner().invoke(app, ["--home", str(tmp_path / "h"), "stats", "analyze", str(doc),
                                   "--format", "json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    c = json.loads(out.stdout)["comparisons"][0]
    assert round(c["rel_pvalue"], 4) == 0.0223 and round(c["pvalue"], 3) == 0.109
