"""Product-defect signal: Beta-binomial shrinkage, hand-computed tails, empirical-Bayes prior."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tianping.aftersales.defect import (
    MAX_STRENGTH,
    CategoryPriors,
    ProductCounts,
    category_priors,
    defect_signals,
)
from tianping.errors import InvalidInput


def prior(alpha: float, beta: float, rate: float) -> CategoryPriors:
    one = lambda v: np.array([v], dtype=float)  # noqa: E731
    return CategoryPriors(np.array(["c"], dtype=object), one(rate), one(alpha), one(beta),
                          one(1), one(0))  # fmt: skip


def binomial_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def test_tail_of_beta_1_b_is_closed_form():
    # prior Beta(1, 49); 0 quality refunds in 50 orders -> Beta(1, 99); P(theta > 0.04) = 0.96^99
    counts = ProductCounts(["p"], ["c"], [50], [0])
    s = defect_signals(counts, priors=prior(1, 49, 0.02))
    assert s.prob_exceeds[0] == pytest.approx(0.96**99, rel=1e-9)
    assert s.posterior_mean[0] == pytest.approx(1 / 100)
    assert not s.flagged[0]


def test_integer_posterior_tail_matches_the_binomial_identity():
    # Beta(1 + 9, 49 + 91) = Beta(10, 140): P(theta > t) = P(Binomial(149, t) <= 9);
    # Beta(1 + 12, 49 + 88) = Beta(13, 137): P(Binomial(149, t) <= 12)
    counts = ProductCounts(["p", "q"], ["c", "c"], [100, 100], [9, 12])
    s = defect_signals(counts, priors=prior(1, 49, 0.02))
    assert s.prob_exceeds[0] == pytest.approx(binomial_cdf(9, 149, 0.04), rel=1e-9)
    assert s.prob_exceeds[1] == pytest.approx(binomial_cdf(12, 149, 0.04), rel=1e-9)
    assert s.prob_exceeds[0] < 0.95 < s.prob_exceeds[1]
    assert s.flagged.tolist() == [False, True]
    # k = 3: the reference rises to 6%, the second product is no longer sure enough
    s3 = defect_signals(counts, priors=prior(1, 49, 0.02), k=3)
    assert s3.prob_exceeds[1] == pytest.approx(binomial_cdf(12, 149, 0.06), rel=1e-9)
    assert not s3.flagged.any()


def test_method_of_moments_hand_case():
    # two products of 100 orders at 10% and 1%: pooled 5.5%, S = 2 * 100 * 0.045^2 = 0.405,
    # B = 2 * (100 - 100^2/200) * (1 - 1/100) = 99, rho = (S / (mu (1 - mu)) - 1) / B
    p = category_priors(ProductCounts(["a", "b"], ["c", "c"], [100, 100], [10, 1]))
    rho = (0.405 / (0.055 * 0.945) - 1) / 99
    assert p.rate[0] == pytest.approx(0.055)
    assert p.alpha[0] + p.beta[0] == pytest.approx(1 / rho - 1)
    assert p.alpha[0] / (p.alpha[0] + p.beta[0]) == pytest.approx(0.055)


def test_method_of_moments_recovers_a_known_prior(rng):
    n_products = 4000
    theta = rng.beta(2.0, 98.0, n_products)  # strength 100, mean 2%
    n = rng.integers(20, 500, n_products)
    x = rng.binomial(n, theta)
    p = category_priors(ProductCounts(np.arange(n_products).astype(str), ["c"] * n_products, n, x))
    assert p.rate[0] == pytest.approx(0.02, rel=0.05)
    assert p.alpha[0] + p.beta[0] == pytest.approx(100, rel=0.25)


def test_no_extra_spread_gives_the_strongest_prior(rng):
    n = np.full(500, 200)
    x = rng.binomial(n, 0.03)
    p = category_priors(ProductCounts(np.arange(500).astype(str), ["c"] * 500, n, x))
    assert p.alpha[0] + p.beta[0] > 300  # near-binomial spread: a strong prior
    flat = category_priors(ProductCounts(["a", "b"], ["c", "c"], [100, 100], [3, 3]))
    assert flat.alpha[0] + flat.beta[0] == pytest.approx(MAX_STRENGTH)


def test_a_bad_product_among_good_ones_is_flagged(rng):
    n = np.full(300, 200)
    x = rng.binomial(n, 0.02)
    ids = [f"p{i}" for i in range(300)] + ["bad", "unlucky", "thin"]
    counts = ProductCounts(ids, ["toys"] * 303, [*n, 200, 200, 10], [*x, 30, 7, 2])
    s = defect_signals(counts)
    flags = dict(zip(s.product_id, s.flagged, strict=True))
    assert flags["bad"] and not flags["unlucky"] and not flags["thin"]
    assert s.flagged.sum() <= 3  # at most a rare false alarm among 300 good products
    top = s.to_rows(flagged_only=True)[0]
    assert top["product_id"] == "bad" and top["prob_exceeds"] >= 0.95


def test_min_refunds_guard_and_categories_without_refunds():
    counts = ProductCounts(["a", "b", "z"], ["c", "c", "quiet"], [5, 1000, 50], [2, 0, 0])
    s = defect_signals(counts, min_refunds=3)
    assert s.prob_exceeds[0] > 0.95 and not s.flagged[0]  # 2 refunds: too little to judge
    assert s.flagged.tolist() == [False, False, False]
    assert s.prob_exceeds[2] == 0.0 and s.category_rate[2] == 0.0
    assert defect_signals(counts, min_refunds=2).flagged[0]


def test_products_without_orders_and_invalid_input():
    counts = ProductCounts(["a", "b"], ["c", "empty"], [10, 0], [1, 0])
    s = defect_signals(counts)
    assert np.isnan(s.rate[1]) and not s.flagged.any()
    with pytest.raises(InvalidInput, match="between 0 and the orders"):
        ProductCounts(["a"], ["c"], [1], [2])
    with pytest.raises(InvalidInput, match="threshold"):
        defect_signals(counts, threshold=1.0)
    with pytest.raises(InvalidInput, match="no prior for category"):
        defect_signals(counts, priors=prior(1, 49, 0.02))
