"""Benchmark: `race step` against the one warehouse query it runs, measured in the same run.

Target (issue 5): on 10M exposure rows with 10 arms, a race step is dominated by the
warehouse query (per-arm sufficient statistics of the goal metric and the guardrails); the
ratio step / query alone should stay close to 1. Run: python bench/races.py [--rows N] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
from _data import START, money

from tianping.clock import FixedClock
from tianping.events.schema import TABLES
from tianping.experiments import analysis as an
from tianping.races import service
from tianping.races.models import Race, RaceStep
from tianping.settings import Settings
from tianping.store import Base, init_schema, make_engine, make_sessionmaker
from tianping.warehouse import connect
from tianping.warehouse.backend import arrow_schema

ARMS = [f"s{i}" for i in range(10)]
DAYS = 28
DAY_US = 86_400 * 1_000_000


def tables(rows: int, seed: int = 5) -> dict[str, pa.Table]:
    """``rows`` exposures (units seen 2.5 times on average) and their orders, refunds, reviews."""
    rng = np.random.default_rng(seed)
    units = rows * 2 // 5
    unit = np.concatenate([np.arange(units), rng.integers(0, units, rows - units)])
    arm = unit % len(ARMS)  # every unit keeps one arm (sticky)
    uid = pa.array(np.char.add("b", unit.astype(str)))
    exposed = START + rng.integers(0, DAYS * DAY_US, rows).astype("timedelta64[us]")
    exposures = pa.table(
        {"experiment": pa.array(np.full(rows, "race-bench")),
         "variant": pa.array(np.array(ARMS)[arm]), "unit_id": uid, "exposed_at": exposed}
    ).cast(arrow_schema(TABLES["exposures"]))  # fmt: skip
    n = rows // 3
    buyer = rng.integers(0, units, n)
    ts = START + rng.integers(0, DAYS * DAY_US, n).astype("timedelta64[us]")
    delivered = rng.random(n) < 0.9
    orders = pa.table({
        "order_id": pa.array(np.char.add("o", np.arange(n).astype(str))),
        "buyer_id": pa.array(np.char.add("b", buyer.astype(str))),
        "merchant_id": pa.array(np.char.add("m", rng.integers(0, 500, n).astype(str))),
        "category": pa.array(np.full(n, "food")), "amount": money(rng.integers(100, 50_000, n)),
        "created_at": pa.array(ts), "product_id": pa.nulls(n, pa.string()),
        "coupon_amount": pa.nulls(n, pa.decimal128(18, 2)), "delivered_at": pa.nulls(n, pa.timestamp("us")),
        "delivery_mode": pa.array(np.where(delivered, np.where(rng.random(n) < 0.3, "door", "station"), None)),
        "channel": pa.nulls(n, pa.string()),
        "device_id": pa.nulls(n, pa.string()),
        "address_hash": pa.nulls(n, pa.string()),
        "payment_fingerprint": pa.nulls(n, pa.string()),
    }).cast(arrow_schema(TABLES["orders"]))  # fmt: skip
    k = n // 12
    pick = rng.choice(n, k, replace=False)
    refunds = pa.table({
        "refund_id": pa.array(np.char.add("r", np.arange(k).astype(str))),
        "order_id": orders["order_id"].take(pick), "requested_at": pa.array(ts[pick]),
        "reason": pa.array(np.full(k, "quality")), "requested_amount": money(np.full(k, 100)),
    })  # fmt: skip
    m = n // 4
    rv = rng.choice(n, m, replace=False)
    reviews = pa.table({
        "review_id": pa.array(np.char.add("v", np.arange(m).astype(str))),
        "order_id": orders["order_id"].take(rv), "rating": pa.array(rng.integers(1, 6, m)),
        "created_at": pa.array(ts[rv]),
    })  # fmt: skip
    q = n // 50
    nps = pa.table({
        "response_id": pa.array(np.char.add("n", np.arange(q).astype(str))),
        "buyer_id": pa.array(np.char.add("b", rng.integers(0, units, q).astype(str))),
        "score": pa.array(rng.integers(0, 11, q)),
        "created_at": pa.array(START + rng.integers(0, DAYS * DAY_US, q).astype("timedelta64[us]")),
    })  # fmt: skip
    return {"exposures": exposures, "orders": orders, "refunds": _conform(refunds, "refunds"),
            "reviews": _conform(reviews, "reviews"), "nps": _conform(nps, "nps")}  # fmt: skip


def _conform(t: pa.Table, name: str) -> pa.Table:
    schema = arrow_schema(TABLES[name])
    for f in schema:
        if f.name not in t.column_names:
            t = t.append_column(f.name, pa.nulls(len(t), f.type))
    return t.select(schema.names).cast(schema)


SPEC = {
    "name": "race-bench", "goal_metric": "gmv", "strategies": ARMS, "min_units": 100,
    "best_threshold": 0.9999, "draws": 10_000, "start_date": "2024-01-01",
    "budget": {"period_minor": 10_000_000},
}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--quick", action="store_true", help="1M rows, 2 repeats")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows, repeats = (1_000_000, 2) if args.quick else (args.rows, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp))
        wh = connect(settings)
        t0 = time.perf_counter()
        for name, t in tables(rows).items():
            wh.replace(name, t)
        print(f"loaded {rows:,} exposure rows, {len(ARMS)} arms in {time.perf_counter() - t0:.1f}s")
        engine = make_engine(settings.store)
        init_schema(engine)
        Base.metadata.create_all(engine, tables=[Race.__table__, RaceStep.__table__])
        session = make_sessionmaker(engine)()
        spec = service.parse_spec(SPEC)
        service.create(spec, session=session)
        session.commit()
        clock = FixedClock(datetime(2024, 1, DAYS + 1, tzinfo=UTC))
        window = an.AnalysisWindow.from_dates(date(2024, 1, 1), date(2024, 1, DAYS + 1))
        query = an.Query(
            "race-bench",
            window,
            tuple(dict.fromkeys([spec.goal_metric, *spec.guardrails])),
            cuped=False,
        )
        q_times, s_times = [], []
        an.fetch_aggregates(wh, query)  # warm-up: both measurements then see warm caches
        for i in range(repeats):
            for which in ("query", "step") if i % 2 == 0 else ("step", "query"):
                t0 = time.perf_counter()
                if which == "query":
                    an.fetch_aggregates(wh, query)
                else:
                    row = service.step("race-bench", session=session, warehouse=wh, clock=clock)
                    session.commit()
                (q_times if which == "query" else s_times).append(time.perf_counter() - t0)
        q, s = statistics.median(q_times), statistics.median(s_times)
        core = _core_seconds(spec, an.fetch_aggregates(wh, query), repeats)
        print(f"warehouse query alone: {q:.2f}s (median of {repeats})")
        print(f"race step (query + posteriors, {SPEC['draws']:,} draws x {len(ARMS)} arms, "
              f"weights, budget, store): {s:.2f}s")  # fmt: skip
        print(f"ratio step / query: {s / q:.2f}  (target: close to 1; the query dominates)")
        print(f"pure core alone on the aggregates (posteriors, draws, weights, budget): "
              f"{core * 1000:.1f} ms = {core / q:.2%} of the query")  # fmt: skip
        print(f"last step: leader {row.leader}, {sum(x['n'] for x in row.standings):,} units")
        session.close()
        engine.dispose()
        wh.close()


def _core_seconds(spec, agg, repeats: int) -> float:
    """Median time of the pure part of a step, from the aggregates the query returned."""
    from tianping.experiments.unit_metrics import get_metric
    from tianping.races.budget import budget_step
    from tianping.races.race import Guardrail, race_step

    rules = spec.rules()
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        goal = an.arm_stats(agg, spec.goal_metric, ARMS, cuped=False)
        guards = [
            Guardrail(m, get_metric(m).type, get_metric(m).higher_is_better,
                      an.arm_stats(agg, m, ARMS, cuped=False))
            for m in spec.guardrails
        ]  # fmt: skip
        rng = np.random.default_rng([0, i])
        result = race_step(rules, goal, guardrails=guards, rng=rng)
        budget_step(goal, [10**6] * len(ARMS), total_minor=10**7, rng=rng,
                    active=[s.active for s in result.standings])  # fmt: skip
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


if __name__ == "__main__":
    main()
