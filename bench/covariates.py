"""Benchmark: the many-covariate adjustment (CUPED++) against the one-pass SQL floor.

Target (sharper experiments): analysing N units x 5 metrics (gmv, orders, conversion, aov,
refund_rate) with regression adjustment on every covariate — the pre-period gmv, orders,
refunded orders and conversion, and the unit attribute ``returning`` — costs at most 2x one
hand-written SQL pass computing the same sufficient statistics (every covariate's sum, their
cross products, and their products with every metric's value and denominator). Our side is
the whole path: the Ibis query, the fetch, and the statistics of the five metrics. The sums
are cross-checked against the hand SQL before anything is printed; the data are those of
``bench/experiment_analysis.py``.

python bench/covariates.py [--units N] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from experiment_analysis import _Y, END, METRICS, PRE, START, TYPES, UNITS_SQL, make_tables, race

from tianping.experiments import analysis as an
from tianping.settings import Settings
from tianping.stats import analyze
from tianping.warehouse import connect

# the unit table of experiment_analysis.py plus the declared attribute ``returning``
UNITS_X_SQL = f"""
WITH base AS ({UNITS_SQL.replace("SELECT u.variant,", "SELECT u.variant, u.unit_id, u.first_exposed,", 1)}),
firsts AS (SELECT buyer_id, min(created_at) AS first_order FROM orders
           WHERE created_at < TIMESTAMP '{END}' GROUP BY 1)
SELECT base.*, CAST(coalesce(f.first_order < base.first_exposed, false) AS DOUBLE) AS x_ret
FROM base LEFT JOIN firsts f ON f.buyer_id = base.unit_id
"""
XS = {"pre_converted": "x_c", "pre_gmv": "x_g", "pre_orders": "x_o",
      "pre_refunded_orders": "x_r", "returning": "x_ret"}  # fmt: skip
YS = {"gmv": "y_g", "orders": "y_o", "refunded_orders": "y_r", "converted": "y_c"}


def hand_sums() -> dict[str, str]:
    """Our sum name -> the SQL expression over the unit table, every sum once."""
    out = {"n": "count(*)"}
    for name, col in YS.items():
        out[name] = f"sum({col})"
        out[f"{name}*{name}"] = f"sum({col}*{col})"
    out["gmv*orders"] = "sum(y_g*y_o)"
    out["refunded_orders*orders"] = "sum(y_r*y_o)"
    xs = list(XS)
    for j, a in enumerate(xs):
        out[a] = f"sum({XS[a]})"
        for b in xs[j:]:
            out[f"{a}*{b}"] = f"sum({XS[a]}*{XS[b]})"
    for name, col in YS.items():
        for x in xs:
            out[f"{name}*{x}"] = f"sum({col}*{XS[x]})"
    return out


SUMS = hand_sums()
HAND_SQL = (
    f"WITH units AS ({UNITS_X_SQL}) SELECT variant, "
    + ", ".join(f'{e} AS "{k}"' for k, e in SUMS.items())
    + " FROM units GROUP BY variant ORDER BY variant"
)


#: The tight floor: units decided with MIN <> MAX, the orders before the end read once and
#: joined to the units once, the window, the pre-period and "ordered before exposure"
#: (``returning``) split by FILTER in one aggregate per unit, and units without orders left
#: out of the sums (they add zeros) while their count comes from the unit table.
TIGHT_X_SQL = f"""
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
         o.created_at >= u.first_exposed AS d,
         o.created_at >= TIMESTAMP '{PRE}' AND o.created_at < TIMESTAMP '{START}' AS p,
         o.created_at < u.first_exposed AS h
  FROM orders o JOIN u ON o.buyer_id = u.unit_id LEFT JOIN r ON r.order_id = o.order_id
  WHERE o.created_at < TIMESTAMP '{END}'
), per AS (
  SELECT variant, {", ".join(f"CAST(coalesce({e}, 0) AS DOUBLE) AS {k}" for k, e in _Y.items())},
         CAST(bool_or(h) AS DOUBLE) AS x_ret
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
    q = an.Query("bench", an.AnalysisWindow(START, END), METRICS)
    agg = an.fetch_aggregates(wh, q)
    arms = {m: an.arm_stats(agg, m, ("control", "treatment"), cuped=True) for m in METRICS}
    return agg, {
        m: analyze(a, metric_type=TYPES[m], covariates="regression") for m, a in arms.items()
    }


def check(agg, hand) -> None:
    assert agg.covariates == tuple(XS), agg.covariates
    mine = {r["variant"]: r for r in agg.rows}
    for row in hand:
        for k in SUMS:
            assert np.isclose(mine[row["variant"]][k], row[k], rtol=1e-9), (k, row["variant"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    wh = connect(Settings(home=tmp, warehouse=f"duckdb://{tmp / 'w.duckdb'}"))
    t = time.perf_counter()
    for name, table in make_tables(args.units).items():
        wh.append(name, table)
    print(f"generated and loaded {args.units:,} units in {time.perf_counter() - t:.0f}s")
    raw = wh.con.con
    wall, cpu, out = race(
        {
            "ours": lambda: ours(wh),
            "hand": lambda: raw.execute(HAND_SQL).df().to_dict("records"),
            "tight": lambda: raw.execute(TIGHT_X_SQL).df().to_dict("records"),
        },
        args.repeat,
    )
    (agg, results), hand = out["ours"], out["hand"]
    check(agg, hand)
    check(agg, out["tight"])
    print(f"{len(SUMS)} sums per arm; best of {args.repeat}, run round-robin")
    labels = {"ours": "tianping (query + statistics)", "hand": "plain SQL (sums)",
              "tight": "tight SQL floor (sums)"}  # fmt: skip
    for k, label in labels.items():
        print(f"{label:<34}{wall[k]:>8.2f} s wall{cpu[k]:>8.2f} s CPU")
    for k in ("hand", "tight"):
        print(f"ours / {labels[k]} = {wall['ours'] / wall[k]:.2f}x wall, "
              f"{cpu['ours'] / cpu[k]:.2f}x CPU (target <= 2x)")  # fmt: skip
    for m in ("gmv", "refund_rate"):
        c = results[m].comparisons[0]
        print(f"{m}: variance reduction {c.variance_reduction:.1%} "
              f"(coefficients {', '.join(f'{k} {v:.3g}' for k, v in c.covariate_coefficients.items())})")  # fmt: skip
    wh.close()


if __name__ == "__main__":
    main()
