from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tianping.errors import InvalidInput
from tianping.money import Money, allocate, format_major, to_major, to_minor


@pytest.mark.parametrize(
    ("text", "minor"), [("12.34", 1234), ("0", 0), ("0.1", 10), ("100", 10000), (" 7.05 ", 705)]
)
def test_to_minor_is_exact(text, minor):
    assert to_minor(text) == minor


def test_jpy_has_no_decimals():
    assert to_minor("1200", "JPY") == 1200
    with pytest.raises(InvalidInput, match="more than 0 decimals"):
        to_minor("1.5", "JPY")


@pytest.mark.parametrize("bad", ["12.345", "abc", "", "NaN", "inf"])
def test_to_minor_rejects_what_it_cannot_store_exactly(bad):
    with pytest.raises(InvalidInput):
        to_minor(bad)


def test_floats_are_refused():
    with pytest.raises(InvalidInput, match="float"):
        to_minor(0.1)  # type: ignore[arg-type]


def test_round_trip_and_format():
    assert to_major(1234) == Decimal("12.34")
    assert format_major(5) == "0.05"
    assert str(Money(1999)) == "19.99 CNY"


def test_money_refuses_mixed_currencies():
    with pytest.raises(InvalidInput, match="cannot combine"):
        Money(1, "CNY") + Money(1, "USD")


@given(st.integers(0, 10**12), st.lists(st.integers(0, 1000), min_size=1, max_size=12))
def test_allocate_sums_exactly_and_is_fair(amount, weights):
    if sum(weights) == 0:
        with pytest.raises(InvalidInput):
            allocate(amount, weights)
        return
    parts = allocate(amount, weights)
    assert sum(parts) == amount
    total = sum(weights)
    for part, w in zip(parts, weights, strict=True):
        assert abs(part - amount * w / total) < 1 + 1e-9
