"""The summary-statistics interface (`tianping stats analyze FILE.json` and
:func:`analyze_summary`): output shape, agreement with scipy, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from tianping.cli.main import app
from tianping.errors import InvalidInput
from tianping.stats import analyze_summary

KEYS = (
    "effect_size",
    "effect_size_ci_lower",
    "effect_size_ci_upper",
    "rel_effect_size",
    "rel_effect_size_ci_lower",
    "rel_effect_size_ci_upper",
    "pvalue",
)


def _arm(name, y):
    y = np.asarray(y, dtype=float)
    return {"name": name, "n": int(y.size), "sum": float(y.sum()), "sum_sq": float((y * y).sum())}


@pytest.fixture
def mean_doc(rng):
    c, t = rng.lognormal(3, 1, 400), rng.lognormal(3.05, 1, 380)
    return (
        {
            "metric_type": "mean",
            "planned_weights": [0.5, 0.5],
            "arms": [_arm("c", c), _arm("t", t)],
        },
        c,
        t,
    )


def test_mean_agrees_with_scipy_welch(mean_doc):
    doc, c, t = mean_doc
    out = analyze_summary(doc)
    row = out["comparisons"][0]
    assert set(KEYS) <= set(row) and row["treatment"] == "t" and row["control"] == "c"
    ref = stats.ttest_ind(t, c, equal_var=False)
    assert row["pvalue"] == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (row["effect_size_ci_lower"], row["effect_size_ci_upper"]) == pytest.approx(
        (ci.low, ci.high), rel=1e-9
    )
    assert row["rel_effect_size"] == pytest.approx(t.mean() / c.mean() - 1, rel=1e-12)
    srm = stats.chisquare([c.size, t.size])
    assert out["srm_pvalue"] == pytest.approx(srm.pvalue, rel=1e-12)
    assert "chance_to_win" not in row


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_one_sided_agrees_with_scipy(mean_doc, alternative):
    doc, c, t = mean_doc
    out = analyze_summary({**doc, "alternative": alternative})
    ref = stats.ttest_ind(t, c, equal_var=False, alternative=alternative)
    assert out["comparisons"][0]["pvalue"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_bayesian_and_sequential_outputs(mean_doc):
    doc, _, _ = mean_doc
    bayes = analyze_summary({**doc, "method": "bayesian"})["comparisons"][0]
    assert 0 <= bayes["chance_to_win"] <= 1 and bayes["risk"] >= 0
    fixed = analyze_summary(doc)["comparisons"][0]
    seq = analyze_summary({**doc, "method": "sequential"})["comparisons"][0]
    # an always-valid interval is wider than the fixed-horizon one
    assert seq["effect_size_ci_lower"] < fixed["effect_size_ci_lower"]
    assert seq["effect_size_ci_upper"] > fixed["effect_size_ci_upper"]


def test_proportions_without_sum_sq_and_several_arms():
    doc = {
        "metric_type": "proportion",
        "correction": "bh",
        "arms": [
            {"name": "control", "n": 5000, "sum": 500},
            {"name": "a", "n": 5000, "sum": 560},
            {"name": "b", "n": 5000, "sum": 505},
        ],
    }
    out = analyze_summary(doc)
    assert [c["treatment"] for c in out["comparisons"]] == ["a", "b"]
    raw = [c["pvalue"] for c in out["comparisons"]]
    adjusted = [c["pvalue_adjusted"] for c in out["comparisons"]]
    assert adjusted == pytest.approx([min(raw[0] * 2, raw[1]), raw[1]])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["arms"][0].update(n=-5), "arm .c.: n must not be negative"),
        (lambda d: d["arms"][1].update(sum_sq=1.0), "sum_sq"),
        (lambda d: d.update(colour="red"), "unknown field 'colour'"),
        (lambda d: d["arms"][0].update(sums=3), "arms\\[0\\] \\('c'\\): unknown field 'sums'"),
        (lambda d: d.update(arms=d["arms"][:1]), "need at least 2 arms"),
        (lambda d: d.update(metric_type="median"), "unknown metric_type 'median'"),
        (lambda d: d.pop("metric_type"), "metric_type is required"),
        (lambda d: d["arms"][1].update(n="many"), "n must be a number"),
        (lambda d: d.update(planned_weights=[1]), "planned_weights"),
        (lambda d: d.update(cuped=True), "pre_sum"),
    ],
)
def test_invalid_documents_name_the_problem(mean_doc, change, message):
    doc = json.loads(json.dumps(mean_doc[0]))
    change(doc)
    with pytest.raises(InvalidInput, match=message):
        analyze_summary(doc)


def test_cli_prints_json_and_one_line_errors(tmp_path, mean_doc):
    runner = CliRunner()
    good = tmp_path / "good.json"
    good.write_text(json.dumps(mean_doc[0]))
    out = runner.invoke(app, ["stats", "analyze", str(good)])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["comparisons"][0]["pvalue"] == pytest.approx(
        analyze_summary(mean_doc[0])["comparisons"][0]["pvalue"]
    )
    table = runner.invoke(app, ["stats", "analyze", str(good), "--format", "table"])
    assert table.exit_code == 0 and "srm_pvalue" in table.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**mean_doc[0], "arms": mean_doc[0]["arms"][:1]}))
    err = runner.invoke(app, ["stats", "analyze", str(bad)])
    assert err.exit_code == 1 and "need at least 2 arms" in err.output
    assert "Traceback" not in err.output and len(err.output.strip().splitlines()) == 1
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    err = runner.invoke(app, ["stats", "analyze", str(broken)])
    assert err.exit_code == 1 and "not valid JSON" in err.output
    missing = runner.invoke(app, ["stats", "analyze", str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_cli_analyzes_quantile_covariate_and_stratified_documents(tmp_path):
    """The new shapes through `tianping stats analyze`: the CLI prints what the library
    returns, and a wrong field is one line naming it."""
    from tianping.stats import analyze_summary

    x = {"names": ["pre_gmv", "returning"], "sum": [50.0, 6.0],
         "cross": [[400.0, 30.0], [30.0, 6.0]], "y_cross": [520.0, 40.0]}  # fmt: skip
    docs = {
        "quantile": {"metric_type": "quantile", "quantile": 0.9, "arms": [
            {"name": "control", "n": 11054, "quantile": 7.158, "quantile_lower": 7.0988,
             "quantile_upper": 7.2172},
            {"name": "b", "n": 10861, "quantile": 7.6945, "quantile_lower": 7.6418,
             "quantile_upper": 7.7472}]},
        "covariates": {"metric_type": "mean", "covariates": "regression", "arms": [
            {"name": "control", "n": 10, "sum": 60.0, "sum_sq": 500.0, "covariates": x},
            {"name": "b", "n": 10, "sum": 70.0, "sum_sq": 620.0, "covariates": x}]},
        "strata": {"metric_type": "proportion", "strata": {
            "new": [{"name": "control", "n": 400, "sum": 40}, {"name": "b", "n": 410, "sum": 50}],
            "returning": [{"name": "control", "n": 600, "sum": 120},
                          {"name": "b", "n": 590, "sum": 140}]}},
    }  # fmt: skip
    runner = CliRunner()
    for name, doc in docs.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        out = runner.invoke(app, ["stats", "analyze", str(path)])
        assert out.exit_code == 0, out.output
        assert json.loads(out.output) == json.loads(json.dumps(analyze_summary(doc)))
        table = runner.invoke(app, ["stats", "analyze", str(path), "--format", "table"])
        assert table.exit_code == 0 and "b" in table.output
    docs["strata"]["strata"]["new"][1]["sum"] = 500
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(docs["strata"]), encoding="utf-8")
    err = runner.invoke(app, ["stats", "analyze", str(path)])
    assert (
        err.exit_code == 1
        and "stratum 'new': arm 'b'" in err.output
        and "Traceback" not in err.output
    )
