"""The segment search on the warehouse: one grouped pass gives the in-memory cube exactly."""

from datetime import date

import numpy as np
import pytest

from tianping.errors import UsageError
from tianping.metrics.segments import cube_of_orders
from tianping.metrics.why import explain_segments, segment_cube
from tianping.simulate.shocks import PlantedWorld, Shock, orders_table, planted_orders

BEFORE = (date(2024, 5, 1), date(2024, 5, 14))
AFTER = (date(2024, 5, 15), date(2024, 5, 28))
DIMS = ("category", "channel", "delivery_mode", "buyer_type")
SHOCK = {"channel": "live_stream", "delivery_mode": "door"}


@pytest.fixture
def planted(warehouse):
    world = PlantedWorld(orders_per_day=3000, days=(14, 14),
                         shocks=(Shock(SHOCK, order_value=0.7),))  # fmt: skip
    orders = planted_orders(world, 5)
    warehouse.append("orders", orders_table(orders, BEFORE[0], AFTER[0]))
    return warehouse, orders


def test_the_warehouse_cube_is_the_orders_grouped(planted):
    wh, o = planted
    cube = segment_cube(wh, BEFORE, AFTER, DIMS)
    idx = [o.dimensions.index(d) for d in DIMS]
    mem = cube_of_orders(DIMS, tuple(o.labels[i] for i in idx), o.period, o.day,
                         o.codes[:, idx], o.amount_minor, o.days)  # fmt: skip

    def cells(c):
        labels = [np.asarray(c.labels[j], dtype=object)[c.codes[:, j]] for j in range(len(DIMS))]
        return sorted(zip(c.period.tolist(), c.day.tolist(), *[x.tolist() for x in labels],
                          c.orders.tolist(), c.gmv_minor.tolist(), strict=True))  # fmt: skip

    assert cells(cube) == cells(mem)


def test_the_planted_segment_is_found_on_the_warehouse(planted):
    wh, _ = planted
    e = explain_segments(wh, BEFORE, AFTER, DIMS)
    assert e.causes[0].segment == (("channel", "live_stream"), ("delivery_mode", "door"))
    assert e.causes[0].rate < 0


@pytest.mark.parametrize(
    ("before", "after", "dims", "field"),
    [
        (BEFORE, (date(2024, 5, 10), date(2024, 5, 20)), DIMS, "after"),
        ((BEFORE[1], BEFORE[0]), AFTER, DIMS, "before"),
        (BEFORE, AFTER, ("city",), "dimensions"),
        (BEFORE, AFTER, ("channel", "channel"), "dimensions"),
    ],
)
def test_bad_questions_are_named(duckdb_warehouse, before, after, dims, field):
    with pytest.raises(UsageError) as err:
        explain_segments(duckdb_warehouse, before, after, dims)
    assert err.value.field == field
