"""Merchant quality score, 0–5, like a store experience score (pure).

Six components, each turned into a 0–5 sub-score and averaged with documented weights:
review rating (Bayesian-shrunk to the platform mean), quality-related refund rate, on-time
delivery, door delivery, complaint rate and response time. Like a store experience score, each
component is judged against the platform: its distance from the ideal is measured in units of
the platform's distance, so the scale means the same on a marketplace with slow couriers as on
one with fast ones (see :class:`Component`). Every component is shrunk towards
the platform value with a documented prior strength, so a merchant with little data sits near
the platform and a merchant with no data for a component gets the platform value for it.
A component the whole platform has no data for (say, no delivery times recorded) is left out
and the other weights are renormalised. ``docs/aftersales.md`` gives the numbers and reasons.

How the refund service uses it::

    from tianping.aftersales.merchant import MerchantFeatures, quality

    result = quality(features)          # or features.merchant_quality(wh)
    result.score                        # float array, 0..5
    result.explain(i)                   # every component: value, sub-score, weight, n

Platform values come from the batch itself unless :class:`PlatformNorms` are passed, which
lets one merchant be scored against norms computed earlier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tianping.errors import InvalidInput, NotFound

MAX_SCORE = 5.0

#: Count columns of :class:`MerchantFeatures`.
FEATURE_COLUMNS = (
    "orders",
    "reviews",
    "rating_sum",
    "quality_refunds",
    "complaints",
    "delivered",
    "on_time",
    "mode_known",
    "door",
    "responses",
    "response_hours_sum",
)


@dataclass(frozen=True)
class MerchantFeatures:
    """Sufficient statistics per merchant; all fields are arrays of the same length.

    Attributes:
        merchant_id: the merchants' ids.
        orders: paid orders.
        reviews, rating_sum: number of reviews and the sum of their ratings (1–5).
        quality_refunds: refund requests for a quality reason.
        complaints: refund requests for a fulfilment or service fault.
        delivered, on_time: orders with a delivery time, and those delivered in time.
        mode_known, door: orders whose delivery mode is known, and those delivered to the door.
        responses, response_hours_sum: decided refund requests and their total hours from
            request to decision.
    """

    merchant_id: np.ndarray
    orders: np.ndarray
    reviews: np.ndarray
    rating_sum: np.ndarray
    quality_refunds: np.ndarray
    complaints: np.ndarray
    delivered: np.ndarray
    on_time: np.ndarray
    mode_known: np.ndarray
    door: np.ndarray
    responses: np.ndarray
    response_hours_sum: np.ndarray

    def __post_init__(self) -> None:
        ids = np.asarray(self.merchant_id, dtype=object)
        object.__setattr__(self, "merchant_id", ids)
        for name in FEATURE_COLUMNS:
            values = np.asarray(getattr(self, name), dtype=np.float64)
            if values.shape != ids.shape:
                raise InvalidInput(
                    f"feature {name!r} has {values.size} values for {ids.size} merchants",
                    field=name,
                )
            bad = ~(values >= 0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InvalidInput(
                    f"feature {name!r} of merchant {ids[i]!r} is {values[i]}; it must be a "
                    "non-negative number",
                    field=name,
                )
            object.__setattr__(self, name, values)

    def __len__(self) -> int:
        return int(self.merchant_id.size)

    @classmethod
    def from_columns(cls, columns: Mapping[str, Any]) -> MerchantFeatures:
        """Features from a mapping of column name to values (absent columns are 0)."""
        if "merchant_id" not in columns:
            raise InvalidInput("merchant features need a merchant_id column", field="merchant_id")
        ids = np.asarray(columns["merchant_id"], dtype=object)
        unknown = set(columns) - {"merchant_id", *FEATURE_COLUMNS}
        if unknown:
            raise InvalidInput(f"unknown merchant feature(s): {', '.join(sorted(unknown))}")
        return cls(ids, **{c: columns.get(c, np.zeros(ids.size)) for c in FEATURE_COLUMNS})


@dataclass(frozen=True, slots=True)
class Component:
    """One component of the score, judged against the platform as a store experience score is.

    The component's value is ``(numerator + prior_strength * platform) / (denominator +
    prior_strength)``. Its *gap* is its distance from ``ideal`` (0 complaints, 100% on time, a
    5-star rating) in units of the platform's own distance: ``gap = (ideal - value) / (ideal -
    platform)``, so the average merchant has gap 1. The sub-score is 5 at a gap of ``best`` or
    less, 0 at ``worst`` or more and linear in between.
    """

    name: str
    numerator: str
    denominator: str
    weight: float
    ideal: float
    best: float
    worst: float
    prior_strength: float
    doc: str = ""

    def gap(self, value: np.ndarray, platform: float) -> np.ndarray:
        """Distance from the ideal in units of the platform's distance."""
        scale = max(abs(self.ideal - platform), 1e-12)
        return np.abs(self.ideal - value) / scale

    def sub_score(self, value: np.ndarray, platform: float) -> np.ndarray:
        """The component's 0–5 sub-score from its gap to the ideal (in platform gaps, :meth:`gap`):
        5 up to ``best``, 0 from ``worst``, linear between."""
        g = self.gap(value, platform)
        return MAX_SCORE * np.clip((self.worst - g) / (self.worst - self.best), 0.0, 1.0)


