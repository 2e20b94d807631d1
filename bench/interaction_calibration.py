"""Calibration of the interaction screen on the simulator: planted interactions found, and the
false-discovery rate held on the pairs without one.

Each *world* is one run of the marketplace simulator (``--buyers`` buyers over 56 days) with
``--experiments`` A/A experiments, each in its own layer from day 28, so every pair overlaps in
time and units. The simulator has no interaction knob, so one is planted afterwards: the units
in the treatment of both ``e0`` and ``e1`` get ``--lift`` more orders in the window (each of
their orders after both first exposures is copied with that probability). Every ordered pair
is then tested once on orders per unit exactly as ``tianping experiment interactions`` does
(:func:`tianping.experiments.analysis.interaction_cells`, ``pair_test``, Benjamini–Hochberg at
``--fdr`` across the world's pairs). Counted: worlds where the planted pair is flagged (either
order), and the false-discovery proportion (flagged pairs without a planted interaction over
all flagged pairs, 0 when none), averaged over worlds.

python bench/interaction_calibration.py [--worlds 100] [--experiments 6] [--buyers 50000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats

from tianping.experiments import analysis as an
from tianping.experiments.interactions import Cell, pair_test, screen
from tianping.settings import Settings
from tianping.simulate.scenario import parse_scenario
from tianping.simulate.service import run_simulation
from tianping.warehouse import connect

WINDOW = an.AnalysisWindow.from_dates(date(2024, 4, 29), date(2024, 5, 26))
ARMS = ["control", "treatment"]


def scenario_yaml(k: int) -> str:
    rows = "\n".join(
        f"  - {{name: e{i}, kind: ab, layer: l{i}, start_day: 28, arms: [{{name: control, "
        "weight: 0.5}, {name: treatment, weight: 0.5}]}"
        for i in range(k)
    )
    return f"name: interactions\nexperiments:\n{rows}\n"


def plant(wh, lift: float, rng) -> None:
    """Copy each order of the units treated in both e0 and e1 (after both first exposures,
    inside the window) with probability ``lift``."""
    ex = wh.to_arrow(wh.table("exposures")).to_pandas()
    first = ex.groupby(["experiment", "unit_id"]).agg(at=("exposed_at", "min"),
                                                      arm=("variant", "max"))  # fmt: skip
    a, b = first.loc["e0"], first.loc["e1"]
    both = a.add_suffix("_a").join(b.add_suffix("_b"), how="inner")
    both = both[(both.arm_a == "treatment") & (both.arm_b == "treatment")]
    since = both[["at_a", "at_b"]].max(axis=1)
    orders = wh.to_arrow(wh.table("orders")).to_pandas()
    start = orders.buyer_id.map(since)
    inside = start.notna() & (orders.created_at >= start) & (orders.created_at < WINDOW.end)
    copies = orders[inside.to_numpy() & (rng.random(len(orders)) < lift)].copy()
    copies["order_id"] = copies["order_id"].astype(str) + "-x"
    schema = wh.to_arrow(wh.table("orders").limit(0)).schema
    table = pa.Table.from_pandas(pd.concat([orders, copies], ignore_index=True),
                                 preserve_index=False)  # fmt: skip
    wh.replace("orders", table.select(schema.names).cast(schema))


def world_tests(wh, k: int):
    tests = []
    for i in range(k):
        q = an.Query(f"e{i}", WINDOW, ("orders",), cuped=False)
        for j in range(i + 1, k):  # one test per pair: the same outcome makes it symmetric
            cells = [Cell(*c) for c in an.interaction_cells(wh, q, f"e{j}", "orders")]
            t = pair_test(f"e{i}", f"e{j}", "orders", cells, ARMS, ARMS)
            if t is not None:
                tests.append(t)
    return tests


def run(args) -> dict:
    root = Path(tempfile.mkdtemp(prefix="interaction-calibration-"))
    started = time.perf_counter()
    found, fdp, flagged_null, null_pairs = [], [], 0, 0
    try:
        sc = parse_scenario(scenario_yaml(args.experiments), "interactions")
        for w in range(args.worlds):
            rng = np.random.default_rng(args.seed + w)
            wh = connect(Settings(home=root / f"w{w}"))
            run_simulation(wh, buyers=args.buyers, days=56, seed=args.seed + w, scenario=sc)
            plant(wh, args.lift, rng)
            out = screen(world_tests(wh, args.experiments), args.fdr)
            planted = [t for t in out if {t.first, t.second} == {"e0", "e1"}]
            others = [t for t in out if {t.first, t.second} != {"e0", "e1"}]
            found.append(any(t.flagged for t in planted))
            false = sum(t.flagged for t in others)
            flagged = false + sum(t.flagged for t in planted)
            fdp.append(false / flagged if flagged else 0.0)
            flagged_null += false
            null_pairs += len(others)
            wh.close()
            shutil.rmtree(root / f"w{w}", ignore_errors=True)
            print(f"world {w + 1}/{args.worlds} ({time.perf_counter() - started:.0f}s): found "
                  f"{np.mean(found):.3f}, mean FDP {np.mean(fdp):.3f}", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ci = stats.binomtest(int(sum(found)), len(found)).proportion_ci(0.95)
    return {
        **{k: str(v) for k, v in vars(args).items()},
        "seconds": time.perf_counter() - started,
        "found": {"rate": float(np.mean(found)), "runs": len(found), "ci": [ci.low, ci.high]},
        "mean_fdp": float(np.mean(fdp)),
        "fdp_se": float(np.std(fdp, ddof=1) / np.sqrt(len(fdp))) if len(fdp) > 1 else None,
        "null_flag_rate": flagged_null / null_pairs if null_pairs else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worlds", type=int, default=100)
    ap.add_argument("--experiments", type=int, default=6)
    ap.add_argument("--buyers", type=int, default=50_000)
    ap.add_argument("--lift", type=float, default=0.25)
    ap.add_argument("--fdr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=7000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    out = run(args)
    print(json.dumps(out, indent=2))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
