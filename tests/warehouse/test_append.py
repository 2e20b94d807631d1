"""Appending to event tables whose schema gained optional columns."""

from __future__ import annotations

import pyarrow as pa


def _order_rows(ids: list[str], **extra) -> pa.Table:
    from datetime import datetime
    from decimal import Decimal

    n = len(ids)
    return pa.table({
        "order_id": ids, "buyer_id": ["b"] * n, "merchant_id": ["m"] * n, "category": ["c"] * n,
        "amount": [Decimal("1.00")] * n, "created_at": [datetime(2024, 1, 1)] * n, **extra,
    })  # fmt: skip


def test_append_fills_absent_optional_columns_and_upgrades_an_older_table(duckdb_warehouse):
    """Orders gained identity columns: old callers still append, an old table gains them."""
    wh = duckdb_warehouse
    wh.append("orders", _order_rows(["o1"]))
    raw = wh.con.con
    for column in ("device_id", "address_hash", "payment_fingerprint"):
        raw.execute(f'ALTER TABLE orders DROP COLUMN "{column}"')  # a table from before them
    wh.append("orders", _order_rows(["o2"], device_id=["D1"]))
    rows = wh.to_arrow(wh.table("orders").order_by("order_id")).to_pylist()
    assert [(r["order_id"], r["device_id"], r["address_hash"]) for r in rows] == [
        ("o1", None, None), ("o2", "D1", None)
    ]  # fmt: skip
