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
from experiment_analysis import END, METRICS, START, TYPES, UNITS_SQL, make_tables, race

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
        {"ours": lambda: ours(wh), "hand": lambda: raw.execute(HAND_SQL).df().to_dict("records")},
        args.repeat,
    )
    (agg, results), hand = out["ours"], out["hand"]
    check(agg, hand)
    print(f"{len(SUMS)} sums per arm; best of {args.repeat}, run round-robin")
    for k, label in (("ours", "tianping (query + statistics)"), ("hand", "hand SQL (sums)")):
        print(f"{label:<34}{wall[k]:>8.2f} s wall{cpu[k]:>8.2f} s CPU")
    print(f"ours / one-pass SQL floor = {wall['ours'] / wall['hand']:.2f}x wall, "
          f"{cpu['ours'] / cpu['hand']:.2f}x CPU (target <= 2x)")  # fmt: skip
    for m in ("gmv", "refund_rate"):
        c = results[m].comparisons[0]
        print(f"{m}: variance reduction {c.variance_reduction:.1%} "
              f"(coefficients {', '.join(f'{k} {v:.3g}' for k, v in c.covariate_coefficients.items())})")  # fmt: skip
    wh.close()


if __name__ == "__main__":
    main()
