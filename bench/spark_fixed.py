"""Benchmark: the fixed cost of one ``tianping`` command on each warehouse.

A classic Spark warehouse (``local[N]``, ``spark://…``) starts a Spark driver in every
command; a Spark Connect server (``tianping spark connect-server``, here in local mode on the
same cores) keeps one driver, and a command opens a session to it. The same simulated
marketplace is written to a DuckDB home and a Spark home; each contender runs the same
commands as separate processes, alternating, best of ``--repeat``:

- ``--help``-free no-op: ``sources``-less ``metrics`` on one day (almost no data touched),
- ``metrics --grain month`` over the whole simulation.

Run: python bench/spark_fixed.py [--buyers N] [--days D] [--repeat R]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from sparkcluster import SparkConnectServer  # noqa: E402

TIANPING = str(Path(sys.executable).parent / "tianping")


def run(home: Path, warehouse: str, *args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [TIANPING, "--home", str(home), "--warehouse", warehouse, *args],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{warehouse} {args}: {done.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--buyers", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp())
    started = time.perf_counter()
    server = SparkConnectServer("local[2]")
    print(
        f"Spark Connect server up in {time.perf_counter() - started:.1f} s (once, not per command)"
    )
    try:
        sim = ["simulate", "--buyers", str(args.buyers), "--days", str(args.days)]
        run(folder / "duck", "duckdb", *sim)
        run(folder / "spark", server.url, *sim)
        homes = {
            "DuckDB file": (folder / "duck", "duckdb"),
            "Spark local[2] (driver per command)": (folder / "spark", "local[2]"),
            "Spark Connect (one server)": (folder / "spark", server.url),
        }
        questions = {
            "one day": [
                "metrics",
                "--from",
                "2024-04-01",
                "--to",
                "2024-04-01",
                "--format",
                "json",
            ],
            "monthly": ["metrics", "--grain", "month", "--format", "json"],
        }
        best = {(h, q): float("inf") for h in homes for q in questions}
        for _ in range(args.repeat):
            for q, question in questions.items():
                for h, (home, warehouse) in homes.items():
                    best[h, q] = min(best[h, q], run(home, warehouse, *question))
        print(f"{'warehouse':<38}" + "".join(f"{q + ' s':>12}" for q in questions))
        for h in homes:
            print(f"{h:<38}" + "".join(f"{best[h, q]:>12.2f}" for q in questions))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
