"""Benchmark: `tianping ingest orders` from Parquet, CSV and JSON Lines into DuckDB.

Target (issue 2): at least 1M rows/s from Parquet; CSV and JSON Lines are reported. The peer is
DuckDB itself loading the same file with one `INSERT ... SELECT * FROM read_<format>(...)` and no
validation, no duplicate checks and no exact-decimal typing: the floor any validating loader
pays on top of. Each format is loaded into a fresh warehouse so the duplicate check against
loaded rows runs against an empty table, as in a first load.

Run: python bench/ingest.py [--rows N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from _data import orders as make_tables

from tianping.settings import Settings
from tianping.warehouse import connect
from tianping.warehouse.ingest import ingest_file

READERS = {"parquet": "read_parquet", "csv": "read_csv", "jsonl": "read_json"}
OPTIONS = {"parquet": "", "csv": "", "jsonl": ", sample_size=-1"}


def write_files(n: int, folder: Path) -> dict[str, Path]:
    orders = make_tables(n)["orders"]
    paths = {
        "parquet": folder / "orders.parquet",
        "csv": folder / "orders.csv",
        "jsonl": folder / "orders.jsonl",
    }
    pq.write_table(orders, paths["parquet"])
    pacsv.write_csv(orders, paths["csv"])
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * FROM read_parquet('{paths['parquet']}')) "
        f"TO '{paths['jsonl']}' (FORMAT json)"
    )
    con.close()
    return paths


def ours(path: Path, folder: Path, tag: str) -> tuple[float, int]:
    home = folder / f"ours-{tag}"
    wh = connect(Settings(home=home, warehouse=f"duckdb://{home / 'w.duckdb'}"))
    t = time.perf_counter()
    report = ingest_file(wh, "orders", path)
    elapsed = time.perf_counter() - t
    assert wh.row_count("orders") == report.loaded == report.read
    wh.close()
    return elapsed, report.loaded


def peer(fmt: str, path: Path, folder: Path) -> float:
    con = duckdb.connect(str(folder / f"peer-{fmt}.duckdb"))
    t = time.perf_counter()
    con.execute(f"CREATE TABLE orders AS SELECT * FROM {READERS[fmt]}('{path}'{OPTIONS[fmt]})")
    elapsed = time.perf_counter() - t
    con.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp())
    t = time.perf_counter()
    paths = write_files(args.rows, folder)
    print(f"wrote {args.rows:,} orders as Parquet, CSV and JSONL in {time.perf_counter() - t:.1f}s")
    print(f"{'format':<9}{'tianping s':>12}{'rows/s':>14}{'raw DuckDB s':>14}{'ours/raw':>10}")
    for fmt, path in paths.items():
        seconds, rows = ours(path, folder, fmt)
        raw = peer(fmt, path, folder)
        print(f"{fmt:<9}{seconds:>12.2f}{rows / seconds:>14,.0f}{raw:>14.2f}{seconds / raw:>10.2f}")
    print("target: >= 1,000,000 rows/s from Parquet")


if __name__ == "__main__":
    main()
