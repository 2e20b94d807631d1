"""Benchmark: `tianping ingest orders` from Parquet, CSV and JSON Lines into DuckDB.

Targets: at 5M rows, tianping's rate is at least 75 % of DuckDB's own load from Parquet and 60 %
from CSV, with peak memory at most 2x DuckDB's; memory stays flat as the file grows (a 100M-row
file ingests on a 24 GB machine). The peer is DuckDB itself loading the same file into a fresh
database file with one ``CREATE TABLE ... AS SELECT * FROM read_<format>(...)``: no validation,
no duplicate checks, no exact-decimal typing, no per-row problems — the floor any validating
loader pays on top of.

Every contender runs in its own child process, so its peak resident memory (the kernel's
``ru_maxrss`` of that child) is its own; contenders alternate (ours, raw, ours, raw, ...) so a
change in the machine's load hits both alike; the best of ``--repeat`` runs is reported. Each
run loads into a fresh warehouse, so the duplicate check runs against an empty table as in a
first load. The orders file is written in 1M-row chunks, so its size is limited by the disk.

Run: python bench/ingest.py [--rows N] [--formats parquet,csv,jsonl] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from _data import order_table

READERS = {"parquet": "read_parquet", "csv": "read_csv", "jsonl": "read_json"}
OPTIONS = {"parquet": "", "csv": "", "jsonl": ", format='newline_delimited'"}
TARGETS = {"parquet": 0.75, "csv": 0.60}
CHUNK = 1_000_000


def write_files(n: int, folder: Path, formats: list[str]) -> dict[str, Path]:
    """The same ``n`` orders as each format, written chunk by chunk."""
    paths = {f: folder / f"orders.{f}" for f in formats}
    writers: dict = {}
    rng = np.random.default_rng(7)
    buyers = max(n // 10, 1)
    try:
        for offset in range(0, n, CHUNK):
            chunk, *_ = order_table(rng, min(CHUNK, n - offset), buyers=buyers, offset=offset)
            if "parquet" in paths:
                if "parquet" not in writers:
                    writers["parquet"] = pq.ParquetWriter(paths["parquet"], chunk.schema)
                writers["parquet"].write_table(chunk)
            if "csv" in paths:
                if "csv" not in writers:
                    writers["csv"] = pacsv.CSVWriter(paths["csv"], chunk.schema)
                writers["csv"].write_table(chunk)
            if "jsonl" in paths:
                con = duckdb.connect()
                con.register("chunk", chunk)
                part = folder / "chunk.jsonl"
                con.execute(f"COPY chunk TO '{part}' (FORMAT json)")
                con.close()
                with paths["jsonl"].open("ab") as out, part.open("rb") as src:
                    shutil.copyfileobj(src, out)
                part.unlink()
    finally:
        for w in writers.values():
            w.close()
    return paths


def child(kind: str, fmt: str, path: str, home: str) -> None:
    """One contender's run in this (child) process; prints its seconds and rows as JSON."""
    if kind == "raw":
        con = duckdb.connect(str(Path(home) / "peer.duckdb"))
        t = time.perf_counter()
        con.execute(f"CREATE TABLE orders AS SELECT * FROM {READERS[fmt]}('{path}'{OPTIONS[fmt]})")
        seconds = time.perf_counter() - t
        rows = con.execute("SELECT count(*) FROM orders").fetchone()[0]
        con.close()
    else:
        from tianping.settings import Settings
        from tianping.warehouse import connect
        from tianping.warehouse.ingest import ingest_file

        wh = connect(Settings(home=Path(home), warehouse=f"duckdb://{Path(home) / 'w.duckdb'}"))
        t = time.perf_counter()
        report = ingest_file(wh, "orders", path)
        seconds = time.perf_counter() - t
        rows = wh.row_count("orders")
        assert rows == report.loaded == report.read, report
        wh.close()
    print(json.dumps({"seconds": seconds, "rows": rows}))


def run(kind: str, fmt: str, path: Path, folder: Path) -> tuple[float, int, float]:
    """(seconds, rows, peak RSS in MB) of one contender in a fresh child process."""
    home = Path(tempfile.mkdtemp(dir=folder))
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", kind, fmt, str(path), str(home)],
        stdout=subprocess.PIPE,
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    shutil.rmtree(home, ignore_errors=True)
    if proc.returncode:
        raise SystemExit(f"{kind} {fmt} failed with exit code {proc.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    return result["seconds"], result["rows"], usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--formats", default="parquet,csv")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--dir", help="folder for the files (default: a temporary one)")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    folder = Path(args.dir or tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    formats = args.formats.split(",")
    t = time.perf_counter()
    paths = write_files(args.rows, folder, formats)
    sizes = ", ".join(f"{f} {p.stat().st_size / 1e9:.2f} GB" for f, p in paths.items())
    print(f"wrote {args.rows:,} orders ({sizes}) in {time.perf_counter() - t:.0f}s")
    print(
        f"{'format':<9}{'tianping s':>11}{'rows/s':>12}{'MB':>7}{'DuckDB s':>10}{'MB':>7}"
        f"{'rate %':>8}{'target':>8}{'mem x':>7}"
    )
    for fmt, path in paths.items():
        best = {"ours": (float("inf"), 0, 0.0), "raw": (float("inf"), 0, 0.0)}
        for _ in range(args.repeat):
            for kind in best:
                seconds, rows, mb = run(kind, fmt, path, folder)
                assert rows == args.rows, (kind, fmt, rows)
                if seconds < best[kind][0]:
                    best[kind] = (seconds, rows, mb)
        (ours, rows, ours_mb), (raw, _, raw_mb) = best["ours"], best["raw"]
        target = f"{TARGETS[fmt]:.0%}" if fmt in TARGETS else "-"
        print(
            f"{fmt:<9}{ours:>11.2f}{rows / ours:>12,.0f}{ours_mb:>7.0f}{raw:>10.2f}{raw_mb:>7.0f}"
            f"{raw / ours:>8.0%}{target:>8}{ours_mb / raw_mb:>7.2f}"
        )
        if not args.dir:
            path.unlink()
    print("rate % = DuckDB's seconds / tianping's; mem x = tianping's peak RSS / DuckDB's")


if __name__ == "__main__":
    main()
