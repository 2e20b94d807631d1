"""Interval and box algebra agree with point membership, exactly (no sampling in the code)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from tianping.aftersales import policy_space as space
from tianping.aftersales.policy_space import INF, Interval, Values

ENDS = st.sampled_from([-INF, 0, 1, 2, 3, 4, 5, INF])
# Points on a half-integer grid hit every end, every gap between ends and beyond.
POINTS = [Fraction(k, 2) for k in range(-3, 14)]


@st.composite
def intervals(draw, integer=st.booleans()):
    lo, hi = sorted([draw(ENDS), draw(ENDS)])
    return Interval.make(lo, draw(st.booleans()), hi, draw(st.booleans()), draw(integer))


def member(i: Interval, x: Fraction) -> bool:
    return (not i.integer or x.denominator == 1) and i.contains(x)


@settings(max_examples=300, deadline=None)
@given(a=intervals(integer=st.just(False)), b=intervals(integer=st.just(False)))
def test_real_interval_algebra(a, b):
    inter, diff = a.intersect(b), a.subtract(b)
    for x in POINTS:
        assert member(inter, x) == (member(a, x) and member(b, x))
        assert sum(member(d, x) for d in diff) == (member(a, x) and not member(b, x))
    assert all(not d.empty for d in diff)


@settings(max_examples=300, deadline=None)
@given(a=intervals(integer=st.just(True)), b=intervals(integer=st.just(True)))
def test_integer_interval_algebra(a, b):
    inter, diff = a.intersect(b), a.subtract(b)
    for x in POINTS:
        assert member(inter, x) == (member(a, x) and member(b, x))
        assert sum(member(d, x) for d in diff) == (member(a, x) and not member(b, x))


def test_integer_interval_is_closed_at_whole_ends():
    assert Interval.make(2, False, 5, False, True) == Interval(3, True, 4, True, True)
    assert Interval.make(2, False, 3, False, True).empty


values = st.builds(Values, st.frozensets(st.sampled_from("abcd"), max_size=3), st.booleans())


@settings(max_examples=200, deadline=None)
@given(a=values, b=values)
def test_value_set_algebra(a, b):
    for x in "abcdz":
        assert a.intersect(b).contains(x) == (a.contains(x) and b.contains(x))
        assert sum(d.contains(x) for d in a.subtract(b)) == (a.contains(x) and not b.contains(x))


@settings(max_examples=200, deadline=None)
@given(integer=st.booleans(), data=st.data(), a2=values, b2=values)
def test_box_subtraction_is_an_exact_disjoint_cover(integer, data, a2, b2):
    a1, b1 = data.draw(intervals(st.just(integer))), data.draw(intervals(st.just(integer)))
    a, b = (a1, a2), (b1, b2)
    pieces = space.subtract(a, b)
    for x in POINTS:
        for v in "abcdz":
            in_a = member(a1, x) and a2.contains(v)
            in_b = member(b1, x) and b2.contains(v)
            count = sum(member(p[0], x) and p[1].contains(v) for p in pieces)
            assert count == (in_a and not in_b)


def test_witness_lies_inside_and_avoids_listed_values():
    assert Values(frozenset({"other", "food"}), negated=True).witness() == "other-2"
    i = Interval(2, False, 3, False)
    assert i.contains(i.witness())
    assert Interval(2, False, INF, False).witness() == 3
