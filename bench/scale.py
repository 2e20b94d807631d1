"""Scale curves: time and peak memory of simulate, ingest, metrics and experiment analysis at
1M, 10M and 50M rows, on DuckDB, so a reader sees how cost grows and where it stops fitting.

Each measurement runs in its own process (its peak RSS, the kernel's ``ru_maxrss``, is its
own); the data of a size is made once in the parent, in 1M-row chunks, so making it never
holds a whole table in memory:

- ``simulate``: ``tianping simulate`` with enough buyers for N orders (90 days; DuckDB's
  buffer pool capped at 2 GB as in bench/simulate.py);
- ``ingest csv`` / ``ingest parquet``: ``tianping ingest orders`` of an N-row file into a fresh
  warehouse (ingest's default 2 GB DuckDB memory limit), beside DuckDB's own
  ``CREATE TABLE AS read_…`` of the same file;
- ``metrics``: daily and monthly headline metrics over the N ingested orders;
- ``analysis``: the experiment analysis of bench/experiment_analysis.py (5 metrics, CUPED) at
  N units (~1.2 N orders).

Run: python bench/scale.py [--sizes 1000000,10000000,50000000] [--skip simulate,...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

CHUNK = 1_000_000
KINDS = ("simulate", "ingest csv", "duckdb csv", "ingest parquet", "duckdb parquet", "metrics",
         "analysis")  # fmt: skip


def child(kind: str, size: int, folder: Path) -> dict:
    """One measurement in this (child) process."""
    from tianping.settings import Settings
    from tianping.warehouse import connect

    if kind == "simulate":
        from simulate import MEMORY_LIMIT
        from tianping.simulate.params import CALIBRATED_OUTCOMES
        from tianping.simulate.service import load_scenario, run_simulation

        buyers = math.ceil(size / CALIBRATED_OUTCOMES["orders_per_buyer"])
        home = folder / "sim"
        wh = connect(Settings(home=home, warehouse=f"duckdb://{home}.duckdb"))
        wh.con.raw_sql(MEMORY_LIMIT)
        began = time.perf_counter()
        result = run_simulation(
            wh, buyers=buyers, days=90, seed=0, scenario=load_scenario("default")
        )
        out = {"seconds": time.perf_counter() - began, "rows": result.rows["orders"]}
        wh.close()
        shutil.rmtree(home, ignore_errors=True)
        Path(f"{home}.duckdb").unlink(missing_ok=True)
        return out
    if kind.startswith("duckdb "):
        import duckdb

        fmt = kind.split()[1]
        con = duckdb.connect(str(folder / f"raw-{fmt}.duckdb"))
        began = time.perf_counter()
        con.execute(
            f"CREATE TABLE orders AS SELECT * FROM read_{fmt}('{folder / f'orders.{fmt}'}')"
        )
        out = {"seconds": time.perf_counter() - began}
        out["rows"] = con.execute("SELECT count(*) FROM orders").fetchone()[0]
        con.close()
        (folder / f"raw-{fmt}.duckdb").unlink()
        return out
    if kind.startswith("ingest "):
        from tianping.warehouse.ingest import ingest_file

        fmt = kind.split()[1]
        target = folder / f"ingested-{fmt}.duckdb"
        target.unlink(missing_ok=True)
        wh = connect(Settings(home=folder, warehouse=f"duckdb://{target}"))
        began = time.perf_counter()
        report = ingest_file(wh, "orders", folder / f"orders.{fmt}")
        out = {"seconds": time.perf_counter() - began, "rows": report.loaded}
        wh.close()
        return out
    if kind == "metrics":
        from tianping.metrics.service import compute_metrics

        wh = connect(
            Settings(home=folder, warehouse=f"duckdb://{folder / 'ingested-parquet.duckdb'}")
        )
        began = time.perf_counter()
        daily = compute_metrics(wh, grain="day")
        compute_metrics(wh, grain="month")
        out = {"seconds": time.perf_counter() - began, "rows": wh.row_count("orders")}
        out["days"] = len(daily.rows) if hasattr(daily, "rows") else None
        wh.close()
        return out
    if kind == "analysis":
        from experiment_analysis import ours

        wh = connect(Settings(home=folder, warehouse=f"duckdb://{folder / 'experiment.duckdb'}"))
        began = time.perf_counter()
        agg, _ = ours(wh)
        out = {"seconds": time.perf_counter() - began, "rows": sum(r["n"] for r in agg.rows)}
        wh.close()
        return out
    raise SystemExit(f"unknown kind {kind}")


def run(kind: str, size: int, folder: Path) -> dict:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", kind, str(size), str(folder)], stdout=subprocess.PIPE
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        return {"error": f"exit {os.waitstatus_to_exitcode(status)}"}
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def make_files(size: int, folder: Path, formats: list[str]) -> None:
    from ingest import write_files

    paths = write_files(size, folder, formats)
    for fmt, path in paths.items():
        path.rename(folder / f"orders.{fmt}")


def make_experiment(size: int, folder: Path) -> None:
    from experiment_analysis import make_tables

    from tianping.settings import Settings
    from tianping.warehouse import connect

    wh = connect(Settings(home=folder, warehouse=f"duckdb://{folder / 'experiment.duckdb'}"))
    for chunk, offset in enumerate(range(0, size, CHUNK)):
        tables = make_tables(min(CHUNK, size - offset), seed=11 + chunk, offset=offset)
        for name, table in tables.items():
            wh.append(name, table)
    wh.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,10000000,50000000")
    ap.add_argument("--skip", default="", help="kinds to leave out, comma-separated")
    ap.add_argument("--dir", help="work folder (default: a temporary one)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--make", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make:
        size, folder, formats, experiment = args.make
        if formats:
            make_files(int(size), Path(folder), formats.split(","))
        if experiment == "True":
            make_experiment(int(size), Path(folder))
        return
    if args.child:
        kind, size, folder = args.child
        result = child(kind, int(size), Path(folder))
        result["self_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    skip = {k.strip() for k in args.skip.split(",") if k.strip()}
    base = Path(args.dir or tempfile.mkdtemp())
    print(
        f"load average {os.getloadavg()[0]:.1f} (2 cores); RAM {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB"
    )
    print(f"{'rows':>12}  {'workload':<16}{'seconds':>9}{'rows/s':>13}{'peak MB':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        folder = base / str(size)
        folder.mkdir(parents=True, exist_ok=True)
        formats = [f for f in ("csv", "parquet") if f"ingest {f}" not in skip]
        kinds = [
            k
            for k in KINDS
            if k not in skip and not (k.startswith("duckdb ") and k.split()[1] not in formats)
        ]
        # Made in a child: a child's peak RSS counts its parent's at the fork, so the parent
        # stays small.
        made = [sys.executable, __file__, "--make", str(size), str(folder), ",".join(formats),
                str("analysis" in kinds)]  # fmt: skip
        subprocess.run(made, check=True)
        for kind in kinds:
            if kind == "metrics" and "parquet" not in formats:
                continue
            r = run(kind, size, folder)
            if "error" in r:
                print(f"{size:>12,}  {kind:<16}{r['error']:>9}")
                continue
            print(
                f"{size:>12,}  {kind:<16}{r['seconds']:>9.1f}{r['rows'] / r['seconds']:>13,.0f}{r['peak_mb']:>9,.0f}",
                flush=True,
            )
        shutil.rmtree(folder, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
