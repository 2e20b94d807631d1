"""Warehouse-native analysis: the grouped query against an independent pandas computation,
and the same numbers on DuckDB and Spark."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import timedelta

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from experiment_data import END, PRE_START, START, load

from tianping.experiments import analysis as an
from tianping.experiments.unit_metrics import METRICS

VARIANTS = ("control", "treatment", "bold")
ALL_METRICS = tuple(m for m, d in METRICS.items() if d.type != "quantile")


def _expected_units(data, *, cuped: bool = True) -> pd.DataFrame:
    """Per-unit features computed directly from the event rows, the slow obvious way."""
    ex = data["exposures"].to_pandas()
    ex = ex[(ex.experiment == "checkout") & (ex.exposed_at >= START) & (ex.exposed_at < END)]
    units = ex.groupby("unit_id").agg(
        first=("exposed_at", "min"), variant=("variant", "min"), k=("variant", "nunique")
    )
    units.loc[units.k > 1, "variant"] = an.MULTIPLE
    orders = data["orders"].to_pandas()
    orders["amount"] = orders.amount.astype(float)
    refunds = data["refunds"].to_pandas()
    refunds = refunds[refunds.requested_at < END]
    reviews = data["reviews"].to_pandas()
    reviews = reviews[reviews.created_at < END]
    orders["refunded"] = orders.order_id.isin(refunds.order_id).astype(int)
    orders["reviews"] = orders.order_id.map(reviews.groupby("order_id").size()).fillna(0)
    orders["rating_sum"] = orders.order_id.map(reviews.groupby("order_id").rating.sum()).fillna(0)
    nps = data["nps"].to_pandas()

    def features(o: pd.DataFrame, n: pd.DataFrame) -> pd.DataFrame:
        f = pd.DataFrame(index=units.index)
        g = o.groupby("buyer_id")
        f["orders"] = g.size()
        f["gmv"] = g.amount.sum()
        f["refunded_orders"] = g.refunded.sum()
        f["reviews"] = g.reviews.sum()
        f["rating_sum"] = g.rating_sum.sum()
        f["door_orders"] = g.delivery_mode.apply(lambda s: (s == "door").sum())
        f["moded_orders"] = g.delivery_mode.apply(lambda s: s.notna().sum())
        h = n.groupby("buyer_id")
        f["nps_responses"] = h.size()
        f["nps_score_sum"] = h.score.sum()
        f["nps_net"] = h.score.apply(lambda s: (s >= 9).sum() - (s <= 6).sum())
        f = f.fillna(0)
        f["converted"] = (f.orders > 0).astype(int)
        return f

    o = orders.merge(units, left_on="buyer_id", right_index=True)
    o = o[(o.created_at >= o["first"]) & (o.created_at < END)]
    n = nps.merge(units, left_on="buyer_id", right_index=True)
    n = n[(n.created_at >= n["first"]) & (n.created_at < END)]
    during = features(o, n)
    pre = features(
        orders[(orders.created_at >= PRE_START) & (orders.created_at < START)],
        nps[(nps.created_at >= PRE_START) & (nps.created_at < START)],
    ).add_prefix("pre_")
    return units.join(during).join(pre)


def _expected_sums(units: pd.DataFrame, metric: str, variant: str) -> dict[str, float]:
    m = METRICS[metric]
    u = units[units.variant == variant]
    y, x = u[m.numerator], u[f"pre_{m.numerator}"]
    out = {
        "n": len(u),
        "sum": y.sum(),
        "sum_sq": (y * y).sum(),
        "pre_sum": x.sum(),
        "pre_sum_sq": (x * x).sum(),
        "pre_cross_sum": (y * x).sum(),
    }
    if m.denominator:
        d = u[m.denominator]
        out |= {
            "den_sum": d.sum(),
            "den_sum_sq": (d * d).sum(),
            "num_den_sum": (y * d).sum(),
            "pre_den_cross_sum": (d * x).sum(),
        }
    return out


@pytest.fixture(scope="module")
def loaded(experiment_data, tmp_path_factory):
    from tianping.settings import Settings
    from tianping.warehouse import connect

    path = tmp_path_factory.mktemp("wh") / "w.duckdb"
    wh = connect(Settings(home=path.parent, warehouse=f"duckdb://{path}"))
    load(wh, experiment_data)
    yield wh
    wh.close()


def _query(**kw) -> an.Query:
    return an.Query("checkout", an.AnalysisWindow(START, END), ALL_METRICS, **kw)


def test_only_one_grouped_row_per_arm_reaches_python(loaded):
    agg = an.fetch_aggregates(loaded, _query())
    assert sorted(r["variant"] for r in agg.rows) == sorted([*VARIANTS, an.MULTIPLE])


def test_a_query_for_fewer_metrics_skips_joins_but_not_numbers(loaded):
    """Refunds, reviews and NPS are joined only when a metric needs them."""
    full = an.fetch_aggregates(loaded, _query(cuped=True))
    for metrics in (("gmv", "conversion"), ("refund_rate",), ("nps", "aov")):
        q = an.Query("checkout", an.AnalysisWindow(START, END), metrics, cuped=True)
        sql = str(ibis.to_sql(an.stats_query(loaded, q)))
        read = re.findall(r'(?:FROM|JOIN) "(\w+)" AS', sql)
        tables = {t for t in read if not re.fullmatch(r"t\d+", t)}  # not ibis' CTE names
        assert tables == {"exposures", "orders"} | (
            {"refunds"} if "refund_rate" in metrics else set()
        ) | ({"nps"} if "nps" in metrics else set()), tables
        some = an.fetch_aggregates(loaded, q)
        for m in metrics:
            for a, b in zip(
                an.arm_stats(some, m, VARIANTS, cuped=True),
                an.arm_stats(full, m, VARIANTS, cuped=True),
                strict=True,
            ):
                for k, v in asdict(b).items():
                    if k == "covariates":  # each query's covariates are its metrics' own
                        continue
                    got = getattr(a, k)
                    assert got == (v if v is None or isinstance(v, str) else pytest.approx(v)), m


def test_winsorisation_caps_at_the_engine_quantile(loaded, experiment_data):
    agg = an.fetch_aggregates(loaded, _query(cuped=False, winsorize=0.9))
    units = _expected_units(experiment_data)
    cap = np.quantile(units.gmv, 0.9)  # linear interpolation, as quantile_cont/percentile
    capped = units.gmv.clip(upper=cap)
    for arm in an.arm_stats(agg, "gmv", VARIANTS, cuped=False):
        sel = units.variant == arm.name
        assert arm.sum == pytest.approx(capped[sel].sum(), rel=1e-9)
        assert arm.sum_sq == pytest.approx((capped[sel] ** 2).sum(), rel=1e-9)
    conv = an.arm_stats(agg, "conversion", VARIANTS, cuped=False)[0]
    assert conv.sum == units[units.variant == "control"].converted.sum()  # 0/1 never capped


def test_slices_by_buyer_type_partition_the_units(loaded, experiment_data):
    q = an.Query("checkout", an.AnalysisWindow(START, END), ("orders",), slice_by="buyer_type")
    agg = an.fetch_aggregates(loaded, q)
    assert an.slices_of(agg) == ["new", "returning"]
    whole = an.fetch_aggregates(
        loaded, an.Query("checkout", an.AnalysisWindow(START, END), ("orders",))
    )
    for v in VARIANTS:
        parts = [
            an.arm_stats(agg, "orders", [v], cuped=True, slice_value=s)[0]
            for s in ("new", "returning")
        ]
        total = an.arm_stats(whole, "orders", [v], cuped=True)[0]
        assert sum(p.n for p in parts) == total.n
        assert sum(p.sum for p in parts) == pytest.approx(total.sum)


def test_order_column_slices_count_every_unit_and_split_the_sums(loaded, experiment_data):
    q = an.Query("checkout", an.AnalysisWindow(START, END), ("gmv", "aov"), slice_by="category")
    agg = an.fetch_aggregates(loaded, q)
    whole = an.fetch_aggregates(
        loaded, an.Query("checkout", an.AnalysisWindow(START, END), ("gmv",))
    )
    assert an.slices_of(agg) == ["books", "food", "toys"]
    for v in VARIANTS:
        total = an.arm_stats(whole, "gmv", [v], cuped=True)[0]
        parts = [
            an.arm_stats(agg, "gmv", [v], cuped=True, slice_value=s)[0]
            for s in ("books", "food", "toys")
        ]
        assert all(p.n == total.n for p in parts)
        assert sum(p.sum for p in parts) == pytest.approx(total.sum)
        assert sum(p.pre_sum for p in parts) == pytest.approx(total.pre_sum)


def test_a_query_of_quantile_metrics_only(loaded):
    q = an.Query("checkout", an.AnalysisWindow(START, END), ("order_value_median",))
    agg = an.fetch_aggregates(loaded, q)
    arms = an.arm_stats(agg, "order_value_median", VARIANTS, cuped=True)
    assert [a.name for a in arms] == list(VARIANTS) and all(a.n > 100 for a in arms)
    assert agg.covariates == ("pre_converted", "pre_orders", "returning")


def test_bad_queries_are_rejected():
    from tianping.errors import InvalidInput

    with pytest.raises(InvalidInput, match="unknown metric"):
        an.Query("x", an.AnalysisWindow(START, END), ("happiness",))
    with pytest.raises(InvalidInput, match="cannot slice"):
        an.Query("x", an.AnalysisWindow(START, END), ("gmv",), slice_by="colour")
    with pytest.raises(InvalidInput, match="winsorize"):
        an.Query("x", an.AnalysisWindow(START, END), ("gmv",), winsorize=1.5)


def _report(wh, session_factory):
    from tianping.experiments import service

    with session_factory() as session:
        rep = service.analyze_experiment(
            "checkout", session=session, warehouse=wh, slice_by="category"
        )
    return rep.to_dict()


def _same(a, b, path="report"):
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-7, abs=1e-12), path
    else:
        assert a == b, path


def test_every_engine_matches_pandas_and_gives_the_duckdb_report(
    warehouse, loaded, experiment_data, tmp_path
):
    """The one grouped query on each engine (DuckDB and Spark via the ``warehouse`` fixture)
    equals an independent pandas computation, and the whole report (CUPED, winsorised,
    sliced by category) equals the one computed on DuckDB."""
    from tianping.experiments import service
    from tianping.store import init_schema, make_engine, make_sessionmaker

    load(warehouse, experiment_data)
    agg = an.fetch_aggregates(warehouse, _query(cuped=True))
    units = _expected_units(experiment_data)
    for metric in ALL_METRICS:
        for arm in an.arm_stats(agg, metric, VARIANTS, cuped=True):
            expected = _expected_sums(units, metric, arm.name)
            got = {k: getattr(arm, k) for k in expected}
            assert got == pytest.approx(expected, rel=1e-9), (warehouse.kind, metric, arm.name)
    engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    init_schema(engine)
    factory = make_sessionmaker(engine)
    with factory() as session:
        service.create(service.load_yaml(SPEC), session=session)
        session.commit()
    reference, report = (_report(wh, factory) for wh in (loaded, warehouse))
    _same(reference, report)
    # the A/A tool's unit values (activity or orders in the window) agree as well
    from tianping.experiments.aa import unit_values

    window = an.AnalysisWindow(START, END)
    ids, y, d = unit_values(warehouse, "aov", window)
    ref_ids, ref_y, ref_d = unit_values(loaded, "aov", window)
    assert ids.tolist() == ref_ids.tolist() and len(ids) > 1000
    assert y == pytest.approx(ref_y) and d == pytest.approx(ref_d)
    assert report["arms"][0]["units"] > 0 and report["slices"]["by"] == "category"
    engine.dispose()


SPEC = """
name: checkout
variants: [control, treatment, {name: bold, weight: 0.5}]
primary_metric: orders
secondary_metrics: [gmv, conversion, aov, nps_score]
winsorize: 0.95
start_date: 2024-06-01
end_date: 2024-06-14
"""


def test_covariate_sums_and_quantiles_match_pandas_on_every_engine(warehouse, experiment_data):
    """The covariate cross products (CUPED++) and the quantile arms (Woodruff ranks, clustered
    sums) from the engine equal a direct pandas computation, on DuckDB and Spark alike."""
    from tianping.stats import woodruff_ranks

    load(warehouse, experiment_data)
    metrics = ("gmv", "refund_rate", "order_value_p90", "order_value_median")
    q = an.Query("checkout", an.AnalysisWindow(START, END), metrics)
    agg = an.fetch_aggregates(warehouse, q)
    units = _expected_units(experiment_data)
    orders = experiment_data["orders"].to_pandas()
    first_order = orders.groupby("buyer_id").created_at.min()
    units["returning"] = (units.index.map(first_order) < units["first"]).astype(float)
    xs = ("pre_converted", "pre_gmv", "pre_orders", "pre_refunded_orders", "returning")
    assert agg.covariates == xs
    for arm in an.arm_stats(agg, "refund_rate", VARIANTS, cuped=True):
        u = units[units.variant == arm.name]
        x, y, d = u[list(xs)].to_numpy(float), u.refunded_orders.to_numpy(), u.orders.to_numpy()
        c = arm.covariates
        assert np.array(c.cross) == pytest.approx(x.T @ x, rel=1e-9)
        assert np.array(c.y_cross) == pytest.approx(y @ x, rel=1e-9)
        assert np.array(c.den_cross) == pytest.approx(d @ x, rel=1e-9)
        assert np.array(c.sum) == pytest.approx(x.sum(axis=0), rel=1e-9)
    o = orders.merge(units[["first", "variant"]], left_on="buyer_id", right_index=True)
    o = o[(o.created_at >= o["first"]) & (o.created_at < END)]
    for metric, level in (("order_value_p90", 0.9), ("order_value_median", 0.5)):
        for arm in an.arm_stats(agg, metric, VARIANTS, cuped=True):
            ev = o[o.variant == arm.name].assign(value=lambda t: t.amount.astype(float))
            ev = ev.sort_values(["value", "buyer_id"], kind="stable").reset_index(drop=True)
            lo, k, hi = woodruff_ranks(len(ev), level)
            assert (arm.n, arm.units) == (len(ev), ev.buyer_id.nunique())
            assert [arm.quantile_lower, arm.quantile, arm.quantile_upper] == pytest.approx(
                [ev.value[lo - 1], ev.value[k - 1], ev.value[hi - 1]]
            )
            per_unit = ev.assign(below=(ev.index < k).astype(float)).groupby("buyer_id")
            below, events = per_unit.below.sum(), per_unit.size().astype(float)
            assert arm.below_sum == pytest.approx(below.sum())
            assert arm.below_sum_sq == pytest.approx((below * below).sum())
            assert arm.events_sum_sq == pytest.approx((events * events).sum())
            assert arm.below_events_sum == pytest.approx((below * events).sum())


def test_sums_over_units_with_orders_only_equal_the_sums_over_every_unit(
    warehouse, experiment_data
):
    """Where the query allows it, units without orders are left out of the sums and ``n``
    comes from the units: the same numbers as joining every unit to its features, on every
    engine, including an arm none of whose units ever ordered (its sums are zeros)."""
    ghosts = pa.table(
        {
            "experiment": ["checkout"] * 40,
            "variant": ["ghost"] * 40,
            "unit_id": [f"ghost{i}" for i in range(40)],
            "exposed_at": pa.array(
                [START + timedelta(hours=i) for i in range(40)], pa.timestamp("us")
            ),
        }
    )
    exposures = experiment_data["exposures"]
    data = {
        **experiment_data,
        "exposures": pa.concat_tables([exposures, ghosts.cast(exposures.schema)]),
    }
    load(warehouse, data)
    window = an.AnalysisWindow(START, END)
    order_metrics = ("gmv", "orders", "conversion", "aov", "refund_rate")
    for kw in ({}, {"cuped": False}, {"covariates": False}):
        q = an.Query("checkout", window, order_metrics, **kw)
        assert an._sparse(q)
        sparse = warehouse.execute(an.stats_query(warehouse, q))
        dense = warehouse.execute(an._grouped(q, an._prepared(warehouse, q)))
        sparse = sparse.sort_values("variant").reset_index(drop=True)
        dense = dense.sort_values("variant").reset_index(drop=True)
        assert list(sparse.columns) == list(dense.columns)
        assert sparse.variant.tolist() == sorted([*VARIANTS, an.MULTIPLE, "ghost"])
        ghost = sparse[sparse.variant == "ghost"].iloc[0]
        assert ghost.n == 40 and ghost.drop(["variant", "slice", "n"]).astype(float).eq(0).all()
        pd.testing.assert_frame_equal(sparse, dense, check_dtype=False, rtol=1e-12)
    for kw in ({"winsorize": 0.95}, {"slice_by": "buyer_type"}, {"cupac": True}):
        assert not an._sparse(an.Query("checkout", window, order_metrics, **kw))
    assert not an._sparse(an.Query("checkout", window, ("nps",)))
