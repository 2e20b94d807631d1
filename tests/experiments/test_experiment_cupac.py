"""CUPAC in the warehouse: the engine's folds and predictions equal Python's, the adjusted
effect equals OLS on the unit table, an empty pre-period still works, and DuckDB and Spark
give the same numbers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import statsmodels.api as sm
from experiment_data import END, START, load

from tianping.errors import InvalidInput
from tianping.experiments import analysis as an
from tianping.experiments import cupac
from tianping.stats import analyze
from tianping.stats.cupac import unit_bucket

METRICS = ("gmv", "refund_rate", "conversion")
OUTCOMES = ("gmv", "converted", "refunded_orders", "orders")


def _query(**kw) -> an.Query:
    return an.Query("checkout", an.AnalysisWindow(START, END), METRICS, **{"cupac": True, **kw})


def _connect(folder):
    from tianping.settings import Settings
    from tianping.warehouse import connect

    return connect(Settings(home=folder, warehouse=f"duckdb://{folder / 'w.duckdb'}"))


@pytest.fixture(scope="module")
def duck(experiment_data, tmp_path_factory):
    wh = _connect(tmp_path_factory.mktemp("cupac"))
    load(wh, experiment_data)
    yield wh
    wh.close()


def _predicted_units(wh, q):
    rows = an.unit_table(wh, q)
    units = int(wh.execute(an.exposed_units(wh, q).count()))
    rows, fits = cupac.with_predictions(wh, rows, OUTCOMES, units=units)
    rows = rows.mutate(bucket=cupac.bucket(rows.unit_id))
    return wh.execute(rows.order_by("unit_id")), {f.outcome: f for f in fits}


def test_the_engine_computes_pythons_folds_and_predictions(warehouse, duck, experiment_data):
    """On DuckDB and Spark alike: every unit's bucket is the md5 one, its prediction is the
    one its fold's model gives in NumPy (which equals scikit-learn's), and the whole CUPAC
    analysis equals DuckDB's."""
    load(warehouse, experiment_data)
    frame, fits = _predicted_units(warehouse, _query())
    assert frame.bucket.tolist() == [unit_bucket(u) for u in frame.unit_id]
    fold = frame.bucket.to_numpy() % 2
    for outcome, fit in fits.items():
        X = frame[list(fit.models[0].features)].to_numpy(float)
        expected = fit.predict(X, fold)
        assert frame[f"cupac_{outcome}"].to_numpy() == pytest.approx(expected, rel=1e-12)
    assert "exposed_days" in fit.models[0].features
    assert "active_days_before" in fit.models[0].features
    ours, reference = (an.fetch_aggregates(wh, _query()) for wh in (warehouse, duck))
    assert ours.covariates == reference.covariates
    assert {"cupac_gmv", "cupac_orders"} <= set(ours.covariates)
    by_arm = {(r["variant"], r["slice"]): r for r in ours.rows}
    assert len(by_arm) == len(reference.rows)
    for theirs in reference.rows:
        mine = by_arm[theirs["variant"], theirs["slice"]]
        for key, value in theirs.items():
            if isinstance(value, float):
                assert mine[key] == pytest.approx(value, rel=1e-7, abs=1e-9), key
    for outcome, summary in an.cupac_summary(reference).items():
        assert an.cupac_summary(ours)[outcome]["r2"] == pytest.approx(summary["r2"], rel=1e-9)


def test_the_cupac_effect_is_ols_on_the_unit_table(duck):
    """The adjusted GMV effect equals the treatment coefficient of OLS of GMV on the
    treatment and every centred covariate, the predictions included (statsmodels)."""
    q = _query()
    agg = an.fetch_aggregates(duck, q)
    arms = an.arm_stats(agg, "gmv", ("control", "treatment"), cuped=True)
    c = analyze(arms, metric_type="mean", covariates="regression").comparisons[0]
    frame, _ = _predicted_units(duck, q)
    units = frame[frame.variant.isin(["control", "treatment"])]
    x = units[list(agg.covariates)].to_numpy(float)
    t = (units.variant == "treatment").to_numpy(float)
    ols = sm.OLS(units.gmv.to_numpy(float), sm.add_constant(np.column_stack([t, x - x.mean(0)])))
    fit = ols.fit()
    assert c.effect_size == pytest.approx(fit.params[1], rel=1e-8)
    assert c.covariate_coefficients["cupac_gmv"] == pytest.approx(
        fit.params[2 + agg.covariates.index("cupac_gmv")], rel=1e-7
    )


