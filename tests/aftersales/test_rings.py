"""Abuse rings: components against a brute-force union, bursts, flags and the reason text."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tianping.aftersales import rings

H = 3600.0


def brute_components(n: int, pairs: list[tuple[int, int]]) -> list[set[int]]:
    """Merge sets until no edge joins two of them: the slow, obvious union."""
    groups = [{i} for i in range(n)]
    changed = True
    while changed:
        changed = False
        for a, b in pairs:
            ga = next(g for g in groups if a in g)
            gb = next(g for g in groups if b in g)
            if ga is not gb:
                groups.remove(gb)
                ga |= gb
                changed = True
    return groups


def as_sets(labels: np.ndarray) -> list[set[int]]:
    return [set(np.flatnonzero(labels == k).tolist()) for k in np.unique(labels)]


def test_components_of_a_hand_built_graph():
    pairs = [(0, 1), (1, 2), (4, 5), (6, 6), (7, 3)]
    labels = rings.components(8, np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
    expected = [{0, 1, 2}, {3, 7}, {4, 5}, {6}]
    assert sorted(map(sorted, as_sets(labels))) == sorted(map(sorted, expected))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 25).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=40))
))  # fmt: skip
def test_components_match_the_brute_force_union(case):
    n, pairs = case
    left = np.array([p[0] for p in pairs], dtype=np.int64)
    right = np.array([p[1] for p in pairs], dtype=np.int64)
    got = as_sets(rings.components(n, left, right))
    assert sorted(map(sorted, got)) == sorted(map(sorted, brute_components(n, pairs)))


def edges(*links: tuple[str, str, str, str]) -> rings.Edges:
    cols = list(zip(*links, strict=True))
    return rings.Edges(*(np.array(c, dtype=object) for c in cols))


BUYERS = np.array(["b1", "b2", "b3", "b4", "b5", "b6", "b7"], dtype=object)
ORDERS = np.array([2, 2, 2, 1, 1, 1, 3])


def example(**rules) -> rings.RingFeatures:
    """b1-b2 share a device, b2-b3 a card: one ring of three; b4-b5 a household address."""
    links = edges(("b1", "b2", "device_id", "D9"), ("b2", "b3", "payment_fingerprint", "F7"),
                  ("b1", "b3", "device_id", "D9"), ("b4", "b5", "address_hash", "A1"))  # fmt: skip
    claim_buyer = np.array(["b1", "b2", "b3", "b1", "b4", "b5", "b7", "ghost"], dtype=object)
    claim_time = np.array([0, 10 * H, 40 * H, 900 * H, 0, 1 * H, 0, 0])
    return rings.ring_features(
        BUYERS, ORDERS, links, claim_buyer, claim_time, rings.RingRules(**rules)
    )


def test_ring_features_counted_by_hand():
    f = example()
    assert f.ring_size.tolist() == [3, 3, 3, 2, 2, 1, 1]
    assert f.ring[5] == -1 and f.ring[6] == -1 and f.ring[0] == f.ring[2] != f.ring[3]
    # the ring's 4 claims over its 6 orders; the household's 2 over 2; outsiders 0
    assert f.ring_claim_rate == pytest.approx([4 / 6] * 3 + [1.0, 1.0, 0, 0])
    # within 48 h: claims at 0, 10 h and 40 h (the one at 900 h is alone)
    assert f.ring_burst_claims.tolist() == [3, 3, 3, 2, 2, 0, 0]
    assert f.ring_burst_accounts.tolist() == [3, 3, 3, 2, 2, 0, 0]
    assert f.flagged().tolist() == [True, True, True, False, False, False, False]


def test_a_shorter_burst_window_splits_the_burst():
    f = example(burst_hours=24)
    assert f.ring_burst_claims[0] == 2 and f.ring_burst_accounts[0] == 2
    assert f.flagged()[0]  # two accounts of a ring of three still claimed together
    assert not example(burst_hours=24, min_burst_accounts=3).flagged()[0]


def test_the_reason_names_the_shared_values():
    f = example()
    text = f.reason(0)
    assert text.startswith("shares device D9 and card F7 with 2 other accounts")
    assert "3 of the ring's accounts claimed 3 times in 48 h" in text
    assert (
        f.reason(3)
        == "shares address A1 with 1 other account; 2 of the ring's accounts claimed 2 times in 48 h"
    )
    assert f.reason(5) == ""


def test_links_to_unknown_buyers_are_ignored():
    links = edges(("b1", "zz", "device_id", "D1"))
    f = rings.ring_features(BUYERS, ORDERS, links, np.zeros(0, object), np.zeros(0))
    assert f.ring_size.tolist() == [1] * 7 and not f.flagged().any()


def test_rules_refuse_nonsense():
    with pytest.raises(ValueError, match="cap_accounts"):
        rings.RingRules(cap_accounts=1)
    with pytest.raises(ValueError, match="burst_hours"):
        rings.RingRules(burst_hours=0)


def test_the_ring_scorecard_marks_down_rings_that_claim_together_only():
    from tianping.aftersales import credit

    f = example()
    history = credit.BuyerFeatures.from_columns({"buyer_id": f.buyer_id, "orders": ORDERS})
    plain = credit.score_buyers(history)
    ringed = credit.score_buyers(
        credit.BuyerFeatures(**{**history.__dict__, "rings": f.columns()}), credit.RING_SCORECARD
    )
    # the ring of three (3 accounts in 48 h) loses 300 points; the household pair, 0
    assert (plain.raw - ringed.raw).tolist() == [300, 300, 300, 0, 0, 0, 0]  # before clipping
    assert ringed.explain(0)[-1].reason.startswith("three or more accounts of a ring")
    for i in range(7):
        values = {"orders": float(ORDERS[i]), **{k: float(v[i]) for k, v in f.columns().items()}}
        assert credit.score_one(values, credit.RING_SCORECARD) == ringed.score[i]
    assert (
        credit.score_buyers(history, credit.RING_SCORECARD).score.tolist() == plain.score.tolist()
    )
