"""Health gates and the rule's plan on the warehouse; the ship proposal the verdict makes."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from experiment_data import load, make_data
from scipy import stats

from tianping.experiments import health, service
from tianping.experiments.rule import HealthRule

YAML = """
name: checkout
variants: [{name: control}, {name: treatment}, {name: bold, weight: 0.5}]
primary_metric: orders
secondary_metrics: [gmv]
status: running
start_date: 2024-06-01
end_date: 2024-06-14
rule:
  success: [{metric: orders, min_effect: 0.3}]
  guardrails: [{metric: aov, margin: 0.5}]
  health: {dimensions: [channel, buyer_type]}
"""


def _with_channels(data, rng):
    """Orders get a channel (app or web) so units have a last channel before exposure."""
    orders = data["orders"]
    channel = rng.choice(np.array(["app", "web"]), orders.num_rows)
    return {**data, "orders": orders.append_column("channel", pa.array(channel))}


def _drop(data, mask_of, share, rng):
    """Drop ``share`` of the exposure rows that ``mask_of(exposures)`` selects."""
    ex = data["exposures"]
    mask = np.asarray(mask_of(ex)) & (rng.random(ex.num_rows) < share)
    return {**data, "exposures": ex.filter(pa.array(~mask))}


def _report(data, session, tmp_path):
    from tianping.settings import Settings
    from tianping.warehouse import connect

    wh = connect(Settings(home=tmp_path, warehouse=f"duckdb://{tmp_path / 'w.duckdb'}"))
    load(wh, data)
    service.create(service.load_yaml(YAML), session=session)
    try:
        return service.analyze_experiment("checkout", session=session, warehouse=wh).to_dict()
    finally:
        wh.close()


def _gate(report, name):
    return next(g for g in report["health"] if g["gate"] == name)


def test_a_healthy_experiment_passes_every_gate_and_its_gates_are_all_shown(session, tmp_path):
    rng = np.random.default_rng(3)
    report = _report(_with_channels(make_data(rng), rng), session, tmp_path)
    names = [g["gate"] for g in report["health"]]
    assert names == ["SRM", "SRM by day", "SRM by channel", "SRM by buyer_type",
                     "multiple exposure", "pre-period balance", "sample size", "novelty", "interactions"]  # fmt: skip
    status = {g["gate"]: g["status"] for g in report["health"]}
    assert status["SRM"] == status["SRM by day"] == status["SRM by channel"] == "pass"
    assert status["multiple exposure"] == "pass"  # 3 of 1,500 units
    assert _gate(report, "multiple exposure")["data"]["units"] == 3
    assert status["pre-period balance"] == "pass"
    # a unit's channel is that of its last order before exposure; "none" without one
    assert set(_gate(report, "SRM by channel")["data"]["pvalues"]) == {"app", "web", "none"}
    v = report["verdict"]
    said = f"ship {v['treatment']}" if v["verdict"] == "ship" else v["verdict"]
    assert report["recommendation"] == said and report["reasons"] == v["reasons"]
    by_day = _gate(report, "SRM by day")["data"]["pvalues"]
    assert min(by_day) >= "2024-06-01" and max(by_day) <= "2024-06-14"


def test_srm_planted_on_one_day_is_located_and_the_verdict_is_investigate(session, tmp_path):
    rng = np.random.default_rng(4)
    data = make_data(rng, n_units=3000)

    def on_day(ex):
        at = ex["exposed_at"].to_numpy().astype("datetime64[D]")
        treated = ex["variant"].to_numpy(zero_copy_only=False) == "treatment"
        return (at == np.datetime64("2024-06-05")) & treated

    report = _report(_drop(data, on_day, 0.8, rng), session, tmp_path)
    gate = _gate(report, "SRM by day")
    assert gate["status"] == "fail" and gate["data"]["located"] == ["2024-06-05"]
    assert report["recommendation"] == "investigate"
    assert any("2024-06-05" in r for r in report["reasons"])


def test_srm_planted_in_one_channel_is_located(session, tmp_path):
    rng = np.random.default_rng(5)
    data = _with_channels(make_data(rng, n_units=3000), rng)
    orders = data["orders"].to_pandas()
    ex = data["exposures"].to_pandas()
    first = ex.groupby("unit_id")["exposed_at"].min()
    prior = orders[orders["created_at"] < orders["buyer_id"].map(first)]
    last = prior.sort_values("created_at").groupby("buyer_id")["channel"].last()
    web = ex["unit_id"].map(last).eq("web").to_numpy()
    report = _report(
        _drop(data, lambda t: web & (t["variant"].to_numpy(zero_copy_only=False) == "treatment"),
              0.5, rng),
        session, tmp_path,
    )  # fmt: skip
    gate = _gate(report, "SRM by channel")
    assert gate["status"] == "fail" and gate["data"]["located"] == ["web"]
    assert report["verdict"]["verdict"] == "investigate"


def test_srm_by_value_equals_scipy_and_false_alarms_stay_rare():
    rng = np.random.default_rng(11)
    weights = (2.0, 2.0, 1.0)
    table = {f"d{i}": list(rng.multinomial(500, np.array(weights) / 5)) for i in range(28)}
    gate = health.srm_by_gate("day", table, weights, HealthRule())
    for value, counts in table.items():
        expected = np.array(weights) / 5 * sum(counts)
        assert gate.data["pvalues"][value] == pytest.approx(
            stats.chisquare(counts, expected).pvalue, rel=1e-9
        )
    alarms = 0
    for _ in range(400):
        table = {f"d{i}": list(rng.multinomial(500, np.array(weights) / 5)) for i in range(28)}
        alarms += health.srm_by_gate("day", table, weights, HealthRule()).status == "fail"
    assert alarms / 400 <= 0.01  # nominal 0.2 % (0.1 % located + 0.1 % combined)


def test_imbalance_and_novelty_gates_catch_what_is_planted():
    rule = HealthRule()
    rng = np.random.default_rng(12)

    def sums(x):
        return (len(x), float(x.sum()), float((x * x).sum()))

    c, t = rng.normal(10, 3, 5000), rng.normal(10.5, 3, 5000)  # arms differed before the start
    gate = health.imbalance_gate({"pre_gmv": [sums(c), sums(t)]}, ["control", "treatment"], rule)
    assert gate.status == "fail" and "pre_gmv in treatment" in gate.detail
    same = rng.normal(10, 3, 5000)
    assert health.imbalance_gate({"pre_gmv": [sums(c), sums(same)]}, ["control", "t"],
                                 rule).status == "pass"  # fmt: skip

    def weeks(y1, y2):
        d = y1 - y2
        return (len(d), float(y1.sum()), float(y2.sum()), float(d.sum()), float((d * d).sum()))

    n = 4000
    base1, base2 = rng.poisson(1.0, n).astype(float), rng.poisson(1.0, n).astype(float)
    novel1, novel2 = rng.poisson(1.4, n).astype(float), rng.poisson(1.0, n).astype(float)
    gate = health.novelty_gate("orders", ["control", "t"], [weeks(base1, base2),
                               weeks(novel1, novel2)], rule)  # fmt: skip
    assert gate.status == "warn" and gate.data["t"]["week1"] == pytest.approx(0.4, abs=0.08)
    steady1, steady2 = rng.poisson(1.2, n).astype(float), rng.poisson(1.2, n).astype(float)
    gate = health.novelty_gate("orders", ["control", "t"], [weeks(base1, base2),
                               weeks(steady1, steady2)], rule)  # fmt: skip
    assert gate.status == "pass"


def test_the_plan_reads_baselines_as_an_experiment_would(session, tmp_path):
    from tianping.experiments.planning import plan_experiment
    from tianping.settings import Settings
    from tianping.warehouse import connect

    rng = np.random.default_rng(6)
    data = make_data(rng)
    wh = connect(Settings(home=tmp_path, warehouse=f"duckdb://{tmp_path / 'w.duckdb'}"))
    load(wh, data)
    spec = service.load_yaml(YAML)
    out = plan_experiment(spec, spec.decision_rule(), wh, first=date(2024, 5, 18),
                          last=date(2024, 5, 31))  # fmt: skip
    # no activity table: the active buyers are those with an order in the window, each
    # counted from its first one, so orders per unit is every order of the window per buyer
    orders = data["orders"].to_pandas()
    window = orders[(orders.created_at >= "2024-05-18") & (orders.created_at < "2024-06-01")]
    per_buyer = window.groupby("buyer_id").size()
    b = out.baselines["orders"]
    assert b.mean == pytest.approx(per_buyer.mean(), rel=1e-9)
    assert b.sd == pytest.approx(per_buyer.std(ddof=1), rel=1e-9)
    assert out.plan.units == max(line.units for line in out.plan.lines)
    assert out.days is not None and out.days >= 1
    fixed = plan_experiment(spec, spec.decision_rule(), wh, first=date(2024, 5, 18),
                            last=date(2024, 5, 31), daily_units=100.0)  # fmt: skip
    assert fixed.days == -(-out.plan.units // 100)
    wh.close()


def test_overlapping_experiments_are_screened_for_interactions_on_both_reports(session, tmp_path):
    from tianping.experiments.assignment import ExperimentConfig, Variant, assign_batch
    from tianping.settings import Settings
    from tianping.warehouse import connect

    rng = np.random.default_rng(8)
    data = make_data(rng, n_units=3000)
    ex = data["exposures"].to_pandas().drop_duplicates("unit_id")
    banner = ExperimentConfig("banner", "banner", (Variant("hidden"), Variant("shown")))
    arm = assign_batch(banner, "banner", ex["unit_id"].to_numpy())
    second = pa.table({"experiment": ["banner"] * len(ex),
                       "variant": np.array(["hidden", "shown"])[arm], "unit_id": ex["unit_id"],
                       "exposed_at": ex["exposed_at"]})  # fmt: skip
    data["exposures"] = pa.concat_tables([data["exposures"], second.cast(data["exposures"].schema)])
    wh = connect(Settings(home=tmp_path, warehouse=f"duckdb://{tmp_path / 'w.duckdb'}"))
    load(wh, data)
    service.create(service.load_yaml(YAML), session=session)
    other = YAML.replace("name: checkout", "name: banner").replace(
        "variants: [{name: control}, {name: treatment}, {name: bold, weight: 0.5}]",
        "variants: [hidden, shown]")  # fmt: skip
    service.create(service.load_yaml(other), session=session)
    try:
        tests = service.interactions(session=session, warehouse=wh)
        first = service.analyze_experiment("checkout", session=session, warehouse=wh).to_dict()
        second_report = service.analyze_experiment("banner", session=session, warehouse=wh)
    finally:
        wh.close()
    assert [(t.first, t.second) for t in tests] == [("banner", "checkout")]  # once: symmetric
    assert first["interactions"] == second_report.to_dict()["interactions"]
    assert _gate(first, "interactions")["status"] in ("pass", "warn")
    # orders per unit by (banner's arm, checkout's arm), recomputed from the raw tables
    t = next(t for t in tests)
    orders = data["orders"].to_pandas()
    units = ex.set_index("unit_id")
    units["banner"] = np.array(["hidden", "shown"])[arm]
    multi = data["exposures"].to_pandas().query("experiment == 'checkout'").groupby("unit_id")
    single = multi["variant"].nunique() == 1
    units = units[single.reindex(units.index, fill_value=False)]
    mine = orders.merge(units[["exposed_at"]], left_on="buyer_id", right_index=True)
    mine = mine[(mine.created_at >= mine.exposed_at) & (mine.created_at < "2024-06-15")]
    units["y"] = mine.groupby("buyer_id").size().reindex(units.index, fill_value=0)
    m = units.groupby(["banner", "variant"])["y"].mean()  # banner's effect by checkout's arm
    tb, tc = t.contrast
    did = (m[tb, tc] - m["hidden", tc]) - (m[tb, "control"] - m["hidden", "control"])
    assert t.estimate == pytest.approx(did, rel=1e-9)


def test_health_queries_are_the_same_on_every_engine(warehouse, tmp_path):
    """Units by day and by channel, and the novelty sums, on DuckDB and Spark equal pandas."""
    from datetime import datetime

    from tianping.experiments import analysis as an

    rng = np.random.default_rng(9)
    data = _with_channels(make_data(rng, n_units=600), rng)
    load(warehouse, data)
    variants = ("control", "treatment", "bold")
    q = an.Query("checkout", an.AnalysisWindow(datetime(2024, 6, 1), datetime(2024, 6, 15)),
                 ("orders",), cuped=False)  # fmt: skip
    ex = data["exposures"].to_pandas()
    arms = ex.groupby("unit_id")["variant"].agg(["min", "max"])
    units = ex.groupby("unit_id")["exposed_at"].min().to_frame("first")
    units["variant"] = arms["min"].where(arms["min"] == arms["max"])
    units = units.dropna()
    by_day = units.groupby([units["first"].dt.date.astype(str), "variant"]).size()
    want = {d: [int(by_day.get((d, v), 0)) for v in variants]
            for d in sorted({d for d, _ in by_day.index})}  # fmt: skip
    assert an.exposure_counts(warehouse, q, "day", variants) == want
    orders = data["orders"].to_pandas()
    prior = orders.merge(units, left_on="buyer_id", right_index=True)
    prior = prior[prior.created_at < prior["first"]]
    last = prior.sort_values("created_at").groupby("buyer_id")["channel"].last()
    units["channel"] = last.reindex(units.index).fillna("none")
    by_channel = units.groupby(["channel", "variant"]).size()
    assert an.exposure_counts(warehouse, q, "channel", variants) == {
        c: [int(by_channel.get((c, v), 0)) for v in variants] for c in ("app", "none", "web")
    }
    followed, sums = an.novelty_sums(warehouse, q, "orders", variants)
    late = units[units["first"] + pd.Timedelta(days=14) <= pd.Timestamp("2024-06-15")]
    assert followed == "orders" and sum(s[0] for s in sums) == len(late)
    mine = orders.merge(late, left_on="buyer_id", right_index=True)
    days = (mine.created_at - mine["first"]) / pd.Timedelta(days=1)
    y1 = mine[(days >= 0) & (days < 7)].groupby("buyer_id").size().reindex(late.index, fill_value=0)
    y2 = (
        mine[(days >= 7) & (days < 14)].groupby("buyer_id").size().reindex(late.index, fill_value=0)
    )
    for v, (n, s1, s2, sd, sdd) in zip(variants, sums, strict=True):
        mask = late["variant"] == v
        d = (y1 - y2)[mask]
        assert (n, s1, s2, sd) == (mask.sum(), y1[mask].sum(), y2[mask].sum(), d.sum())
        assert sdd == pytest.approx(float((d * d).sum()))
