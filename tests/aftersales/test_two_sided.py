"""Two-sided errors of a policy on hand-built batches whose counts are known."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tianping.aftersales import whatif
from tianping.aftersales.policy import DecisionBatch
from tianping.aftersales.policy_table import ACTIONS, PAYERS
from tianping.aftersales.two_sided import (
    APPEALS,
    GROUND_TRUTH,
    NO_SOURCE,
    RETURN_HOURS,
    Truth,
    nearest_rank,
    two_sided,
    wilson,
)
from tianping.errors import InvalidInput

# action, refund paid, payer, asked, abusive
ROWS = [
    ("refund_only", 1000, "merchant", 1000, False),  # honest, paid at once
    ("refund_only", 2000, "platform", 2000, True),  # abusive paid by the platform
    ("partial_refund", 500, "merchant", 1000, True),  # abusive paid by the merchant
    ("return_and_refund", 3000, "merchant", 3000, True),  # abusive, goods come back
    ("return_and_refund", 4000, "merchant", 4000, False),  # honest, paid after the return
    ("reject", 0, None, 700, False),  # honest refused
    ("reject", 0, None, 800, False),  # honest refused
    ("reject", 0, None, 900, True),  # abusive refused
    ("manual_review", 0, None, 600, False),  # to a person
    ("merchant_negotiation", 0, None, 650, True),  # to a person
]


def batch(rows=ROWS) -> DecisionBatch:
    n = len(rows)
    return DecisionBatch(
        policy_name="hand",
        policy_version="v" * 64,
        currency="CNY",
        rule_ids=("r",),
        rule_index=np.zeros(n, dtype=np.int32),
        action_code=np.array([ACTIONS.index(r[0]) for r in rows], dtype=np.int8),
        refund_amount_minor=np.array([r[1] for r in rows], dtype=np.int64),
        requires_return=np.array([r[0] == "return_and_refund" for r in rows]),
        payer_code=np.array([-1 if r[2] is None else PAYERS.index(r[2]) for r in rows]),
    )


ASKED = np.array([r[3] for r in ROWS])
ABUSIVE = np.array([r[4] for r in ROWS])


def test_ground_truth_counts_both_errors():
    e = two_sided(batch(), ASKED, Truth.from_abusive(ABUSIVE))
    assert e.source == GROUND_TRUTH
    assert (e.honest_requests, e.abusive_requests) == (5, 5)
    assert (e.honest_refused.count, e.honest_refused.of, e.honest_refused.rate) == (2, 5, 0.4)
    assert e.honest_refused_minor == 700 + 800
    # The return-and-refund of an abusive claim gets the goods back: not an abusive claim paid.
    assert (e.abusive_paid.count, e.abusive_paid.of) == (2, 5)
    assert e.abusive_paid_minor == 2000 + 500
    assert e.merchant_loss_minor == 500
    assert e.platform_cost_minor == 2000
    assert e.to_a_person == 2
    # Honest paid: one at once (0 h), one after a return (RETURN_HOURS): median 0, p90 the return.
    assert e.honest_paid == 2
    assert (e.time_to_money_median_hours, e.time_to_money_p90_hours) == (0.0, RETURN_HOURS)
    low, high = wilson(2, 5)
    assert (e.honest_refused.low, e.honest_refused.high) == (low, high)
    assert e.honest_refused.low < 0.4 < e.honest_refused.high


def test_without_truth_every_truth_figure_is_unknown_not_zero():
    e = two_sided(batch(), ASKED, None)
    assert e.source == NO_SOURCE
    assert e.honest_refused is None and e.abusive_paid is None and e.merchant_loss_minor is None
    assert e.time_to_money_median_hours is None
    assert (e.platform_cost_minor, e.to_a_person) == (2000, 2)


def test_appeal_outcomes_judge_only_the_appealed_requests():
    ids = np.array([f"r{i}" for i in range(len(ROWS))], dtype=object)
    # r1 upheld (abusive, paid by the platform); r2 upheld (abusive, merchant paid);
    # r5 dismissed (honest, refused); r0 dismissed (honest, paid).
    truth = Truth.from_appeals(ids, {"r1": True, "r2": True, "r5": False, "r0": False})
    assert truth.codes.tolist() == [0, 1, 1, -1, -1, 0, -1, -1, -1, -1]
    e = two_sided(batch(), ASKED, truth)
    assert e.source == APPEALS
    assert (e.honest_refused.count, e.honest_refused.of) == (1, 2)
    assert (e.abusive_paid.count, e.abusive_paid.of, e.abusive_paid.rate) == (2, 2, 1.0)
    assert (e.abusive_paid_minor, e.merchant_loss_minor, e.honest_refused_minor) == (2500, 500, 700)


def test_no_request_of_a_kind_gives_no_rate():
    e = two_sided(batch(ROWS[:1]), ASKED[:1], Truth.from_abusive(ABUSIVE[:1]))
    assert e.abusive_paid.of == 0 and e.abusive_paid.rate is None and e.abusive_paid.low is None


def test_wrong_lengths_are_named():
    with pytest.raises(InvalidInput, match="one value per decision"):
        two_sided(batch(), ASKED[:3], None)
    with pytest.raises(InvalidInput, match="n > 0"):
        wilson(1, 0)


def test_outcome_and_ab_split_carry_the_errors():
    o = whatif.outcome(batch(), ABUSIVE, amount_minor=ASKED)
    assert o.errors == two_sided(batch(), ASKED, Truth.from_abusive(ABUSIVE))
    assert whatif.outcome(batch(), ABUSIVE).errors is None
    experiment = whatif.policy_experiment("split", ["a", "b"])
    buyers = np.array([f"b{i}" for i in range(len(ROWS))])
    arms = whatif.ab_split(experiment, [batch(), batch()], buyers, ABUSIVE, amount_minor=ASKED)
    assert sum(a.outcome.errors.honest_refused.count for a in arms) == 2
    assert sum(a.outcome.errors.abusive_paid_minor for a in arms) == 2500


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Stat. Med. 17,
# table I: Wilson score intervals (method 3) for 81/263, 15/148, 0/20 and 1/29.
NEWCOMBE = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize(("count", "n", "low", "high"), NEWCOMBE)
def test_wilson_matches_the_published_table(count, n, low, high):
    got = wilson(count, n)
    assert got == pytest.approx((low, high), abs=5e-5)


@settings(deadline=None)
@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_matches_statsmodels(pair):
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    count, n = pair
    expected = proportion.proportion_confint(count, n, alpha=0.05, method="wilson")
    assert wilson(count, n) == pytest.approx(expected, abs=1e-12)
    low, high = wilson(count, n)
    assert 0.0 <= low <= count / n <= high <= 1.0


def test_nearest_rank():
    assert nearest_rank(np.array([]), 0.5) is None
    assert nearest_rank(np.arange(1.0, 11.0), 0.9) == 9.0
    assert nearest_rank(np.arange(1.0, 11.0), 0.5) == 5.0


def test_a_row_says_unknown_where_no_request_of_the_kind_is_known():
    from tianping.aftersales.two_sided import error_row

    ids = np.array([f"r{i}" for i in range(len(ROWS))], dtype=object)
    only_honest = Truth.from_appeals(ids, {"r5": False})
    row = error_row("p", two_sided(batch(), ASKED, only_honest), "CNY")
    assert (row["honest_refused"], row["honest_refused_rate"], row["honest_refused_amount"]) == (
        1, 1.0, "7.00"
    )  # fmt: skip
    assert row["abusive_requests"] == 0
    assert row["abusive_paid"] == row["abusive_paid_rate"] == row["merchant_loss"] == "unknown"
    assert row["platform_cost"] == "20.00" and row["time_to_money_median_hours"] == "unknown"
    full = error_row("p", two_sided(batch(), ASKED, Truth.from_abusive(ABUSIVE)), "CNY")
    assert (full["abusive_paid_rate"], full["merchant_loss"]) == (0.4, "5.00")
    assert full["abusive_paid_rate_low"] == round(wilson(2, 5)[0], 4)


def test_counts_add_over_disjoint_windows():
    from tianping.aftersales.two_sided import add, counts, from_counts

    truth = Truth.from_abusive(ABUSIVE)
    first, second = np.arange(4), np.arange(4, len(ROWS))
    parts = [counts(whatif.take(batch(), r), ASKED[r], truth.take(r)) for r in (first, second)]
    assert from_counts(add(*parts)) == two_sided(batch(), ASKED, truth)
    with pytest.raises(InvalidInput, match="judged by"):
        add(parts[0], counts(batch(), ASKED, None))
