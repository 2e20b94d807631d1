"""Validation: how often a refund-policy race picks the policy that is truly best on the
simulator's ground truth, over many seeded simulated markets.

Each seed simulates a market (``--buyers``, 120 days), races the four shipped policies with the
default goal (``cost_per_request``) and guardrails over consecutive two-week windows of its
refund requests, and compares the race's winner with the policy whose cost per request is
lowest when it alone decides every request of the windows the adaptive phase saw (computed here
from the decisions and the ground truth, independently of the race's code). The confirmation
then runs on the remaining windows. Run: python bench/policy_race.py [--seeds N] [--buyers N]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from tianping.aftersales.policy import ACTIONS, PAYERS, evaluate_batch, load_builtin
from tianping.aftersales.replay import replay_inputs
from tianping.clock import FixedClock
from tianping.races import policy_race, service
from tianping.settings import Settings
from tianping.simulate.params import MarketParams
from tianping.simulate.service import run_simulation
from tianping.store import init_schema, make_engine, make_sessionmaker
from tianping.warehouse import connect

#: Arms whose true costs differ clearly on the simulator (taobao-2023-12 and pinduoduo-2021
#: are within noise of each other: race them with --arms to see the race not stop).
ARMS = ["taobao-2023-12", "taobao-2024-08", "1688-2025-03"]
START = date(2024, 4, 8)
WINDOW_DAYS = 14
HANDLING_MINOR = 1000
SPEC = """
name: refund-race
kind: refund_policy
strategies: [{arms}]
min_units: 50
draws: 4000
confirm_units: 300
start_date: {start}
"""


def true_cost(wh, windows: list[tuple[date, date]], arms: list[str]) -> dict[str, float]:
    """Each policy's cost per request when it decides every request of the windows."""
    total, requests = Counter(), 0
    for start, end in windows:
        inputs = replay_inputs(wh, start=start, end=end)
        requests += len(inputs.refund_ids)
        for name in arms:
            b = evaluate_batch(load_builtin(name), inputs.columns | {"currency": "CNY"})
            platform = b.payer_code == PAYERS.index("platform")
            kept = np.isin(
                b.action_code, [ACTIONS.index("refund_only"), ACTIONS.index("partial_refund")]
            )
            people = np.isin(
                b.action_code,
                [ACTIONS.index("manual_review"), ACTIONS.index("merchant_negotiation")],
            )
            total[name] += (
                b.refund_amount_minor[platform].sum()
                + b.refund_amount_minor[~platform & kept & inputs.abusive].sum()
                + HANDLING_MINOR * people.sum()
            )
    return {n: total[n] / requests for n in arms}


def one_race(seed: int, buyers: int, folder: Path, arms: list[str]) -> dict[str, object]:
    wh = connect(Settings(home=folder, warehouse=f"duckdb://{folder / f'w{seed}.duckdb'}"))
    params = dataclasses.replace(
        MarketParams(), products_per_merchant=2.0, lemon_share=0.05, lemon_multiplier=10.0
    )
    run_simulation(wh, buyers=buyers, days=120, seed=seed, params=params)
    engine = make_engine(f"sqlite:///{folder / f's{seed}.sqlite'}")
    init_schema(engine)
    session = make_sessionmaker(engine)()
    spec = SPEC.format(arms=", ".join(arms), start=START)
    race = policy_race.create(service.load_yaml(spec), session=session)
    windows, day, last = [], START, date(2024, 7, 29)
    while race.phase in ("racing", "confirming") and day + timedelta(days=WINDOW_DAYS - 1) <= last:
        end = day + timedelta(days=WINDOW_DAYS - 1)
        at = FixedClock(datetime.combine(end, datetime.min.time(), UTC))
        row = policy_race.step(
            "refund-race", start=day, end=end, session=session, warehouse=wh, clock=at
        )
        if row.phase == "racing":
            windows.append((day, end))
        day = end + timedelta(days=1)
    truth = true_cost(wh, windows, arms)
    best = min(truth, key=truth.get)
    out = {
        "seed": seed,
        "winner": race.winner,
        "best": best,
        "adaptive_steps": len(windows),
        "phase": race.phase,
        "decision": race.decision,
        "truth": {k: round(float(v), 1) for k, v in truth.items()},
    }
    session.close()
    engine.dispose()
    wh.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--buyers", type=int, default=20_000)
    ap.add_argument("--arms", default=",".join(ARMS), help="comma-separated built-in policies")
    args = ap.parse_args()
    rows, t0 = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            r = one_race(seed, args.buyers, Path(tmp), args.arms.split(","))
            rows.append(r)
            print(r, flush=True)
    picked = [r for r in rows if r["winner"] is not None]
    right = sum(r["winner"] == r["best"] for r in picked)
    shipped = [r for r in rows if r["decision"] == "ship"]
    print(
        f"{args.seeds} seeds, {time.perf_counter() - t0:.0f} s: adaptive phase stopped in "
        f"{len(picked)}, on the truly best policy in {right} of them; mean adaptive steps "
        f"{np.mean([r['adaptive_steps'] for r in rows]):.1f}; confirmation decided in "
        f"{sum(r['phase'] == 'decided' for r in rows)}, shipped {len(shipped)} "
        f"(the truly best in {sum(r['winner'] == r['best'] for r in shipped)})"
    )


if __name__ == "__main__":
    main()
