"""A small, hand-computable marketplace used by the metrics and ingest tests.

The expected numbers in tests/metrics/test_metrics_layer.py are worked out by hand from these
rows (see the comments there), not produced by the code under test.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa

from tianping.events.schema import TABLES
from tianping.warehouse.backend import arrow_schema


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s)


ORDERS = [
    # order_id, buyer, merchant, category, amount, created_at, delivered_at, mode
    ("o1", "b1", "m1", "food", "10.00", "2024-01-01 10:00", "2024-01-03 10:00", "door"),
    ("o2", "b1", "m1", "food", "20.00", "2024-01-05 10:00", "2024-01-07 10:00", "station"),
    ("o3", "b2", "m2", "toys", "30.00", "2024-01-01 12:00", None, None),
    ("o4", "b3", "m2", "toys", "40.50", "2024-01-02 09:00", "2024-01-04 09:00", "door"),
    ("o5", "b2", "m1", "food", "5.25", "2024-02-10 08:00", "2024-02-11 08:00", "door"),
    ("o6", "b4", "m2", "toys", "100.00", "2024-02-20 23:59:59", None, None),
]
REFUNDS = [
    ("r1", "o3", "2024-01-04 00:00", "not_received", "30.00", "refund_only", "30.00"),
    ("r2", "o4", "2024-01-03 00:00", "quality", "10.00", "partial_refund", "10.00"),
    ("r3", "o4", "2024-01-05 00:00", "quality", "5.00", "partial_refund", "5.00"),
]
REVIEWS = [
    ("v1", "o1", 5, "2024-01-04 00:00"),
    ("v2", "o4", 2, "2024-01-06 00:00"),
    ("v3", "o5", 4, "2024-02-12 00:00"),
]
NPS = [
    ("n1", "b1", 10, "2024-01-10 00:00"),
    ("n2", "b2", 6, "2024-01-11 00:00"),
    ("n3", "b3", 8, "2024-01-12 00:00"),
    ("n4", "b4", 9, "2024-02-21 00:00"),
]
ACTIVITY = [
    ("b1", "2024-01-01"),
    ("b2", "2024-01-01"),
    ("b3", "2024-01-02"),
    ("b1", "2024-01-05"),
    ("b2", "2024-02-10"),
    ("b4", "2024-02-20"),
    ("b1", "2024-02-01"),
]


def tables() -> dict[str, pa.Table]:
    """The fixture as Arrow tables in the warehouse schema."""
    d = Decimal
    rows = {
        "orders": [
            {
                "order_id": o,
                "buyer_id": b,
                "merchant_id": m,
                "category": c,
                "amount": d(a),
                "created_at": _t(ts),
                "product_id": None,
                "coupon_amount": None,
                "delivered_at": _t(dl) if dl else None,
                "delivery_mode": mode,
                "channel": None,
            }
            for o, b, m, c, a, ts, dl, mode in ORDERS
        ],
        "refunds": [
            {
                "refund_id": r,
                "order_id": o,
                "requested_at": _t(ts),
                "reason": why,
                "requested_amount": d(req),
                "decision": dec,
                "refunded_amount": d(paid),
                "returned": False,
                "decided_at": None,
            }
            for r, o, ts, why, req, dec, paid in REFUNDS
        ],
        "reviews": [
            {"review_id": v, "order_id": o, "rating": s, "created_at": _t(ts)}
            for v, o, s, ts in REVIEWS
        ],
        "nps": [
            {"response_id": n, "buyer_id": b, "score": s, "created_at": _t(ts)}
            for n, b, s, ts in NPS
        ],
        "activity": [{"buyer_id": b, "date": date.fromisoformat(day)} for b, day in ACTIVITY],
    }
    return {
        name: pa.Table.from_pylist(r, schema=arrow_schema(TABLES[name])) for name, r in rows.items()
    }


def load(wh) -> None:
    for name, table in tables().items():
        wh.append(name, table)
