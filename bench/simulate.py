"""Benchmark: `tianping simulate` writing into DuckDB, against a naive generator of the same tables.

Targets (issue 3): 1M orders in under 30 s and 10M orders in under 5 minutes on 2 cores, peak
memory under 4 GB at 10M. The peer, measured in the same run, is bench/_data.py: uniform random
event tables of the same schemas with no model at all (no buyers, calendar, merchants,
refund causes, red packets or experiments), loaded into DuckDB the same way. The ratio says
what the generative model costs over merely producing and loading that many rows.

Each measurement runs in its own process so its peak RSS is its own. DuckDB's buffer pool is
capped at 2 GB (``memory_limit``) in both, so peak RSS measures the generator, not how much the
engine chose to cache. The machine's load average is printed: on a shared 2-core machine the
seconds scale with it.

Run: python bench/simulate.py [--orders N] [--no-peer]
     python bench/simulate.py --orders 10000000 --no-peer
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tianping.simulate.params import CALIBRATED_OUTCOMES

MEMORY_LIMIT = "SET memory_limit = '2GB'"
EVENT_TABLES = ("orders", "refunds", "reviews", "nps", "activity", "exposures")


def child_simulate(orders: int, folder: Path) -> dict:
    from tianping.settings import Settings
    from tianping.simulate.service import load_scenario, run_simulation
    from tianping.warehouse import connect

    buyers = math.ceil(orders / CALIBRATED_OUTCOMES["orders_per_buyer"])
    wh = connect(Settings(home=folder, warehouse=f"duckdb://{folder / 'sim.duckdb'}"))
    wh.con.raw_sql(MEMORY_LIMIT)
    began = time.perf_counter()
    result = run_simulation(wh, buyers=buyers, days=90, seed=0, scenario=load_scenario("default"))
    seconds = time.perf_counter() - began
    wh.close()
    return {"buyers": buyers, "seconds": seconds, "rows": result.rows}


def child_peer(orders: int, folder: Path) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from _data import orders as naive_tables

    from tianping.settings import Settings
    from tianping.warehouse import connect

    wh = connect(Settings(home=folder, warehouse=f"duckdb://{folder / 'peer.duckdb'}"))
    wh.con.raw_sql(MEMORY_LIMIT)
    began = time.perf_counter()
    tables = naive_tables(orders, days=90)
    for name, table in tables.items():
        wh.replace(name, table)
    seconds = time.perf_counter() - began
    wh.close()
    return {"seconds": seconds, "rows": {k: v.num_rows for k, v in tables.items()}}


def measure(kind: str, orders: int) -> dict:
    """Run one measurement in a fresh process; returns its timings and its own peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--orders", str(orders), "--dir", tmp],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def event_rows(rows: dict) -> int:
    return sum(v for k, v in rows.items() if k in EVENT_TABLES)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--no-peer", action="store_true", help="measure the simulator only")
    ap.add_argument("--child", choices=("simulate", "peer"), help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        fn = child_simulate if args.child == "simulate" else child_peer
        result = fn(args.orders, args.dir)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    print("load average before: {:.1f} {:.1f} {:.1f} (2 cores)".format(*os.getloadavg()))
    sim = measure("simulate", args.orders)
    rows, orders = event_rows(sim["rows"]), sim["rows"]["orders"]
    print(f"simulated {sim['buyers']:,} buyers x 90 days: {orders:,} orders, {rows:,} event rows "
          f"(+{sum(sim['rows'].values()) - rows:,} truth rows) into DuckDB")  # fmt: skip
    print(
        f"{'generator':<44}{'seconds':>9}{'orders/s':>12}{'rows/s':>12}{'peak RSS MB':>13}{'ratio':>8}"
    )
    line = "{:<44}{:>9.1f}{:>12,.0f}{:>12,.0f}{:>13,.0f}{:>8.2f}"
    print(line.format("tianping simulate (model, chunked)", sim["seconds"], orders / sim["seconds"],
                      rows / sim["seconds"], sim["peak_rss_mb"], 1.0))  # fmt: skip
    if not args.no_peer:
        peer = measure("peer", args.orders)
        p_rows = event_rows(peer["rows"])
        print(line.format("naive uniform tables (bench/_data.py)", peer["seconds"],
                          peer["rows"]["orders"] / peer["seconds"], p_rows / peer["seconds"],
                          peer["peak_rss_mb"], peer["seconds"] / sim["seconds"]))  # fmt: skip
        print(
            "ratio = peer seconds / simulator seconds (the peer has ~1/3 of the simulator's event rows: no activity grid)"
        )
    print("load average after: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    target = 30 if args.orders <= 1_000_000 else 300
    print(f"target: {args.orders:,} orders in < {target} s"
          + (", peak RSS < 4096 MB" if args.orders >= 10_000_000 else "")
          + f" -> {'met' if sim['seconds'] < target else 'MISSED'} ({sim['seconds']:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
