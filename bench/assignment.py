"""Benchmark: assignment throughput against the GrowthBook Python SDK, in the same run.

Targets (issue 4): the vectorised batch assigner at least 5M ids/s; one SDK assignment under
10 µs. GrowthBook's SDK has no batch assigner, so its per-id loop is the peer for both.
Both sides assign to a 50/50 experiment inside a layer (namespace) at full traffic.
Run: python bench/assignment.py [--ids N] [--single N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from growthbook import Experiment, GrowthBook
from growthbook.core import gbhash

from tianping.experiments.assignment import (
    ExperimentConfig,
    Holdout,
    Layer,
    Snapshot,
    Variant,
    assign_batch,
    draw,
    unit_hashes,
)
from tianping.experiments.client import Client


def best(fn, repeat: int = 3) -> tuple[float, object]:
    """Fastest of ``repeat`` runs (seconds) and the last result."""
    out, times = None, []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def snapshot() -> Snapshot:
    e = ExperimentConfig(
        "checkout",
        "checkout",
        (Variant("control"), Variant("treatment")),
        layer="checkout",
        layer_buckets=(0, 5000),
    )
    return Snapshot((e,), (Layer("checkout", "checkout"),), Holdout("global-holdout", 0.05))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ids", type=int, default=10_000_000, help="ids for the batch assigner")
    ap.add_argument("--single", type=int, default=200_000, help="calls for single assignment")
    args = ap.parse_args()
    snap = snapshot()
    ids = np.char.add("buyer-", np.arange(args.ids).astype(str))
    int_ids = np.arange(args.ids, dtype=np.int64)

    t_str, arms = best(lambda: assign_batch(snap, "checkout", ids))
    t_int, _ = best(lambda: assign_batch(snap, "checkout", int_ids))
    hashes = unit_hashes(ids)
    t_pre, _ = best(lambda: assign_batch(snap, "checkout", ids, hashes=hashes))
    share = np.bincount(arms[arms >= 0], minlength=2) / max(1, int((arms >= 0).sum()))

    few = [str(x) for x in ids[: args.single]]
    client = Client(snap)
    t_sdk, _ = best(lambda: [client.variant("checkout", u) for u in few])
    seen: list = []
    reporting = Client(snap, on_exposure=seen.append)
    t_sdk_cb, _ = best(lambda: [reporting.variant("checkout", u) for u in few], repeat=1)
    t_draw, _ = best(lambda: [draw("checkout:variant", u) for u in few])

    gb = GrowthBook(attributes={"id": few[0]})
    exp = Experiment(
        key="checkout", variations=[0, 1], namespace=("checkout", 0.0, 0.5), hashVersion=2
    )

    def growthbook_loop() -> None:
        for u in few:
            gb.set_attributes({"id": u})
            gb.run(exp)

    t_gb, _ = best(growthbook_loop)
    t_gbhash, _ = best(lambda: [gbhash("checkout", u, 2) for u in few])
    gb.destroy()

    n, m = args.ids, len(few)
    print(f"batch assign, {n:,} string ids:     {n / t_str / 1e6:6.1f} M ids/s  (target >= 5)")
    print(f"batch assign, {n:,} integer ids:    {n / t_int / 1e6:6.1f} M ids/s")
    print(f"batch assign, hashes reused:          {n / t_pre / 1e6:6.1f} M ids/s")
    print(f"  (50/50 split inside the layer: control {share[0]:.4f}, treatment {share[1]:.4f})")
    print(f"SDK single assignment (Client.variant): {t_sdk / m * 1e6:6.2f} µs  (target < 10)")
    print(f"  with the exposure callback, first sight: {t_sdk_cb / m * 1e6:6.2f} µs")
    print(f"  one draw (hash only):                    {t_draw / m * 1e6:6.2f} µs")
    print(f"GrowthBook 4.0.0 gb.run(experiment):       {t_gb / m * 1e6:6.2f} µs")
    print(f"GrowthBook gbhash (hash only):             {t_gbhash / m * 1e6:6.2f} µs")
    print(f"ratio: tianping batch vs GrowthBook loop:  {t_gb / m / (t_str / n):8.0f}x faster")
    print(f"ratio: tianping single vs GrowthBook run:  {t_gb / t_sdk:8.1f}x faster")


if __name__ == "__main__":
    main()