#: Gap (in platform units) that earns the full 5 and the one that earns 0, for every component:
#: a merchant 20% closer to the ideal than the platform scores 5, the platform average scores
#: ``5 * (3 - 1) / (3 - 0.8)`` = 4.55, three times the platform's distance scores 0. On the
#: simulated marketplace that puts the median store near 4.55 and about 2% at 4.8 or more.
BEST_GAP, WORST_GAP = 0.8, 3.0

#: The default components; ``docs/aftersales.md`` explains each number.
COMPONENTS: tuple[Component, ...] = (
    Component("rating", "rating_sum", "reviews", 0.30, 5.0, BEST_GAP, WORST_GAP, 20.0,
              "mean review rating, 1–5"),
    Component(
        "quality_refund_rate", "quality_refunds", "orders", 0.25, 0.0, BEST_GAP, WORST_GAP, 200.0,
        "quality-reason refund requests per order",
    ),
    Component(
        "on_time_rate", "on_time", "delivered", 0.15, 1.0, BEST_GAP, WORST_GAP, 50.0,
        "orders delivered within the promise, per delivered order",
    ),
    Component(
        "door_delivery_rate", "door", "mode_known", 0.05, 1.0, BEST_GAP, WORST_GAP, 50.0,
        "orders brought to the door, per order with a known delivery mode",
    ),
    Component(
        "complaint_rate", "complaints", "orders", 0.15, 0.0, BEST_GAP, WORST_GAP, 200.0,
        "fulfilment and service complaints per order",
    ),
    Component(
        "response_hours", "response_hours_sum", "responses", 0.10, 0.0, BEST_GAP, WORST_GAP, 5.0,
        "mean hours from refund request to decision",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class PlatformNorms:
    """Platform value per component (``nan`` when the platform has no data for it)."""

    values: dict[str, float]


def platform_norms(
    features: MerchantFeatures, components: tuple[Component, ...] = COMPONENTS
) -> PlatformNorms:
    """Pooled platform value of each component over all merchants in ``features``."""
    values = {}
    for c in components:
        den = float(getattr(features, c.denominator).sum())
        num = float(getattr(features, c.numerator).sum())
        values[c.name] = num / den if den > 0 else float("nan")
    return PlatformNorms(values)


@dataclass(frozen=True)
class ComponentLine:
    """One component of one merchant's score."""

    name: str
    value: float
    n: float
    sub_score: float
    weight: float
    platform: float


@dataclass(frozen=True)
class QualityScores:
    """Quality scores of a batch of merchants with every component.

    Attributes:
        merchant_id: the merchants, in input order.
        score: 0–5 (float).
        value, sub_score, n: per component name, arrays over merchants (shrunk value,
            0–5 sub-score, and the amount of data behind it).
        weight: the weight each component actually got (0 for a left-out component).
        norms: the platform values used.
    """

    merchant_id: np.ndarray
    score: np.ndarray
    value: dict[str, np.ndarray]
    sub_score: dict[str, np.ndarray]
    n: dict[str, np.ndarray]
    weight: dict[str, float]
    norms: PlatformNorms = field(repr=False)

    def __len__(self) -> int:
        return int(self.score.size)

    def index_of(self, merchant_id: str) -> int:
        """Position of a merchant in the batch."""
        hits = np.flatnonzero(self.merchant_id == merchant_id)
        if hits.size == 0:
            raise NotFound(f"no merchant {merchant_id!r} in the scored batch", field="merchant_id")
        return int(hits[0])

    def explain(self, i: int) -> list[ComponentLine]:
        """Every component of merchant ``i``: shrunk value, data count, sub-score, weight."""
        return [
            ComponentLine(
                name,
                float(self.value[name][i]),
                float(self.n[name][i]),
                float(self.sub_score[name][i]),
                w,
                self.norms.values[name],
            )
            for name, w in self.weight.items()
        ]

    def to_rows(self, *, components: bool = True) -> list[dict[str, Any]]:
        """One dict per merchant: ``merchant_id``, ``score`` and each component's sub-score."""
        rows = []
        for i in range(len(self)):
            row: dict[str, Any] = {
                "merchant_id": self.merchant_id[i],
                "score": round(float(self.score[i]), 2),
            }
            if components:
                for name, w in self.weight.items():
                    if w > 0:
                        row[name] = round(float(self.value[name][i]), 4)
                        row[f"{name}_score"] = round(float(self.sub_score[name][i]), 2)
            rows.append(row)
        return rows


def quality(
    features: MerchantFeatures,
    norms: PlatformNorms | None = None,
    components: tuple[Component, ...] = COMPONENTS,
) -> QualityScores:
    """Score every merchant.

    Args:
        features: sufficient statistics per merchant.
        norms: platform values; computed from ``features`` when not given.
        components: the components and weights; :data:`COMPONENTS` by default.

    Returns:
        The 0–5 score and every component (shrunk value, sub-score, weight), in input order.

    >>> f = MerchantFeatures.from_columns({"merchant_id": ["m"], "orders": [10],
    ...     "reviews": [2], "rating_sum": [10]})
    >>> q = quality(f)
    >>> round(float(q.score[0]), 2), q.weight["on_time_rate"]
    (5.0, 0.0)
    """
    norms = norms or platform_norms(features, components)
    value, sub, n, weight = {}, {}, {}, {}
    total = np.zeros(len(features))
    for c in components:
        platform = norms.values.get(c.name, float("nan"))
        num = getattr(features, c.numerator)
        den = getattr(features, c.denominator)
        n[c.name] = den
        if np.isnan(platform):
            value[c.name] = np.full(len(features), np.nan)
            sub[c.name] = np.full(len(features), np.nan)
            weight[c.name] = 0.0
            continue
        value[c.name] = (num + c.prior_strength * platform) / (den + c.prior_strength)
        sub[c.name] = c.sub_score(value[c.name], platform)
        weight[c.name] = c.weight
        total += c.weight * sub[c.name]
    weight_sum = sum(weight.values())
    if weight_sum == 0:
        raise InvalidInput("no component of the merchant quality score has any data")
    weight = {k: w / weight_sum for k, w in weight.items()}
    return QualityScores(features.merchant_id, total / weight_sum, value, sub, n, weight, norms)
