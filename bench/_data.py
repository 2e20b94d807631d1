"""Synthetic event tables for benchmarks (vectorised NumPy, seeded)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa

from tianping.events.schema import TABLES
from tianping.warehouse.backend import arrow_schema

START = np.datetime64(datetime(2024, 1, 1), "us")
DAY_US = 86_400 * 1_000_000


def money(cents: np.ndarray) -> pa.Array:
    """Exact decimal(18,2) yuan from integer fen."""
    yuan = cents // 100
    fen = cents % 100
    text = np.char.add(np.char.add(yuan.astype(str), "."), np.char.zfill(fen.astype(str), 2))
    return pa.array(text).cast(pa.decimal128(18, 2))


def ids(prefix: str, n: int) -> pa.Array:
    return pa.array(np.char.add(prefix, np.arange(n).astype(str)))


def order_table(
    rng: np.random.Generator, n: int, *, buyers: int, days: int = 90, offset: int = 0
) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` orders numbered from ``offset`` (so files can be written in chunks), and their
    times, amounts in fen and buyer numbers."""
    buyer = rng.integers(0, buyers, n)
    ts = START + rng.integers(0, days * DAY_US, n).astype("timedelta64[us]")
    cents = np.round(rng.lognormal(9.0, 0.9, n)).astype(np.int64)
    delivered = rng.random(n) < 0.9
    schema = arrow_schema(TABLES["orders"])
    table = pa.table(
        {
            "order_id": pa.array(np.char.add("o", np.arange(offset, offset + n).astype(str))),
            "buyer_id": pa.array(np.char.add("b", buyer.astype(str))),
            "merchant_id": pa.array(np.char.add("m", rng.integers(0, 5000, n).astype(str))),
            "category": pa.array(
                np.array(["food", "apparel", "home", "digital", "beauty"])[rng.integers(0, 5, n)]
            ),
            "amount": money(cents),
            "created_at": pa.array(ts),
            "product_id": pa.nulls(n, pa.string()),
            "coupon_amount": pa.nulls(n, pa.decimal128(18, 2)),
            "delivered_at": pa.array(
                np.where(delivered, ts + np.timedelta64(2, "D"), np.datetime64("NaT")),
                pa.timestamp("us"),
            ),
            "delivery_mode": pa.array(
                np.where(delivered, np.where(rng.random(n) < 0.3, "door", "station"), None)
            ),
            "channel": pa.nulls(n, pa.string()),
            "device_id": pa.nulls(n, pa.string()),
            "address_hash": pa.nulls(n, pa.string()),
            "payment_fingerprint": pa.nulls(n, pa.string()),
        }
    ).cast(schema)
    return table, ts, cents, buyer


def orders(n: int, days: int = 90, seed: int = 7) -> dict[str, pa.Table]:
    """``n`` orders over ``days`` days with refunds, reviews, NPS and activity to match."""
    rng = np.random.default_rng(seed)
    buyers = max(n // 10, 1)
    orders_t, ts, cents, buyer = order_table(rng, n, buyers=buyers, days=days)
    k = n // 12
    pick = rng.choice(n, k, replace=False)
    refunds_t = pa.table(
        {
            "refund_id": ids("r", k),
            "order_id": orders_t["order_id"].take(pick),
            "requested_at": pa.array(ts[pick] + np.timedelta64(3, "D")),
            "reason": pa.array(
                np.array(["quality", "not_received", "change_of_mind"])[rng.integers(0, 3, k)]
            ),
            "requested_amount": money(cents[pick]),
            "decision": pa.nulls(k, pa.string()),
            "refunded_amount": money(cents[pick] // 2),
            "returned": pa.nulls(k, pa.bool_()),
            "decided_at": pa.nulls(k, pa.timestamp("us")),
        }
    ).cast(arrow_schema(TABLES["refunds"]))
    m = n // 4
    rv = rng.choice(n, m, replace=False)
    reviews_t = pa.table(
        {
            "review_id": ids("v", m),
            "order_id": orders_t["order_id"].take(rv),
            "rating": pa.array(rng.integers(1, 6, m)),
            "created_at": pa.array(ts[rv] + np.timedelta64(4, "D")),
        }
    ).cast(arrow_schema(TABLES["reviews"]))
    q = max(n // 50, 1)
    nps_t = pa.table(
        {
            "response_id": ids("n", q),
            "buyer_id": pa.array(np.char.add("b", rng.integers(0, buyers, q).astype(str))),
            "score": pa.array(rng.integers(0, 11, q)),
            "created_at": pa.array(
                START + rng.integers(0, days * DAY_US, q).astype("timedelta64[us]")
            ),
        }
    ).cast(arrow_schema(TABLES["nps"]))
    day = (ts - START).astype("timedelta64[D]").astype(np.int64)
    pairs = np.unique(buyer.astype(np.int64) * 1000 + day)
    activity_t = pa.table(
        {
            "buyer_id": pa.array(np.char.add("b", (pairs // 1000).astype(str))),
            "date": pa.array(np.datetime64("2024-01-01") + (pairs % 1000).astype("timedelta64[D]")),
        }
    ).cast(arrow_schema(TABLES["activity"]))
    return {
        "orders": orders_t,
        "refunds": refunds_t,
        "reviews": reviews_t,
        "nps": nps_t,
        "activity": activity_t,
    }
