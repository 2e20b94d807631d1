"""Benchmark: warehouse-native experiment analysis against hand-written SQL and tea-tasting.

Target: analysing 2M and 10M units x 5 metrics (gmv, orders, conversion, aov, refund_rate;
CUPED on, so every metric also needs pre-period sums and cross-products) on DuckDB costs at
most 1.2x the tightest hand-written SQL pass computing the same sufficient statistics (the
floor); the fixed cost of a call (building and compiling the Ibis expression) and our SQL
alone are printed beside it. A plainer hand-written SQL is raced too. tea-tasting
1.14.0 analyses the same DuckDB data in the same run: it is given the unit-level table
(an Ibis view over the same tables) and the same five metrics with the same covariates.

All three contenders answer the same question end to end from the event tables; the numbers
are cross-checked before anything is printed. Run:
python bench/experiment_analysis.py [--units N] [--quick]   (--quick: 1M units)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import tea_tasting as tt
from _data import money

from tianping.events.schema import TABLES
from tianping.experiments import analysis as an
from tianping.experiments.assignment import ExperimentConfig, Variant, assign_batch
from tianping.settings import Settings
from tianping.stats import analyze
from tianping.warehouse import connect
from tianping.warehouse.backend import arrow_schema

START, END = datetime(2024, 6, 1), datetime(2024, 6, 15)
PRE = START - (END - START)
METRICS = ("gmv", "orders", "conversion", "aov", "refund_rate")
TYPES = {"gmv": "mean", "orders": "mean", "conversion": "proportion", "aov": "ratio"}
TYPES["refund_rate"] = "ratio"
US = 1_000_000


def _times(rng, lo: datetime, span: timedelta, n: int) -> np.ndarray:
    base = np.datetime64(lo, "us")
    return base + rng.integers(0, int(span.total_seconds() * US), n).astype("timedelta64[us]")


def make_tables(units: int, seed: int = 11, offset: int = 0) -> dict[str, pa.Table]:
    """Exposures (10% of units seen twice), orders before and after exposure, refunds.
    ``offset`` numbers units, orders and refunds from there (so big tables come in chunks)."""
    rng = np.random.default_rng(seed)
    ids = np.char.add("u", np.arange(offset, offset + units).astype(str))
    config = ExperimentConfig("bench", "bench", (Variant("control"), Variant("treatment")))
    arm = assign_batch(config, "bench", ids)
    exposed = _times(rng, START, timedelta(days=10), units)
    again = np.flatnonzero(rng.random(units) < 0.1)
    names = np.array(["control", "treatment"])
    exposures = pa.table(
        {
            "experiment": pa.array(np.full(units + again.size, "bench")),
            "variant": pa.array(names[np.r_[arm, arm[again]]]),
            "unit_id": pa.array(np.r_[ids, ids[again]]),
            "exposed_at": pa.array(
                np.r_[exposed, exposed[again] + np.timedelta64(3600 * US, "us")]
            ),
        }
    )
    taste = rng.gamma(1.5, 0.4, units)
    pre_n = rng.poisson(taste)
    post_n = rng.poisson(taste * np.where(arm == 1, 1.05, 1.0))
    buyer = np.r_[np.repeat(np.arange(units), pre_n), np.repeat(np.arange(units), post_n)]
    created = np.r_[
        _times(rng, PRE, END - START, int(pre_n.sum())),
        np.repeat(exposed, post_n)
        + rng.integers(0, 6 * 86400 * US, int(post_n.sum())).astype("timedelta64[us]"),
    ]
    n = buyer.size
    cents = np.round(rng.lognormal(8.5, 0.9, n)).astype(np.int64)
    order_ids = np.char.add(f"o{offset}-", np.arange(n).astype(str))
    schema = arrow_schema(TABLES["orders"])
    orders = {
        "order_id": pa.array(order_ids),
        "buyer_id": pa.array(ids[buyer]),
        "amount": money(cents),
        "created_at": pa.array(created),
    }
    orders = pa.table({f.name: orders.get(f.name, pa.nulls(n, f.type)) for f in schema}).cast(
        schema
    )
    pick = np.flatnonzero(rng.random(n) < 0.1)
    refunds = {
        "refund_id": pa.array(np.char.add(f"r{offset}-", np.arange(pick.size).astype(str))),
        "order_id": pa.array(order_ids[pick]),
        "requested_at": pa.array(created[pick] + np.timedelta64(86400 * US, "us")),
        "reason": pa.array(np.full(pick.size, "quality")),
        "requested_amount": money(cents[pick]),
    }
    rschema = arrow_schema(TABLES["refunds"])
    refunds = pa.table(
        {f.name: refunds.get(f.name, pa.nulls(pick.size, f.type)) for f in rschema}
    ).cast(rschema)
    empty = {
        name: arrow_schema(TABLES[name]).empty_table() for name in ("reviews", "nps", "activity")
    }
    return {"exposures": exposures, "orders": orders, "refunds": refunds, **empty}


UNITS_SQL = f"""
WITH u AS (
  SELECT unit_id, min(exposed_at) AS first_exposed,
         CASE WHEN count(DISTINCT variant) > 1 THEN '__multiple__' ELSE min(variant) END AS variant
  FROM exposures
  WHERE experiment = 'bench' AND exposed_at >= TIMESTAMP '{START}' AND exposed_at < TIMESTAMP '{END}'
  GROUP BY unit_id
), r AS (
  SELECT DISTINCT order_id FROM refunds WHERE requested_at < TIMESTAMP '{END}'
), o AS (
  SELECT o.buyer_id, o.created_at, CAST(o.amount AS DOUBLE) AS amount,
         CAST(r.order_id IS NOT NULL AS BIGINT) AS refunded
  FROM orders o LEFT JOIN r USING (order_id)
), during AS (
  SELECT o.buyer_id, count(*) AS orders, sum(amount) AS gmv, sum(refunded) AS refunded
  FROM o JOIN u ON o.buyer_id = u.unit_id
  WHERE o.created_at >= u.first_exposed AND o.created_at < TIMESTAMP '{END}'
  GROUP BY 1
), pre AS (
  SELECT buyer_id, count(*) AS orders, sum(amount) AS gmv, sum(refunded) AS refunded
  FROM o WHERE created_at >= TIMESTAMP '{PRE}' AND created_at < TIMESTAMP '{START}'
  GROUP BY 1
)
SELECT u.variant,
  CAST(coalesce(d.gmv, 0) AS DOUBLE) AS y_g, CAST(coalesce(d.orders, 0) AS DOUBLE) AS y_o,
  CAST(coalesce(d.refunded, 0) AS DOUBLE) AS y_r, CAST(coalesce(d.orders, 0) > 0 AS DOUBLE) AS y_c,
  CAST(coalesce(p.gmv, 0) AS DOUBLE) AS x_g, CAST(coalesce(p.orders, 0) AS DOUBLE) AS x_o,
  CAST(coalesce(p.refunded, 0) AS DOUBLE) AS x_r, CAST(coalesce(p.orders, 0) > 0 AS DOUBLE) AS x_c
