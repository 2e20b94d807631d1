"""Metrics on a hand-computed fixture, on DuckDB and on Spark (the parity suite).

Each expected value is derived by hand from tests/fixtures_events.py.
"""

from datetime import date
from decimal import Decimal

import pytest

from fixtures_events import load
from tianping.errors import UsageError
from tianping.metrics.service import METRICS, compute_metrics

JAN = {
    "gmv": Decimal("100.50"),  # 10 + 20 + 30 + 40.50
    "orders": 4,
    "buyers": 3,  # b1, b2, b3
    "aov": Decimal("25.13"),  # 100.50 / 4 = 25.125, half-up
    "dac": 4 / 31,  # Jan 1: b1 b2; Jan 2: b3; Jan 5: b1 — over 31 days
    "dau": 4 / 31,  # activity Jan 1 (2), Jan 2 (1), Jan 5 (1)
    "new_buyers": 3,  # first-ever orders o1, o3, o4
    "packages": 3,  # o1, o2, o4 delivered
    "door_delivery_rate": 2 / 3,  # door o1, o4; station o2
    "refund_rate": 0.5,  # o3 and o4 of 4 orders (o4's two refunds count once)
    "refund_amount_rate": 45 / 100.5,  # 30 + 10 + 5 refunded
    "review_score": 3.5,  # 5 and 2
    "nps": 0.0,  # one promoter (10), one passive (8), one detractor (6)
    "repurchase_30d": 1 / 3,  # b1 bought again on Jan 5; b2 only after 40 days; b3 never
}
FEB = {
    "gmv": Decimal("105.25"),
    "orders": 2,
    "buyers": 2,
    "aov": Decimal("52.63"),  # 52.625 half-up
    "dac": 2 / 21,  # window ends Feb 21 (last NPS response): 21 days of February
    "dau": 3 / 21,  # Feb 1 b1, Feb 10 b2, Feb 20 b4
    "new_buyers": 1,  # b4
    "packages": 1,
    "door_delivery_rate": 1.0,  # o5 door, o6 unknown
    "refund_rate": 0.0,
    "refund_amount_rate": 0.0,
    "review_score": 4.0,
    "nps": 100.0,  # one promoter
    "repurchase_30d": None,  # both windows end after the last order: censored
}


def _close(actual, expected):
    if expected is None or isinstance(expected, Decimal | int):
        return actual == expected
    return actual == pytest.approx(expected, rel=1e-9)


def test_monthly_metrics_match_hand_computation(warehouse):
    load(warehouse)
    rows = compute_metrics(warehouse, "month")
    assert [r["period"] for r in rows] == [date(2024, 1, 1), date(2024, 2, 1)]
    for row, expected in zip(rows, (JAN, FEB), strict=True):
        assert list(row) == ["period", *METRICS]
        wrong = {k: (row[k], v) for k, v in expected.items() if not _close(row[k], v)}
        assert not wrong


def test_slicing_by_category(warehouse):
    load(warehouse)
    rows = compute_metrics(
        warehouse, "month", start=date(2024, 1, 1), end=date(2024, 1, 31), by="category"
    )
    got = {r["category"]: r for r in rows}
    food, toys = got["food"], got["toys"]
    assert (food["gmv"], food["orders"], food["buyers"], food["aov"]) == (
        Decimal("30.00"),
        2,
        1,
        Decimal("15.00"),
    )
    assert food["dac"] == pytest.approx(2 / 31)
    assert (food["refund_rate"], food["review_score"], food["repurchase_30d"]) == (0.0, 5.0, 1.0)
    assert (toys["gmv"], toys["new_buyers"], toys["door_delivery_rate"]) == (
        Decimal("70.50"),
        2,
        1.0,
    )
    assert toys["refund_amount_rate"] == pytest.approx(45 / 70.5)
    assert (toys["refund_rate"], toys["review_score"], toys["repurchase_30d"]) == (1.0, 2.0, 0.0)
    # NPS and DAU have no category: null, not 0, when slicing.
    assert food["nps"] is None and food["dau"] is None


def test_daily_grain_and_window(warehouse):
    load(warehouse)
    rows = compute_metrics(warehouse, "day", start=date(2024, 1, 1), end=date(2024, 1, 2))
    assert [(r["period"], r["gmv"], r["orders"], r["dac"]) for r in rows] == [
        (date(2024, 1, 1), Decimal("40.00"), 2, 2.0),
        (date(2024, 1, 2), Decimal("40.50"), 1, 1.0),
    ]


@pytest.mark.parametrize("grain", ["week", "year"])
def test_totals_do_not_depend_on_grain(duckdb_warehouse, grain):
    load(duckdb_warehouse)
    rows = compute_metrics(duckdb_warehouse, grain)
    assert sum(r["gmv"] for r in rows) == Decimal("205.75")
    assert sum(r["orders"] for r in rows) == 6


def test_metric_of_a_table_with_no_data_is_null(duckdb_warehouse):
    from fixtures_events import tables

    duckdb_warehouse.append("nps", tables()["nps"])
    rows = compute_metrics(duckdb_warehouse, "month")
    assert rows[0]["nps"] == 0.0
    assert all(rows[0][m] is None for m in METRICS if m != "nps")


def test_empty_warehouse_has_no_rows(duckdb_warehouse):
    assert compute_metrics(duckdb_warehouse, "day") == []


def test_bad_arguments_are_clear(duckdb_warehouse):
    with pytest.raises(UsageError, match="unknown grain 'hour'"):
        compute_metrics(duckdb_warehouse, "hour")
    with pytest.raises(UsageError, match="cannot slice by 'amount'"):
        compute_metrics(duckdb_warehouse, "day", by="amount")
    load(duckdb_warehouse)
    with pytest.raises(UsageError, match="is after"):
        compute_metrics(duckdb_warehouse, "day", start=date(2024, 2, 1), end=date(2024, 1, 1))
