"""Benchmark: expert credit scores of 1M buyers from the warehouse (DuckDB), against hand SQL.

Target (issue 6): scoring 1,000,000 buyers from the warehouse in under 30 s on DuckDB. Timed
end to end: ``features.buyer_credit`` (one Ibis query of the buyers' history, back as Arrow,
then the vectorised expert scorecard). The peer in the same run is one hand-written DuckDB
query of the same features, scored by the same NumPy scorecard; both must give the same scores.

Run: python bench/credit.py [--buyers N] [--orders-per-buyer K] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from _data import START, money

from tianping.aftersales import credit, features
from tianping.events.schema import TABLES
from tianping.settings import Settings
from tianping.warehouse import connect
from tianping.warehouse.backend import arrow_schema

AS_OF = datetime(2024, 7, 1)
DAY_US = 86_400 * 1_000_000
REASONS = np.array(["quality_problem", "not_as_described", "not_received", "change_of_mind"])

HAND_SQL = """
WITH o AS (SELECT * FROM orders WHERE created_at <= $as_of),
c AS (
  SELECT r.requested_at, o.buyer_id, o.category,
    CASE WHEN coalesce(r.refunded_amount, 0) > 0 AND NOT coalesce(r.returned, false) THEN 1 ELSE 0 END AS ro,
    CASE WHEN lower(trim(coalesce(r.decision, ''))) IN ('appeal_upheld', 'merchant_appeal_upheld',
         'rejected_on_appeal', 'buyer_fault') THEN 1 ELSE 0 END AS ap,
    CASE WHEN lower(trim(r.reason)) IN ('not_received', 'empty_parcel', 'empty_package',
         'missing_item', 'lost_parcel', 'lost') THEN 1 ELSE 0 END AS nr,
    CASE WHEN lower(trim(r.reason)) IN ('counterfeit', 'fake', 'not_as_described') THEN 1 ELSE 0 END AS mr
  FROM refunds r JOIN o USING (order_id) WHERE r.requested_at <= $as_of
), rates AS (
  SELECT category, coalesce(cc.n, 0) / count(*) AS claim_rate, coalesce(cc.ro, 0) / count(*) AS ro_rate
  FROM o LEFT JOIN (SELECT category, count(*) AS n, sum(ro) AS ro FROM c GROUP BY 1) cc USING (category)
  GROUP BY category, cc.n, cc.ro
), h AS (
  SELECT buyer_id, count(*) AS orders, CAST(round(sum(amount) * 100) AS BIGINT) AS spend_minor,
    min(created_at) AS first_order_at, sum(claim_rate) AS expected_claims,
    sum(ro_rate) AS expected_refund_only
  FROM o JOIN rates USING (category) GROUP BY buyer_id
), pb AS (
  SELECT buyer_id, count(*) AS claims, sum(ro) AS refund_only, sum(ap) AS appeals_upheld,
    sum(nr) AS not_received_claims, sum(mr) AS misrepresentation_claims
  FROM c GROUP BY buyer_id
), wk AS (
  SELECT buyer_id, max(n) AS max_weekly_claims
  FROM (SELECT buyer_id, date_trunc('week', requested_at) AS w, count(*) AS n FROM c GROUP BY 1, 2)
  GROUP BY buyer_id
)
SELECT h.*, coalesce(claims, 0) AS claims, coalesce(refund_only, 0) AS refund_only,
  coalesce(appeals_upheld, 0) AS appeals_upheld, coalesce(not_received_claims, 0) AS not_received_claims,
  coalesce(misrepresentation_claims, 0) AS misrepresentation_claims,
  coalesce(max_weekly_claims, 0) AS max_weekly_claims
