"""Ring links built in the warehouse, on DuckDB and Spark: windows, the cap, unknown values."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pyarrow as pa

from tianping.aftersales import ring_features, rings

AS_OF = datetime(2024, 6, 1)
DAY0 = datetime(2024, 1, 1)


def day(d: float) -> datetime:
    return DAY0 + timedelta(days=d)


def load(wh, rows: list[tuple[str, str, float, str | None, str | None, str | None]], claims=()):
    """Orders ``(order, buyer, day, device, address, card)`` and claims ``(order, day)``."""
    n = len(rows)
    wh.append("orders", pa.table({
        "order_id": [r[0] for r in rows], "buyer_id": [r[1] for r in rows],
        "merchant_id": ["m"] * n, "category": ["c"] * n, "amount": [Decimal("10.00")] * n,
        "created_at": [day(r[2]) for r in rows],
        "device_id": [r[3] for r in rows], "address_hash": [r[4] for r in rows],
        "payment_fingerprint": [r[5] for r in rows],
    }))  # fmt: skip
    if claims:
        wh.append("refunds", pa.table({
            "refund_id": [f"r{i}" for i in range(len(claims))],
            "order_id": [c[0] for c in claims],
            "requested_at": [day(c[1]) for c in claims],
            "reason": ["quality_problem"] * len(claims),
            "requested_amount": [Decimal("10.00")] * len(claims),
        }))  # fmt: skip


def links(f: rings.RingFeatures) -> dict[str, int]:
    return {b: int(s) for b, s in zip(f.buyer_id, f.ring_size, strict=True)}


def test_links_follow_the_window_the_cap_and_unknown_values(warehouse):
    rows = [
        ("o1", "b1", 0, "D1", "A1", None),
        ("o2", "b2", 20, "D1", None, None),  # same device 20 days later: linked
        ("o3", "b3", 80, "D1", None, None),  # 60 days after b2's last use: not linked
        ("o4", "b4", 1, None, "", "F1"),  # unknown device, empty address: never shared
        ("o5", "b5", 2, None, "", "F1"),  # same card as b4 within the window: linked
        ("o6", "b6", 3, None, None, None),
        ("o7", "b7", 3, None, None, None),
    ]
    # a parcel locker used by 25 accounts (above the cap of 20) links none of them
    rows += [(f"l{i}", f"k{i:02d}", 5, None, "LOCKER", None) for i in range(25)]
    load(warehouse, rows, claims=[("o1", 3), ("o2", 23.5), ("o4", 4), ("o5", 4.5)])
    f = ring_features.buyer_rings(warehouse, as_of=AS_OF)
    assert list(f.buyer_id) == sorted(f.buyer_id)  # the same order on every engine and run
    size = links(f)
    assert size["b1"] == size["b2"] == 2 and size["b3"] == 1
    assert size["b4"] == size["b5"] == 2
    assert size["b6"] == size["b7"] == 1
    assert all(size[f"k{i:02d}"] == 1 for i in range(25))
    i = list(f.buyer_id).index("b4")
    assert f.reason(i).startswith("shares card F1 with 1 other account")
    assert f.ring_burst_claims[i] == 2 and f.ring_burst_accounts[i] == 2
    assert f.ring_burst_claims[list(f.buyer_id).index("b1")] == 1  # 20.5 days apart


def test_a_wider_window_and_a_higher_cap_link_more(warehouse):
    rows = [("o1", "b1", 0, "D1", None, None), ("o2", "b2", 20, "D1", None, None),
            ("o3", "b3", 80, "D1", None, None)]  # fmt: skip
    rows += [(f"l{i}", f"k{i:02d}", 5, None, "LOCKER", None) for i in range(25)]
    load(warehouse, rows)
    f = ring_features.buyer_rings(
        warehouse, as_of=AS_OF, rules=rings.RingRules(window_days=61, cap_accounts=30)
    )
    size = links(f)
    assert size["b1"] == size["b3"] == 3
    assert size["k00"] == 25


def test_orders_after_as_of_do_not_link(warehouse):
    load(warehouse, [("o1", "b1", 0, "D1", None, None), ("o2", "b2", 1, "D1", None, None)])
    f = ring_features.buyer_rings(warehouse, as_of=day(0.5))
    assert list(f.buyer_id) == ["b1"] and f.ring_size.tolist() == [1]


def test_orders_without_the_attribute_columns_have_no_rings(warehouse):
    warehouse.append("orders", pa.table({
        "order_id": ["o1", "o2"], "buyer_id": ["b1", "b2"], "merchant_id": ["m", "m"],
        "category": ["c", "c"], "amount": [Decimal("1.00")] * 2, "created_at": [day(0), day(1)],
    }))  # fmt: skip
    f = ring_features.buyer_rings(warehouse, as_of=AS_OF)
    assert f.ring_size.tolist() == [1, 1] and not f.flagged().any()


def test_scores_with_rings_mark_down_the_ring_and_no_one_else(warehouse):
    from tianping.aftersales import features

    rows = [(f"o{b[1]}", b, 1, "DRING", None, None) for b in ("b1", "b2", "b3")]
    rows += [("o4", "b4", 1, "D4", None, None), ("o5", "b5", 1, "D5", None, None)]
    load(warehouse, rows, claims=[("o1", 3), ("o2", 3.5), ("o3", 4), ("o4", 3)])
    scores, ring = ring_features.buyer_credit_with_rings(warehouse, as_of=AS_OF)
    plain = features.buyer_credit(warehouse, as_of=AS_OF)
    before = dict(zip(plain.buyer_id, plain.raw, strict=True))  # raw: before clipping to 350
    drop = {b: before[b] - s for b, s in zip(scores.buyer_id, scores.raw, strict=True)}
    assert drop == {"b1": 300, "b2": 300, "b3": 300, "b4": 0, "b5": 0}
    i = list(ring.buyer_id).index("b2")
    assert list(scores.buyer_id) == list(ring.buyer_id)
    assert ring.reason(i) == (
        "shares device DRING with 2 other accounts; 3 of the ring's accounts claimed 3 times in 48 h"
    )
