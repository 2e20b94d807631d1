"""Product-defect signal: "a quality problem judged from data" (pure).

A product's quality-reason refund rate ``theta`` gets a Beta prior from its category, fitted
by the method of moments (empirical Bayes) across the category's products; with ``x`` quality
refunds in ``n`` orders the posterior is ``Beta(alpha + x, beta + n - x)``. The product is
flagged when ``P(theta > k * category_rate | data) >= threshold`` (defaults: ``k = 2``,
threshold 0.95) and it has at least ``min_refunds`` quality refunds. A category with no
quality refunds at all has no reference rate: its products get probability 0 and no flag. ``docs/aftersales.md`` gives
the estimator and the reasons for the defaults.

How the refund service uses it::

    from tianping.aftersales.defect import ProductCounts, defect_signals

    signals = defect_signals(ProductCounts(product_id, category, orders, quality_refunds))
    signals.flagged[i], signals.prob_exceeds[i]     # or features.product_defects(wh)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from tianping.errors import InvalidInput

#: Bounds of the prior strength ``alpha + beta`` (in pseudo-orders).
MIN_STRENGTH = 2.0
MAX_STRENGTH = 1000.0


@dataclass(frozen=True)
class ProductCounts:
    """Orders and quality refunds per product; arrays of the same length."""

    product_id: np.ndarray
    category: np.ndarray
    orders: np.ndarray
    quality_refunds: np.ndarray

    def __post_init__(self) -> None:
        ids = np.asarray(self.product_id, dtype=object)
        object.__setattr__(self, "product_id", ids)
        object.__setattr__(self, "category", np.asarray(self.category, dtype=object))
        n = np.asarray(self.orders, dtype=np.float64)
        x = np.asarray(self.quality_refunds, dtype=np.float64)
        object.__setattr__(self, "orders", n)
        object.__setattr__(self, "quality_refunds", x)
        if not (self.category.shape == n.shape == x.shape == ids.shape):
            raise InvalidInput("product counts must all have one value per product")
        bad = ~((x >= 0) & (n >= x))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInput(
                f"product {ids[i]!r} has {x[i]:g} quality refunds for {n[i]:g} orders; "
                "refunds must be between 0 and the orders",
                field="quality_refunds",
            )

    def __len__(self) -> int:
        return int(self.product_id.size)


@dataclass(frozen=True)
class CategoryPriors:
    """The Beta prior of each category.

    Attributes:
        category: category names.
        rate: pooled quality refund rate (the reference ``k`` multiplies).
        alpha, beta: the prior's parameters; ``alpha + beta`` is its strength.
        products, orders: what the prior was fitted on.
    """

    category: np.ndarray
    rate: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    products: np.ndarray
    orders: np.ndarray

    def lookup(self, categories: np.ndarray) -> np.ndarray:
        """Index of each category in this table; raises for a category it does not have."""
        order = np.argsort(self.category)
        sorted_cats = self.category[order]
        pos = np.searchsorted(sorted_cats, categories)
        pos = np.clip(pos, 0, max(len(sorted_cats) - 1, 0))
        found = sorted_cats[pos] == categories if len(sorted_cats) else np.zeros(0, bool)
        if not np.all(found):
            missing = categories[~found][0]
            raise InvalidInput(f"no prior for category {missing!r}", field="category")
        return order[pos]


def category_priors(
    counts: ProductCounts, *, min_strength: float = MIN_STRENGTH, max_strength: float = MAX_STRENGTH
) -> CategoryPriors:
    """Fit each category's Beta prior by the method of moments (Kleinman's estimator).

    With products ``j`` of ``n_j`` orders and observed rates ``p_j``, pooled rate ``mu`` and
    ``W = sum n_j``, the weighted spread ``S = sum n_j (p_j - mu)^2`` has expectation
    ``mu (1 - mu) [(K - 1) + rho * B]`` with ``B = sum (n_j - n_j^2 / W)(1 - 1 / n_j)``, where
    ``rho = 1 / (alpha + beta + 1)`` is the intra-product correlation. Solving gives ``rho``;
    the strength ``alpha + beta = 1 / rho - 1`` is clipped to ``[min_strength, max_strength]``
    (a category whose products show no extra spread gets ``max_strength``).
    """
    cats, inv = np.unique(counts.category.astype(str), return_inverse=True)
    has = counts.orders > 0
    n = np.where(has, counts.orders, 1.0)  # placeholder 1 for empty products, weighted out
    x = counts.quality_refunds
    w = has.astype(np.float64)
    w_total = np.bincount(inv, weights=counts.orders, minlength=cats.size)
    x_total = np.bincount(inv, weights=x, minlength=cats.size)
    k = np.bincount(inv, weights=w, minlength=cats.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.where(w_total > 0, x_total / w_total, 0.0)
        spread = np.bincount(inv, weights=w * n * (x / n - mu[inv]) ** 2, minlength=cats.size)
        shares = w * (n - n**2 / w_total[inv]) * (1 - 1 / n)
        b = np.bincount(inv, weights=np.where(has, shares, 0.0), minlength=cats.size)
        rho = (spread / (mu * (1 - mu)) - (k - 1)) / b
    rho = np.where(np.isfinite(rho), rho, 0.0)
    rho = np.clip(rho, 1 / (max_strength + 1), 1 / (min_strength + 1))
    strength = 1 / rho - 1
    return CategoryPriors(cats.astype(object), mu, mu * strength, (1 - mu) * strength, k, w_total)


@dataclass(frozen=True)
class DefectSignals:
    """The signal for each product, in input order.

    Attributes:
        rate: the product's observed quality refund rate (``nan`` with no orders).
        category_rate: its category's pooled rate.
        posterior_mean: shrunk rate, ``(alpha + x) / (alpha + beta + n)``.
        prob_exceeds: ``P(theta > k * category_rate | data)``.
        flagged: the product is judged defective.
    """

    product_id: np.ndarray
    category: np.ndarray
    orders: np.ndarray
    quality_refunds: np.ndarray
    rate: np.ndarray
    category_rate: np.ndarray
    posterior_mean: np.ndarray
    prob_exceeds: np.ndarray
    flagged: np.ndarray
    k: float
    threshold: float

    def __len__(self) -> int:
        return int(self.product_id.size)

    def to_rows(self, *, flagged_only: bool = False) -> list[dict[str, Any]]:
        """One dict per product (optionally only flagged ones), most suspicious first; ties
        by product id, so every engine's answer lists them in one order."""
        ids = [str(p) for p in self.product_id]
        order = sorted(range(len(ids)), key=lambda i: (-self.prob_exceeds[i], ids[i]))
        rows = []
        for i in order:
            if flagged_only and not self.flagged[i]:
                continue
            rows.append(
                {
                    "product_id": self.product_id[i],
                    "category": self.category[i],
                    "orders": int(self.orders[i]),
                    "quality_refunds": int(self.quality_refunds[i]),
                    "rate": round(float(self.rate[i]), 4),
                    "category_rate": round(float(self.category_rate[i]), 4),
                    "posterior_mean": round(float(self.posterior_mean[i]), 4),
                    "prob_exceeds": round(float(self.prob_exceeds[i]), 4),
                    "flagged": bool(self.flagged[i]),
                }
            )
        return rows