def _without_pre_period(data: dict[str, pa.Table]) -> dict[str, pa.Table]:
    out = dict(data)
    for name, column in (("orders", "created_at"), ("nps", "created_at")):
        t = data[name]
        out[name] = t.filter(pc.greater_equal(t[column], pa.scalar(START, t[column].type)))
    return out


def test_an_empty_pre_period_still_gets_a_useful_prediction(experiment_data, tmp_path):
    """No unit has a pre-period (no orders or answers before the start): the pre-period
    covariates are all zero and the regression on them (and on ``returning``: an order
    between the start and the unit's exposure) removes almost nothing, but CUPAC predicts
    from when each unit was first exposed (later, less time to order) and takes variance off."""
    wh = _connect(tmp_path)
    load(wh, _without_pre_period(experiment_data))
    try:
        plain = an.fetch_aggregates(wh, _query(cupac=False))
        with_cupac = an.fetch_aggregates(wh, _query())
    finally:
        wh.close()
    results = []
    for agg in (plain, with_cupac):
        arms = an.arm_stats(agg, "gmv", ("control", "treatment"), cuped=True)
        results.append(analyze(arms, metric_type="mean", covariates="regression").comparisons[0])
    assert set(plain.covariates) >= {"pre_gmv", "returning"}
    assert results[0].variance_reduction < 0.02
    assert results[1].variance_reduction > results[0].variance_reduction + 0.05
    assert np.isfinite(results[1].effect_size) and results[1].se > 0
    assert an.cupac_summary(with_cupac)["gmv"]["r2"] > 0.05


def test_cupac_needs_cuped():
    with pytest.raises(InvalidInput, match="cupac needs cuped") as err:
        an.Query("e", an.AnalysisWindow(START, END), ("gmv",), cuped=False, cupac=True)
    assert err.value.field == "cupac"


SPEC = """
name: checkout
variants: [control, treatment, {name: bold, weight: 0.5}]
primary_metric: orders
secondary_metrics: [gmv]
guardrails: [refund_rate]
cupac: true
start_date: 2024-06-01
end_date: 2024-06-14
"""


