"""Benchmark: which segments moved GMV, against one grouped SQL pass of the same cube.

Target (issue 21): the explanation over 10M orders × 6 dimensions within 3× one grouped SQL
pass of the same cube. Two measurements, each printing its ratio:

1. six dimensions: the orders (drawn by ``tianping.simulate.shocks``, a planted shock included)
   sit in a DuckDB table with six dimension columns; the explanation is that one grouped query
   plus :func:`tianping.metrics.segments.explain_cube` over every combination of up to three
   dimensions; the reference is the grouped query alone;
2. the warehouse path: ``tianping.metrics.why.explain_segments`` on the ``orders`` table (four
   dimensions, ``buyer_type`` derived from each buyer's first order) against the hand-written
   SQL of the same cube.

Run: python bench/why.py [--orders N] [--repeat R]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from tianping.metrics.segments import Cube, explain_cube
from tianping.metrics.why import explain_segments
from tianping.settings import Settings
from tianping.simulate.shocks import PlantedWorld, Shock, orders_table, planted_orders
from tianping.warehouse import connect

BEFORE = (date(2024, 5, 1), date(2024, 5, 28))
AFTER = (date(2024, 5, 29), date(2024, 6, 25))
SHOCK = Shock({"channel": "live_stream", "city_tier": "tier3"}, order_value=0.85)

HAND_SQL = """
WITH o AS (
  SELECT *, CASE WHEN created_at = min(created_at) OVER (PARTITION BY buyer_id)
                 THEN 'new' ELSE 'returning' END AS buyer_type
  FROM orders
)
SELECT CASE WHEN created_at >= TIMESTAMP '2024-05-29' THEN 1 ELSE 0 END AS period,
       CAST(created_at AS DATE) AS day, category, channel, delivery_mode, buyer_type,
       count(*) AS orders, sum(amount) AS gmv
FROM o
WHERE created_at >= TIMESTAMP '2024-05-01' AND created_at < TIMESTAMP '2024-06-26'
GROUP BY ALL
"""


def _best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def six_dimensions(orders, repeat: int) -> None:
    """The grouped pass alone against the pass plus the whole search."""
    con = duckdb.connect()
    columns = {"period": orders.period, "day": orders.day, "amount": orders.amount_minor}
    for j, name in enumerate(orders.dimensions):
        columns[name] = orders.codes[:, j]
    con.register("o", pa.table(columns))
    con.execute("CREATE TABLE orders6 AS SELECT * FROM o")
    dims = ", ".join(orders.dimensions)
    sql = f"SELECT period, day, {dims}, count(*) AS n, sum(amount) AS g FROM orders6 GROUP BY ALL"

    def grouped():
        return con.execute(sql).fetchnumpy()

    def explain():
        cells = grouped()
        cube = Cube(orders.dimensions, orders.labels,
                    np.stack([cells[d] for d in orders.dimensions], axis=1),
                    cells["period"], cells["day"], cells["n"], cells["g"].astype(np.int64),
                    orders.days)  # fmt: skip
        return explain_cube(cube)

    t_sql, cells = _best(grouped, repeat)
    t_why, found = _best(explain, repeat)
    top = found.causes[0].label if found.causes else "nothing"
    print(f"6 dims: {orders.period.size:,} orders, cube {len(cells['n']):,} cells, "
          f"{found.tested} segments tested")  # fmt: skip
    print(f"  grouped SQL pass {t_sql:.3f} s; explanation {t_why:.3f} s; "
          f"ratio {t_why / t_sql:.2f} (target <= 3); first cause: {top}")  # fmt: skip


def warehouse_path(orders, repeat: int) -> None:
    """``explain_segments`` on the orders table against the hand-written SQL of its cube."""
    with tempfile.TemporaryDirectory() as tmp:
        wh = connect(Settings(home=Path(tmp), warehouse=f"duckdb://{Path(tmp) / 'w.duckdb'}"))
        wh.append("orders", orders_table(orders, BEFORE[0], AFTER[0]))
        raw = wh.con.con
        t_sql, _ = _best(lambda: raw.execute(HAND_SQL).fetchall(), repeat)
        t_why, found = _best(lambda: explain_segments(wh, BEFORE, AFTER), repeat)
        wh.close()
    top = found.causes[0].label if found.causes else "nothing"
    print(f"warehouse, 4 dims: hand SQL {t_sql:.3f} s; explain_segments {t_why:.3f} s; "
          f"ratio {t_why / t_sql:.2f} (target <= 3); first cause: {top}")  # fmt: skip


def main() -> None:
    """Draw the orders once, then run both measurements."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    per_day = max(args.orders // 56, 1)
    orders = planted_orders(PlantedWorld(per_day, (28, 28), (SHOCK,)), seed=0)
    six_dimensions(orders, args.repeat)
    warehouse_path(orders, args.repeat)


if __name__ == "__main__":
    main()