def defect_signals(
    counts: ProductCounts,
    *,
    k: float = 2.0,
    threshold: float = 0.95,
    min_refunds: int = 3,
    priors: CategoryPriors | None = None,
) -> DefectSignals:
    """Judge every product's quality from its refunds against its category.

    Args:
        counts: orders and quality refunds per product.
        k: a product is defective when its rate exceeds ``k`` times its category's.
        threshold: posterior probability needed to flag.
        min_refunds: fewest quality refunds a flagged product must have.
        priors: category priors; fitted from ``counts`` when not given.

    Returns:
        Rates, posterior means, tail probabilities and flags, in input order.
    """
    if k <= 0 or not 0 < threshold < 1:
        raise InvalidInput("k must be positive and threshold strictly between 0 and 1")
    priors = priors or category_priors(counts)
    idx = priors.lookup(counts.category.astype(str).astype(object))
    n, x = counts.orders, counts.quality_refunds
    tiny = np.finfo(np.float64).tiny
    a = np.maximum(priors.alpha[idx], tiny) + x
    b = np.maximum(priors.beta[idx], tiny) + n - x
    reference = k * priors.rate[idx]
    # A category without quality refunds gives no reference rate to exceed; no rate exceeds 1.
    usable = (reference > 0) & (reference < 1)
    prob = np.where(usable, stats.beta.sf(np.where(usable, reference, 0.5), a, b), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n > 0, x / n, np.nan)
    flagged = (prob >= threshold) & (x >= min_refunds)
    return DefectSignals(
        counts.product_id, counts.category, n, x, rate, priors.rate[idx], a / (a + b), prob,
        flagged, k, threshold,
    )  # fmt: skip
