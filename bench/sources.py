"""Benchmark: reports read in place (a sources file over Parquet) against the same rows ingested.

Target (issue 17): on DuckDB, `tianping metrics --grain day` and an experiment analysis (5
metrics, CUPED) over Parquet files mapped with a sources file cost at most 1.2x the same work
on the ingested DuckDB tables, at 10M rows. Two mappings are timed: files already in
tianping's shape (``timezone: UTC``), and a company's own shape (amounts in fen, naive
Asia/Shanghai times, other column names) whose conversion runs inside every query. The
contenders run in turn (A B A B ...) and the answers are checked equal before any time is
printed. With ``--postgres`` and ``--spark MASTER`` the same reports are timed on a
PostgreSQL database holding the rows and on Spark reading the Parquet (context, not targets).

Run: python bench/sources.py [--orders N] [--units N] [--quick] [--postgres] [--spark local[2]]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _data import orders as order_tables
from experiment_analysis import METRICS, START, make_tables

from tianping.experiments import analysis as an
from tianping.metrics.service import compute_metrics
from tianping.settings import Settings
from tianping.warehouse import connect

TABLES = ("orders", "refunds", "reviews", "nps", "activity", "exposures")
SHANGHAI = pa.scalar(timedelta(hours=8), pa.duration("us"))
FOREIGN = {
    "orders": {
        "timezone": "Asia/Shanghai",
        "money": "minor",
        "columns": {"order_id": "id", "buyer_id": "user_id", "amount": "pay_fen",
                    "created_at": "paid_at", "coupon_amount": "coupon_fen"},
    },
    "exposures": {"timezone": "Asia/Shanghai", "columns": {"unit_id": "user_id", "exposed_at": "ts"}},
}  # fmt: skip


def foreign(name: str, table: pa.Table) -> pa.Table:
    """``table`` in a company's own shape (see the module's docstring)."""
    if name not in FOREIGN:
        return table
    renames = {logical: src for logical, src in FOREIGN[name]["columns"].items()}
    cols = {}
    for field in table.schema:
        col = table[field.name]
        if pa.types.is_timestamp(field.type):
            col = pc.add(col, SHANGHAI)
        elif pa.types.is_decimal(field.type):  # yuan -> fen, exactly
            col = pc.cast(pc.multiply(col, pa.scalar(100, pa.decimal128(3, 0))), pa.int64())
        cols[renames.get(field.name, field.name)] = col
    return pa.table(cols)


def write(tables: dict[str, pa.Table], folder: Path, shape: str) -> Path:
    """Parquet files and a sources file mapping them (``shape``: ``same`` or ``foreign``)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    mapping = {}
    for name, table in tables.items():
        data = table if shape == "same" else foreign(name, table)
        path = folder / f"{name}.parquet"
        # Decimals as INT64, as Spark, DuckDB and Trino write them up to 18 digits; pyarrow's
        # default (FIXED_LEN_BYTE_ARRAY) reads about 1.7x slower in DuckDB.
        pq.write_table(data, path, row_group_size=1_000_000, store_decimal_as_integer=True)
        spec = {"timezone": "UTC"} if shape == "same" or name not in FOREIGN else FOREIGN[name]
        mapping[name] = {"path": str(path), **spec}
    sources = folder / "sources.yaml"
    sources.write_text(json.dumps({"tables": mapping}), encoding="utf-8")
    return sources