FROM u LEFT JOIN during d ON d.buyer_id = u.unit_id LEFT JOIN pre p ON p.buyer_id = u.unit_id
"""

SUMS = {  # column -> expression over the unit table: what our query also returns
    "n": "count(*)",
    "gmv": "sum(y_g)", "gmv*gmv": "sum(y_g*y_g)", "pre_gmv": "sum(x_g)",
    "pre_gmv*pre_gmv": "sum(x_g*x_g)", "gmv*pre_gmv": "sum(y_g*x_g)",
    "orders": "sum(y_o)", "orders*orders": "sum(y_o*y_o)", "pre_orders": "sum(x_o)",
    "pre_orders*pre_orders": "sum(x_o*x_o)", "orders*pre_orders": "sum(y_o*x_o)",
    "converted": "sum(y_c)", "converted*converted": "sum(y_c*y_c)",
    "pre_converted": "sum(x_c)", "pre_converted*pre_converted": "sum(x_c*x_c)",
    "converted*pre_converted": "sum(y_c*x_c)",
    "gmv*orders": "sum(y_g*y_o)", "orders*pre_gmv": "sum(y_o*x_g)",
    "refunded_orders": "sum(y_r)", "refunded_orders*refunded_orders": "sum(y_r*y_r)",
    "pre_refunded_orders": "sum(x_r)",
    "pre_refunded_orders*pre_refunded_orders": "sum(x_r*x_r)",
    "refunded_orders*pre_refunded_orders": "sum(y_r*x_r)",
    "refunded_orders*orders": "sum(y_r*y_o)", "orders*pre_refunded_orders": "sum(y_o*x_r)",
}  # fmt: skip
HAND_SQL = (
    f"WITH units AS ({UNITS_SQL}) SELECT variant, "
    + ", ".join(f'{e} AS "{k}"' for k, e in SUMS.items())
    + " FROM units GROUP BY variant ORDER BY variant"
)


#: The fastest honest SQL for the same sums (the floor): units decided with MIN <> MAX, the
#: orders of [pre-start, end) read once and joined to the units once, during and pre-period
#: split by FILTER in the same aggregate, and units without orders left out of the sums (they
#: add zeros) while their count comes from the unit table.
_Y = {"y_g": "sum(amount) FILTER (WHERE d)", "y_o": "count(*) FILTER (WHERE d)",
      "y_r": "count(order_id) FILTER (WHERE d)", "x_g": "sum(amount) FILTER (WHERE p)",
      "x_o": "count(*) FILTER (WHERE p)", "x_r": "count(order_id) FILTER (WHERE p)"}  # fmt: skip
TIGHT_SQL = f"""
WITH u AS (
  SELECT unit_id, min(exposed_at) AS first_exposed,
         CASE WHEN min(variant) <> max(variant) THEN '__multiple__' ELSE min(variant) END AS variant
  FROM exposures
  WHERE experiment = 'bench' AND exposed_at >= TIMESTAMP '{START}' AND exposed_at < TIMESTAMP '{END}'
  GROUP BY unit_id
), r AS (
  SELECT DISTINCT order_id FROM refunds WHERE requested_at < TIMESTAMP '{END}'
), j AS (
  SELECT u.unit_id, u.variant, r.order_id, CAST(o.amount AS DOUBLE) AS amount,
         o.created_at >= u.first_exposed AS d, o.created_at < TIMESTAMP '{START}' AS p
  FROM orders o JOIN u ON o.buyer_id = u.unit_id LEFT JOIN r ON r.order_id = o.order_id
  WHERE o.created_at >= TIMESTAMP '{PRE}' AND o.created_at < TIMESTAMP '{END}'
), per AS (
  SELECT variant, {", ".join(f"CAST(coalesce({e}, 0) AS DOUBLE) AS {k}" for k, e in _Y.items())}
  FROM j GROUP BY unit_id, variant
), units AS (
  SELECT *, CAST(y_o > 0 AS DOUBLE) AS y_c, CAST(x_o > 0 AS DOUBLE) AS x_c FROM per
), sums AS (
  SELECT variant, {", ".join(f'{e} AS "{k}"' for k, e in SUMS.items() if k != "n")}
  FROM units GROUP BY variant
), n AS (SELECT variant, count(*) AS n FROM u GROUP BY variant)
SELECT n.variant, n.n AS "n", {", ".join(f'coalesce(sums."{k}", 0) AS "{k}"' for k in SUMS if k != "n")}
FROM n LEFT JOIN sums USING (variant) ORDER BY n.variant
"""


def ours(wh):
    """Our whole path: the one grouped query, then the statistics of the five metrics."""
    q = an.Query("bench", an.AnalysisWindow(START, END), METRICS, cuped=True, covariates=False)
    agg = an.fetch_aggregates(wh, q)
    arms = {m: an.arm_stats(agg, m, ("control", "treatment"), cuped=True) for m in METRICS}
    results = {m: analyze(a, metric_type=TYPES[m], cuped=True) for m, a in arms.items()}
    return agg, results


def tea(wh):
    data = wh.con.sql(UNITS_SQL).filter(lambda t: t.variant != an.MULTIPLE)
    experiment = tt.Experiment(
        gmv=tt.Mean("y_g", covariate="x_g"),
        orders=tt.Mean("y_o", covariate="x_o"),
        conversion=tt.Mean("y_c", covariate="x_c"),
        aov=tt.RatioOfMeans("y_g", "y_o", numer_covariate="x_g"),
        refund_rate=tt.RatioOfMeans("y_r", "y_o", numer_covariate="x_r"),
    )
    return experiment.analyze(data, control="control")


def race(contenders: dict, repeat: int) -> tuple[dict, dict, dict]:
    """Run the contenders round-robin ``repeat`` times (so a change in the machine's load
    hits all of them alike); best wall-clock and best CPU seconds (all threads) of each."""
    wall = dict.fromkeys(contenders, float("inf"))
    cpu = dict.fromkeys(contenders, float("inf"))
    out = {}
    for _ in range(repeat):
        for name, fn in contenders.items():
            t, c = time.perf_counter(), time.process_time()
            out[name] = fn()
            wall[name] = min(wall[name], time.perf_counter() - t)
            cpu[name] = min(cpu[name], time.process_time() - c)
    return wall, cpu, out


def check(agg, hand, results, tea_result) -> None:
    """Same sums as the hand SQL; same effects as tea-tasting (up to its degrees of freedom)."""
    by_variant = {r["variant"]: r for r in agg.rows}
    for row in hand:
        mine = by_variant[row["variant"]]
        for k in SUMS:
            assert np.isclose(mine[k], row[k], rtol=1e-9), (row["variant"], k, mine[k], row[k])
    for m in METRICS:
        c, ref = results[m].comparisons[0], tea_result[m]
        assert np.isclose(c.effect_size, ref.effect_size, rtol=1e-6), m
        assert np.isclose(c.pvalue, ref.pvalue, rtol=1e-3, atol=1e-6), (m, c.pvalue, ref.pvalue)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=10_000_000)
    ap.add_argument("--quick", action="store_true", help="1M units")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    units = 1_000_000 if args.quick else args.units
    tmp = Path(tempfile.mkdtemp())
    wh = connect(Settings(home=tmp, warehouse=f"duckdb://{tmp / 'w.duckdb'}"))
    t = time.perf_counter()
    for name, table in make_tables(units).items():
        wh.append(name, table)
    orders = wh.row_count("orders")
    print(
        f"generated and loaded {units:,} units, {orders:,} orders in {time.perf_counter() - t:.0f}s"
    )
    raw = wh.con.con
    query = an.Query("bench", an.AnalysisWindow(START, END), METRICS, cuped=True, covariates=False)
    our_sql = wh.con.compile(an.stats_query(wh, query))
    wall, cpu, out = race(
        {
            "ours": lambda: ours(wh),
            "ours_sql": lambda: raw.execute(our_sql).fetchall(),
            "fixed": lambda: wh.con.compile(an.stats_query(wh, query)),
            "tight": lambda: raw.execute(TIGHT_SQL).df().to_dict("records"),
            "hand": lambda: raw.execute(HAND_SQL).df().to_dict("records"),
            "tea": lambda: tea(wh),
        },
        args.repeat,
    )
    (agg, results), hand, tea_result = out["ours"], out["hand"], out["tea"]
    check(agg, hand, results, tea_result)
    check(agg, out["tight"], results, tea_result)
    labels = {
        "ours": "tianping (query + statistics)",
        "ours_sql": "tianping's SQL alone (compiled before)",
        "fixed": "tianping's fixed cost: build + compile",
        "tight": "tight SQL floor (sums only)",
        "hand": "plain SQL (sums only)",
        "tea": "tea-tasting 1.14.0 (same unit view)",
    }
    print(
        f"{'contender (5 metrics, CUPED, DuckDB)':<40}{'wall s':>8}{'ratio':>7}{'CPU s':>8}{'ratio':>7}"
    )
    for k, label in labels.items():
        print(
            f"{label:<40}{wall[k]:>8.2f}{wall[k] / wall['ours']:>7.2f}"
            f"{cpu[k]:>8.2f}{cpu[k] / cpu['ours']:>7.2f}"
        )
    print(
        f"ours / tight SQL floor = {wall['ours'] / wall['tight']:.2f}x wall, "
        f"{cpu['ours'] / cpu['tight']:.2f}x CPU (target <= 1.2x); "
        f"its SQL alone = {wall['ours_sql'] / wall['tight']:.2f}x wall; "
        f"fixed cost per call {wall['fixed'] * 1000:.0f} ms; "
        f"ours / plain SQL = {wall['ours'] / wall['hand']:.2f}x wall; "
        f"ours / tea-tasting = {wall['ours'] / wall['tea']:.2f}x wall, "
        f"{cpu['ours'] / cpu['tea']:.2f}x CPU"
    )
    lift = results["orders"].comparisons[0]
    print(f"(orders per unit: true lift +5%, estimated {lift.rel_effect_size:+.2%}, CUPED "
          f"variance reduction {lift.variance_reduction:.0%})")  # fmt: skip
    wh.close()


if __name__ == "__main__":
    main()
