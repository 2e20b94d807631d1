"""Warehouse features for the scores, hand-checked, on DuckDB and Spark (parity)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from tianping.aftersales import features
from tianping.clock import FixedClock

AS_OF = datetime(2024, 2, 1)


def T(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour)


def load_example(wh) -> None:
    """Four orders, three refunds, two reviews; every number below is counted by hand."""
    wh.append("orders", pa.table({
        "order_id": ["o1", "o2", "o3", "o4", "o5"],
        "buyer_id": ["b1", "b1", "b2", "b3", "b3"],
        "merchant_id": ["m1", "m1", "m2", "m2", "m2"],
        "category": ["c1", "c2", "c1", "c1", "c1"],
        "amount": [Decimal("10.50"), Decimal("20.00"), Decimal("5.00"), Decimal("1.00"),
                   Decimal("9.99")],
        "created_at": [T(1), T(2), T(3), T(4), datetime(2024, 3, 1)],  # o5 is after AS_OF
        "product_id": ["p1", "p2", "p1", None, "p1"],
        "coupon_amount": [None] * 5,
        "delivered_at": [T(2), T(8), None, T(5), None],
        "delivery_mode": ["door", "station", None, "door", None],
        "channel": [None] * 5,
    }))  # fmt: skip
    wh.append("refunds", pa.table({
        "refund_id": ["r1", "r2", "r3", "r4"],
        "order_id": ["o1", "o2", "o3", "ghost"],  # r4's order is unknown: not counted
        "requested_at": [T(3), T(9), T(4), T(4)],
        "reason": ["Quality problem", "not received", "Not-as-described", "quality"],
        "requested_amount": [Decimal("1")] * 4,
        "decision": ["refund_only", "appeal_upheld", None, None],
        "refunded_amount": [Decimal("1"), None, Decimal("5"), None],
        "returned": [False, None, True, None],
        "decided_at": [T(3, 5), T(10), None, None],
    }))  # fmt: skip
    wh.append("reviews", pa.table({
        "review_id": ["v1", "v2"], "order_id": ["o1", "o3"], "rating": [5, 2],
        "created_at": [T(5), T(6)],
    }))  # fmt: skip


def by_id(table: pa.Table, key: str) -> dict[str, dict]:
    return {r[key]: r for r in table.to_pylist()}


def test_features_by_hand_on_every_engine(warehouse):
    load_example(warehouse)
    buyers = by_id(warehouse.to_arrow(features.buyer_features_expr(warehouse, AS_OF)), "buyer_id")
    assert set(buyers) == {"b1", "b2", "b3"}
    b1 = buyers["b1"]
    # c1: orders o1, o3, o4 and claims r1, r3 -> 2/3; c2: o2 and r2 -> 1; refund-only: c1 1/3
    assert b1["orders"] == 2 and b1["spend_minor"] == 3050
    assert b1["expected_claims"] == pytest.approx(2 / 3 + 1)
    assert b1["expected_refund_only"] == pytest.approx(1 / 3)
    assert (b1["claims"], b1["refund_only"], b1["appeals_upheld"]) == (2, 1, 1)
    assert (b1["not_received_claims"], b1["misrepresentation_claims"]) == (1, 0)
    assert b1["max_weekly_claims"] == 1  # r1 (Wed 3 Jan) and r2 (Tue 9 Jan) in different weeks
    assert buyers["b2"]["misrepresentation_claims"] == 1 and buyers["b2"]["refund_only"] == 0
    assert buyers["b3"]["claims"] == 0 and buyers["b3"]["orders"] == 1

    merchants = by_id(
        warehouse.to_arrow(features.merchant_features_expr(warehouse, AS_OF)), "merchant_id"
    )
    m1 = merchants["m1"]
    assert (m1["orders"], m1["delivered"], m1["on_time"]) == (2, 2, 1)  # o2 took 6 days
    assert (m1["mode_known"], m1["door"], m1["reviews"], m1["rating_sum"]) == (2, 1, 1, 5)
    assert (m1["quality_refunds"], m1["complaints"], m1["responses"]) == (1, 1, 2)
    assert m1["response_hours_sum"] == pytest.approx(5 + 24)
    m2 = merchants["m2"]
    assert (m2["orders"], m2["quality_refunds"], m2["rating_sum"], m2["responses"]) == (2, 1, 2, 0)

    products = by_id(
        warehouse.to_arrow(features.product_counts_expr(warehouse, AS_OF)), "product_id"
    )
    assert products == {
        "p1": {"product_id": "p1", "category": "c1", "orders": 2, "quality_refunds": 2},
        "p2": {"product_id": "p2", "category": "c2", "orders": 1, "quality_refunds": 0},
    }


def test_buyer_credit_for_chosen_buyers_in_order(duckdb_warehouse):
    load_example(duckdb_warehouse)
    clock = FixedClock(datetime(2024, 2, 1, tzinfo=UTC))
    scores = features.buyer_credit(duckdb_warehouse, buyer_ids=["b3", "new", "b1"], clock=clock)
    assert scores.buyer_id.tolist() == ["b3", "new", "b1"]
    f = features.buyer_features(duckdb_warehouse, buyer_ids=["b3", "new", "b1"], clock=clock)
    assert f.account_age_days.tolist() == [28.0, 0.0, 31.0]
    assert f.orders.tolist() == [1, 0, 2]
    assert int(scores.score[1]) == 600  # no history: a new account
    # b1: 30 (age) + 20 (claim ratio 4/3.67) + 10 (refund-only 3/2.33) - 60 (appeal upheld)
    #     + 20 (no burst) + 0 (one not-received) + 20 (no misrepresentation)
    assert int(scores.score[2]) == 490 + 30 + 20 + 10 - 60 + 20 + 0 + 20


def test_as_of_cuts_history(duckdb_warehouse):
    load_example(duckdb_warehouse)
    early = features.buyer_features(duckdb_warehouse, as_of=datetime(2024, 1, 3, 12))
    assert sorted(early.buyer_id.tolist()) == ["b1", "b2"]
    i = early.buyer_id.tolist().index("b1")
    assert early.claims[i] == 1 and early.appeals_upheld[i] == 0


def test_merchant_quality_and_defects_from_the_warehouse(duckdb_warehouse):
    load_example(duckdb_warehouse)
    q = features.merchant_quality(duckdb_warehouse, merchant_ids=["m1", "unknown"], as_of=AS_OF)
    assert q.merchant_id.tolist() == ["m1", "unknown"]
    assert 0 <= q.score[0] <= 5
    lines = {c.name: c for c in q.explain(1)}
    assert lines["rating"].value == pytest.approx(3.5)  # the platform mean (5 + 2) / 2
    d = features.product_defects(duckdb_warehouse, as_of=AS_OF)
    assert sorted(d.product_id.tolist()) == ["p1", "p2"] and not d.flagged.any()


def test_empty_warehouse_gives_empty_features(duckdb_warehouse):
    f = features.buyer_features(duckdb_warehouse, as_of=AS_OF)
    assert len(f) == 0
    assert len(features.product_counts(duckdb_warehouse, as_of=AS_OF)) == 0
    assert np.asarray(features.buyer_credit(duckdb_warehouse, as_of=AS_OF).score).size == 0