def turns(contenders: dict, repeat: int) -> tuple[dict[str, float], dict]:
    """Best wall time of each contender, run in turn ``repeat`` times; their last answers."""
    best = {k: float("inf") for k in contenders}
    out = {}
    for _ in range(repeat):
        for name, fn in contenders.items():
            t = time.perf_counter()
            out[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best, out


def analysis(wh) -> list:
    query = an.Query("bench", an.AnalysisWindow(START, START + timedelta(days=14)), METRICS)
    agg = an.fetch_aggregates(wh, query)
    return sorted((tuple(sorted(r.items())) for r in agg.rows), key=str)


def metrics(wh) -> list:
    return compute_metrics(wh, grain="day")


def report(title: str, best: dict[str, float], base: str) -> None:
    print(f"\n{title}")
    print(f"{'contender':<44}{'best wall s':>12}{'ratio':>8}")
    for name, seconds in best.items():
        print(f"{name:<44}{seconds:>12.2f}{seconds / best[base]:>8.2f}")


def close_enough(a, b) -> bool:
    """Equal answers: money and counts exactly, float sums to 1e-9 relative."""
    import math

    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close_enough(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close_enough(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) or (a != a and b != b)
    return a == b


def duel(name: str, fn, tables: dict[str, pa.Table], tmp: Path, repeat: int, extra: dict) -> None:
    ingested = connect(Settings(home=tmp, warehouse=f"duckdb://{tmp / f'{name}.duckdb'}"))
    t = time.perf_counter()
    for table, data in tables.items():
        ingested.append(table, data)
    print(f"{name}: {sum(t.num_rows for t in tables.values()):,} rows loaded in "
          f"{time.perf_counter() - t:.0f} s")  # fmt: skip
    same = connect(
        Settings(home=tmp / "h1", sources=str(write(tables, tmp / f"{name}-same", "same")))
    )
    own = connect(
        Settings(home=tmp / "h2", sources=str(write(tables, tmp / f"{name}-own", "foreign")))
    )
    contenders = {
        "ingested DuckDB tables": lambda: fn(ingested),
        "in place: Parquet in tianping's shape": lambda: fn(same),
        "in place: Parquet in a company's shape": lambda: fn(own),
    }
    for label, (settings_of, prepare) in extra.items():
        wh = settings_of(tables, tmp)
        prepare(wh)
        contenders[label] = (lambda w: lambda: fn(w))(wh)
    best, out = turns(contenders, repeat)
    answers = list(out.values())
    for label, answer in zip(contenders, answers, strict=True):
        assert close_enough(answers[0], answer), f"{label} answered differently"
    report(f"{name} (answers checked equal)", best, "ingested DuckDB tables")
    for label in (
        "in place: Parquet in tianping's shape",
        "in place: Parquet in a company's shape",
    ):
        print(f"{label} / ingested = {best[label] / best['ingested DuckDB tables']:.2f}x "
              "(target <= 1.2x)")  # fmt: skip


def postgres_warehouse(tables: dict[str, pa.Table], tmp: Path):
    """A throw-away PostgreSQL cluster holding the rows (the tests' cluster helper)."""
    import ibis

    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from pgcluster import Cluster

    cluster = Cluster()
    url = cluster.create_database(f"bench_{time.monotonic_ns()}")
    pg = ibis.connect("postgres://" + url.split("://", 1)[1])
    t = time.perf_counter()
    for name, table in tables.items():
        pg.create_table(name, table)
    pg.raw_sql("ANALYZE")
    pg.disconnect()
    print(f"postgres: loaded in {time.perf_counter() - t:.0f} s")
    import json

    sources = tmp / f"pg-{time.monotonic_ns()}.yaml"
    sources.write_text(json.dumps({"tables": {n: {"table": n, "timezone": "UTC"} for n in tables}}))
    wh = connect(Settings(home=tmp / "pg", warehouse=url, sources=str(sources)))
    wh._cluster = cluster  # kept alive with the warehouse
    return wh


def spark_warehouse(master: str):
    def make(tables: dict[str, pa.Table], tmp: Path):
        sources = write(tables, tmp / f"spark-{time.monotonic_ns()}", "same")
        return connect(Settings(home=tmp / "spark", warehouse=master, sources=str(sources)))

    return make


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=10_000_000)
    ap.add_argument("--units", type=int, default=10_000_000)
    ap.add_argument("--quick", action="store_true", help="1M orders and 1M units")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--postgres", action="store_true", help="also time PostgreSQL (context)")
    ap.add_argument("--spark", metavar="MASTER", help="also time Spark, e.g. local[2] (context)")
    ap.add_argument("--only", choices=("metrics", "analysis"), help="time one report only")
    args = ap.parse_args()
    n_orders, n_units = (1_000_000, 1_000_000) if args.quick else (args.orders, args.units)
    tmp = Path(tempfile.mkdtemp())
    extra = {}
    if args.postgres:
        extra["PostgreSQL tables (context)"] = (postgres_warehouse, lambda wh: None)
    if args.spark:
        extra[f"Spark {args.spark} over Parquet (context)"] = (
            spark_warehouse(args.spark),
            lambda wh: None,
        )
    if args.only != "analysis":
        t = time.perf_counter()
        tables = {k: v for k, v in order_tables(n_orders).items() if k in TABLES}
        print(f"generated {n_orders:,} orders in {time.perf_counter() - t:.0f} s")
        duel(f"metrics --grain day, {n_orders:,} orders", metrics, tables, tmp, args.repeat, extra)
        del tables
    if args.only != "metrics":
        t = time.perf_counter()
        tables = make_tables(n_units)
        print(f"\ngenerated {n_units:,} units in {time.perf_counter() - t:.0f} s")
        duel(f"experiment analysis, {n_units:,} units x 5 metrics, CUPED", analysis, tables, tmp,
             args.repeat, extra)  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of the run: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