def test_cli_json_table_and_html_show_the_same_cupac_analysis(experiment_data, tmp_path):
    """``cupac: true`` in the definition: the JSON names the models and their out-of-fold R²,
    every metric's coefficients include the predictions, and the table and the HTML page say
    CUPAC is on and show the same R² and lift."""
    import json

    from typer.testing import CliRunner

    from tianping.cli.main import app
    from tianping.settings import Settings
    from tianping.warehouse import connect

    home = tmp_path / "home"
    wh = connect(Settings(home=home))
    load(wh, experiment_data)
    wh.close()
    (tmp_path / "exp.yaml").write_text(SPEC, encoding="utf-8")
    runner = CliRunner()
    base = ["--home", str(home), "experiment"]
    assert runner.invoke(app, [*base, "create", str(tmp_path / "exp.yaml")]).exit_code == 0
    out = runner.invoke(app, [*base, "analyze", "checkout", "--format", "json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    models = d["cupac"]["models"]
    assert set(models) == {"orders", "gmv", "refunded_orders"} and models["orders"]["folds"] == 2
    assert models["orders"]["training_units"] == sum(a["units"] for a in d["arms"]) + 3
    orders = d["metrics"][0]
    assert orders["covariates"] == "regression"
    assert "cupac_orders" in orders["comparisons"][0]["covariate_coefficients"]
    table = runner.invoke(app, [*base, "analyze", "checkout"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    r2 = f"orders (R² {models['orders']['r2']:.1%})"
    assert "CUPAC on" in table.output and r2 in " ".join(table.output.split())
    page = tmp_path / "r.html"
    html = runner.invoke(app, [*base, "analyze", "checkout", "--format", "html", "-o", str(page)])
    assert html.exit_code == 0, html.output
    text = page.read_text(encoding="utf-8")
    assert "CUPAC on" in text and r2 in text
    lift = orders["comparisons"][0]["rel_effect_size"]
    assert f"{lift:+.2%}" in text
    # a team sending the same sums as a summary document gets the same numbers
    document = tmp_path / "orders.json"
    document.write_text(json.dumps(_summary_document(home, "orders")), encoding="utf-8")
    out = runner.invoke(app, ["--home", str(home), "stats", "analyze", str(document)])
    assert out.exit_code == 0, out.output
    theirs, ours = json.loads(out.output)["comparisons"][0], orders["comparisons"][0]
    for key in ("rel_effect_size", "rel_effect_size_ci_lower", "rel_effect_size_ci_upper",
                "rel_pvalue", "covariate_coefficients"):  # fmt: skip
        assert theirs[key] == pytest.approx(ours[key], rel=1e-9), key


def _summary_document(home, metric: str) -> dict:
    """The summary JSON of ``metric``'s first two arms, from the experiment's own sums."""
    from dataclasses import asdict, replace

    from tianping.settings import Settings
    from tianping.warehouse import connect

    wh = connect(Settings(home=home))
    try:
        # the definition's metrics: the covariates are those of the features they sum
        q = an.Query("checkout", an.AnalysisWindow(START, END), ("orders", "gmv", "refund_rate"))
        agg = an.fetch_aggregates(wh, replace(q, cupac=True))
    finally:
        wh.close()
    arms = []
    for arm in an.arm_stats(agg, metric, ("control", "treatment"), cuped=True):
        fields = {k: v for k, v in asdict(arm).items() if v is not None}
        fields["covariates"] = {k: v for k, v in fields["covariates"].items() if v is not None}
        arms.append(fields)
    return {"metric_type": an.METRICS[metric].type, "covariates": "regression", "arms": arms}


def test_aa_splits_of_simulated_buyers_reject_at_alpha(tmp_path):
    """A/A on the simulator: the buyers of a simulated month, their CUPAC predictions computed
    once (the models never see the split: they learn without the treatment indicator), split
    at random 400 times; the regression with the predictions rejects at rate alpha and its
    intervals cover zero."""
    from datetime import date

    from scipy import stats

    from tianping.settings import Settings
    from tianping.simulate.scenario import parse_scenario
    from tianping.simulate.service import run_simulation
    from tianping.stats import ArmStats, CovariateSums
    from tianping.warehouse import connect

    arms = "[{name: control, weight: 0.5}, {name: treatment, weight: 0.5}]"
    text = f"name: aa\nexperiments:\n  - {{name: e0, kind: ab, start_day: 28, arms: {arms}}}\n"
    wh = connect(Settings(home=tmp_path))
    try:
        run_simulation(wh, buyers=20_000, days=56, seed=5, scenario=parse_scenario(text, "aa"))
        window = an.AnalysisWindow.from_dates(date(2024, 4, 29), date(2024, 5, 26))
        q = an.Query("e0", window, ("gmv",), cupac=True)
        rows, fits = cupac.with_predictions(wh, an.unit_table(wh, q), ("gmv",), units=20_000)
        frame = wh.execute(rows)
    finally:
        wh.close()
    assert fits[0].r2 > 0.01
    xs = an.covariate_columns(q, frame.columns)
    assert "cupac_gmv" in xs and "pre_gmv" in xs
    y, x = frame.gmv.to_numpy(float), frame[list(xs)].to_numpy(float)

    def arm(name, keep):
        yk, xk = y[keep], x[keep]
        c = CovariateSums(xs, tuple(xk.sum(0)), tuple(map(tuple, xk.T @ xk)), tuple(yk @ xk))
        return ArmStats(name, int(keep.sum()), yk.sum(), yk @ yk, covariates=c)

    rng = np.random.default_rng(8)
    rejected = covered = 0
    runs = 400
    for _ in range(runs):
        t = rng.random(y.size) < 0.5
        c = analyze([arm("a", ~t), arm("b", t)], metric_type="mean", covariates="regression")
        c = c.comparisons[0]
        rejected += c.rel_pvalue < 0.05
        covered += c.rel_effect_size_ci_lower <= 0 <= c.rel_effect_size_ci_upper
    low, high = stats.binomtest(rejected, runs).proportion_ci(0.99)
    assert low <= 0.05 <= high, rejected / runs
    assert 0.92 <= covered / runs <= 0.98


def test_too_few_units_fit_no_model_and_the_report_says_so(duck):
    from tianping.experiments.report import cupac_note

    q = _query()
    rows, fits = cupac.with_predictions(
        duck, an.unit_table(duck, q), OUTCOMES, units=1500, max_units=150
    )
    assert fits == () and not any(c.startswith("cupac_") for c in rows.columns)
    assert "too few units" in cupac_note({"cupac": {"models": {}}})
    assert cupac_note({"cupac": None}) is None