FROM h LEFT JOIN pb USING (buyer_id) LEFT JOIN wk USING (buyer_id)
"""


def ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")


def tables(buyers: int, per_buyer: float, seed: int = 6) -> dict[str, pa.Table]:
    """Every buyer orders at least once; about ``per_buyer`` orders each over 180 days."""
    rng = np.random.default_rng(seed)
    n = int(buyers * per_buyer)
    buyer = np.concatenate([np.arange(buyers), rng.integers(0, buyers, n - buyers)])
    ts = START + rng.integers(0, 180 * DAY_US, n).astype("timedelta64[us]")
    cents = np.round(rng.lognormal(8.5, 0.9, n)).astype(np.int64)
    delivered = rng.random(n) < 0.95
    orders = pa.table({
        "order_id": ids("o", np.arange(n)), "buyer_id": ids("b", buyer),
        "merchant_id": ids("m", rng.integers(0, buyers // 50 + 1, n)),
        "category": pa.array(np.array(["food", "apparel", "home", "electronics", "beauty"])[
            rng.integers(0, 5, n)]),
        "amount": money(cents), "created_at": pa.array(ts),
        "product_id": ids("p", rng.integers(0, buyers // 5 + 1, n)),
        "coupon_amount": pa.nulls(n, pa.decimal128(18, 2)),
        "delivered_at": pa.array(np.where(delivered, ts + np.timedelta64(2, "D"),
                                          np.datetime64("NaT")), pa.timestamp("us")),
        "delivery_mode": pa.array(np.where(rng.random(n) < 0.3, "door", "station")),
        "channel": pa.nulls(n, pa.string()),
        "device_id": pa.nulls(n, pa.string()),
        "address_hash": pa.nulls(n, pa.string()),
        "payment_fingerprint": pa.nulls(n, pa.string()),
    }).cast(arrow_schema(TABLES["orders"]))  # fmt: skip
    # claim-prone buyers claim far more often, so every band of the scorecard is reached
    prone = rng.random(buyers) < 0.03
    chance = np.where(prone[buyer], 0.5, 0.06)
    pick = np.flatnonzero(rng.random(n) < chance)
    k = pick.size
    refunded = rng.random(k) < 0.8
    refunds = pa.table({
        "refund_id": ids("r", np.arange(k)), "order_id": orders["order_id"].take(pick),
        "requested_at": pa.array(ts[pick] + np.timedelta64(3, "D")),
        "reason": pa.array(REASONS[rng.integers(0, REASONS.size, k)]),
        "requested_amount": money(cents[pick]),
        "decision": pa.array(np.where(refunded, "approved", "rejected")),
        "refunded_amount": money(np.where(refunded, cents[pick], 0)),
        "returned": pa.array(rng.random(k) < 0.5),
        "decided_at": pa.array(ts[pick] + np.timedelta64(4, "D")),
    }).cast(arrow_schema(TABLES["refunds"]))  # fmt: skip
    return {"orders": orders, "refunds": refunds}


def hand_scores(wh, as_of: datetime) -> credit.CreditScores:
    table = wh.con.con.execute(HAND_SQL, {"as_of": as_of}).fetch_arrow_table()
    first = table.column("first_order_at").to_numpy(zero_copy_only=False)
    age = (np.datetime64(as_of, "us") - first.astype("datetime64[us]")) / np.timedelta64(1, "D")
    columns = {"buyer_id": table.column("buyer_id").to_numpy(zero_copy_only=False),
               "account_age_days": np.maximum(age, 0.0)}  # fmt: skip
    for name in credit.FEATURE_COLUMNS[1:]:
        columns[name] = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
    return credit.score_buyers(credit.BuyerFeatures.from_columns(columns))


def timed(fn, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buyers", type=int, default=1_000_000)
    ap.add_argument("--orders-per-buyer", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="100k buyers")
    args = ap.parse_args()
    buyers = 100_000 if args.quick else args.buyers
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        data = tables(buyers, args.orders_per_buyer)
        wh = connect(Settings(home=Path(tmp), warehouse=f"duckdb://{Path(tmp) / 'w.duckdb'}"))
        for name, table in data.items():
            wh.append(name, table)
        print(f"{buyers:,} buyers, {data['orders'].num_rows:,} orders, "
              f"{data['refunds'].num_rows:,} refunds loaded in {time.perf_counter() - t:.1f}s")  # fmt: skip
        ours_s, ours = timed(lambda: features.buyer_credit(wh, as_of=AS_OF), args.repeats)
        hand_s, hand = timed(lambda: hand_scores(wh, AS_OF), args.repeats)
        wh.close()
    assert len(ours) == len(hand) == buyers, (len(ours), len(hand))
    by_id = dict(zip(hand.buyer_id.tolist(), hand.score.tolist(), strict=True))
    same = sum(
        by_id[b] == s for b, s in zip(ours.buyer_id.tolist(), ours.score.tolist(), strict=True)
    )
    assert same == buyers, f"{buyers - same} buyers score differently"
    print(f"{'':<26}{'seconds':>9}{'buyers/s':>12}")
    print(f"{'tianping (Ibis, DuckDB)':<26}{ours_s:>9.2f}{buyers / ours_s:>12,.0f}")
    print(f"{'hand-written DuckDB SQL':<26}{hand_s:>9.2f}{buyers / hand_s:>12,.0f}")
    print(
        f"ratio ours / hand SQL: {ours_s / hand_s:.2f}x; scores identical for all {buyers:,} buyers"
    )
    print(f"score percentiles 1/50/99: {np.percentile(ours.score, [1, 50, 99]).tolist()}")
    scaled = ours_s * 1_000_000 / buyers
    print(f"target 1M buyers < 30 s: {scaled:.1f} s per 1M "
          f"({'met' if scaled < 30 else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
