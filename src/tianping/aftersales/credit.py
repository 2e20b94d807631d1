"""Buyer credit score, 350–950 (higher = more trustworthy), by an expert scorecard (pure).

For a platform with no labels yet: every characteristic of a buyer's history falls in one band,
each band carries documented points (``docs/aftersales.md`` gives each band's reasoning), and the
score is ``base + sum of points`` clipped to 350–950. Everything is vectorised over buyers.

How the refund service uses it::

    from tianping.aftersales.credit import BuyerFeatures, score_buyers

    result = score_buyers(BuyerFeatures.from_columns({...}))   # or features.buyer_credit(wh)
    result.score            # int64 array, 350..950
    result.explain(0)       # per-characteristic value, band, points and reason

From the warehouse, :func:`tianping.aftersales.features.buyer_credit` computes the features in
one grouped query and calls :func:`score_buyers`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from tianping.errors import InvalidInput, NotFound

MIN_SCORE = 350
MAX_SCORE = 950
INF = math.inf

#: Raw history columns a buyer is scored from (see :class:`BuyerFeatures`).
FEATURE_COLUMNS = (
    "account_age_days",
    "orders",
    "spend_minor",
    "claims",
    "expected_claims",
    "refund_only",
    "expected_refund_only",
    "appeals_upheld",
    "max_weekly_claims",
    "not_received_claims",
    "misrepresentation_claims",
)


#: Ring features a scorecard may read (see :mod:`tianping.aftersales.rings`); 0 when unknown.
RING_COLUMNS = ("ring_size", "ring_claim_rate", "ring_burst_claims", "ring_burst_accounts")


@dataclass(frozen=True)
class BuyerFeatures:
    """One buyer per position; every field is an array of the same length.

    Attributes:
        buyer_id: the buyers' ids.
        account_age_days: days from the first order to the scoring date.
        orders: paid orders.
        spend_minor: money paid, in minor units of the marketplace currency.
        claims: refund requests made.
        expected_claims: refund requests a buyer with the same orders would make at each
            category's platform-wide rate (sum over the buyer's orders of the category rate).
        refund_only: refunds paid without a return.
        expected_refund_only: the same expectation for refund-only.
        appeals_upheld: merchant appeals upheld against the buyer.
        max_weekly_claims: most refund requests in one calendar week (Monday–Sunday, UTC).
        not_received_claims: "not received" / "empty parcel" requests.
        misrepresentation_claims: "counterfeit" / "not as described" requests.
    """

    buyer_id: np.ndarray
    account_age_days: np.ndarray
    orders: np.ndarray
    spend_minor: np.ndarray
    claims: np.ndarray
    expected_claims: np.ndarray
    refund_only: np.ndarray
    expected_refund_only: np.ndarray
    appeals_upheld: np.ndarray
    max_weekly_claims: np.ndarray
    not_received_claims: np.ndarray
    misrepresentation_claims: np.ndarray
    #: ring features (:data:`RING_COLUMNS`, from :mod:`tianping.aftersales.rings`); None: none known
    rings: Mapping[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        ids = np.asarray(self.buyer_id, dtype=object)
        object.__setattr__(self, "buyer_id", ids)
        if self.rings is not None:
            rings = {k: np.asarray(self.rings[k], dtype=np.float64) for k in RING_COLUMNS}
            if any(v.shape != ids.shape for v in rings.values()):
                raise InvalidInput("ring features must have one value per buyer", field="rings")
            object.__setattr__(self, "rings", rings)
        for name in FEATURE_COLUMNS:
            values = np.asarray(getattr(self, name), dtype=np.float64)
            if values.shape != ids.shape:
                raise InvalidInput(
                    f"feature {name!r} has {values.size} values for {ids.size} buyers", field=name
                )
            bad = ~(values >= 0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InvalidInput(
                    f"feature {name!r} of buyer {ids[i]!r} is {values[i]}; it must be a "
                    "non-negative number",
                    field=name,
                )
            object.__setattr__(self, name, values)

    def __len__(self) -> int:
        return int(self.buyer_id.size)

    @classmethod
    def from_columns(cls, columns: Mapping[str, Any]) -> BuyerFeatures:
        """Features from a mapping of column name to values (missing history columns are 0).

        >>> f = BuyerFeatures.from_columns({"buyer_id": ["b1"], "orders": [3]})
        >>> len(f), float(f.orders[0])
        (1, 3.0)
        """
        if "buyer_id" not in columns:
            raise InvalidInput("buyer features need a buyer_id column", field="buyer_id")
        ids = np.asarray(columns["buyer_id"], dtype=object)
        unknown = set(columns) - {"buyer_id", *FEATURE_COLUMNS}
        if unknown:
            raise InvalidInput(f"unknown buyer feature(s): {', '.join(sorted(unknown))}")
        return cls(
            buyer_id=ids,
            **{c: columns.get(c, np.zeros(ids.size)) for c in FEATURE_COLUMNS},
        )


@dataclass(frozen=True, slots=True)
class Band:
    """Values ``lower <= x < upper`` earn ``points``; ``reason`` says why."""

    lower: float
    upper: float
    points: int
    reason: str

    @property
    def label(self) -> str:
        """The band as people read it: ``[lo, hi)``, or ``>= lo`` for the open last band."""
        lo = f"{self.lower:g}"
        if self.upper == INF:
            return f">= {lo}"
        return f"[{lo}, {self.upper:g})"


@dataclass(frozen=True)
class Characteristic:
    """One scored input: contiguous bands covering ``[0, inf)``."""

    name: str
    bands: tuple[Band, ...]
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.bands or self.bands[0].lower != 0 or self.bands[-1].upper != INF:
            raise InvalidInput(f"bands of {self.name!r} must cover [0, inf)", field=self.name)
        for a, b in zip(self.bands, self.bands[1:], strict=False):
            if a.upper != b.lower or a.lower >= a.upper:
                raise InvalidInput(
                    f"bands of {self.name!r} must be contiguous and increasing: "
                    f"{a.label} then {b.label}",
                    field=self.name,
                )

    @cached_property
    def lowers(self) -> np.ndarray:
        """Each band's lower bound, for a vectorised band lookup (``searchsorted``)."""
        return np.array([b.lower for b in self.bands])

    @cached_property
    def points(self) -> np.ndarray:
        """Each band's points, aligned with :attr:`lowers`."""
        return np.array([b.points for b in self.bands], dtype=np.int64)

    @cached_property
    def _scalar(self) -> tuple[list[float], list[int]]:
        return [b.lower for b in self.bands], [b.points for b in self.bands]

    def points_of(self, value: float) -> int:
        """The points of one value: :meth:`band_of` without arrays."""
        lowers, points = self._scalar
        return points[bisect_right(lowers, value) - 1]

    def band_of(self, values: np.ndarray) -> np.ndarray:
        """Index of the band each value falls in."""
        return np.searchsorted(self.lowers, values, side="right") - 1


def _b(lower: float, upper: float, points: int, reason: str) -> Band:
    return Band(lower, upper, points, reason)


#: The default expert scorecard; ``docs/aftersales.md`` is its documentation.
EXPERT_CHARACTERISTICS: tuple[Characteristic, ...] = (
    Characteristic(
        "account_age_days",
        (
            _b(0, 30, 0, "new account: nothing known yet"),
            _b(30, 180, 30, "a few months of history"),
            _b(180, 365, 60, "half a year of history"),
            _b(365, 1095, 90, "more than a year of history"),
            _b(1095, INF, 130, "three years or more: abusers rarely keep one account this long"),
        ),
        "days since the first order",
    ),
    Characteristic(
        "orders",
        (
            _b(0, 3, 0, "too few orders to know the buyer"),
            _b(3, 10, 25, "an occasional buyer"),
            _b(10, 50, 50, "a regular buyer"),
            _b(50, 200, 75, "a frequent buyer"),
            _b(200, INF, 100, "a very frequent buyer"),
        ),
        "paid orders",
    ),
    Characteristic(
        "spend_minor",
        (
            _b(0, 10_000, 0, "spent under 100 yuan"),
            _b(10_000, 100_000, 20, "spent 100–1,000 yuan"),
            _b(100_000, 1_000_000, 40, "spent 1,000–10,000 yuan"),
            _b(1_000_000, INF, 60, "spent 10,000 yuan or more"),
        ),
        "money paid, minor units (CNY fen)",
    ),
    Characteristic(
        "claim_ratio",
        (
            _b(0, 0.5, 60, "claims at under half the category norm"),
            _b(0.5, 1.0, 40, "claims below the category norm"),
            _b(1.0, 1.5, 20, "claims about at the category norm"),
            _b(1.5, 2.5, -40, "claims well above the category norm"),
            _b(2.5, 4.0, -110, "claims at 2.5–4 times the category norm"),
            _b(4.0, INF, -180, "claims at 4 times the category norm or more"),
        ),
        "refund requests against the category norm, shrunk: (claims + 2) / (expected + 2)",
    ),
    Characteristic(
        "refund_only_ratio",
        (
            _b(0, 1.0, 30, "refund-only below the category norm"),
            _b(1.0, 2.0, 10, "refund-only near the category norm"),
            _b(2.0, 4.0, -60, "refund-only at 2–4 times the category norm"),
            _b(4.0, INF, -120, "refund-only at 4 times the category norm or more"),
        ),
        "refunds without return against the category norm, shrunk: (n + 2) / (expected + 2)",
    ),
    Characteristic(
        "appeals_upheld",
        (
            _b(0, 1, 20, "no merchant appeal ever upheld against the buyer"),
            _b(1, 2, -60, "one claim found unfounded on appeal"),
            _b(2, 3, -130, "two claims found unfounded on appeal"),
            _b(3, INF, -220, "three or more claims found unfounded on appeal"),
        ),
        "merchant appeals upheld against the buyer",
    ),
    Characteristic(
        "max_weekly_claims",
        (
            _b(0, 3, 20, "no burst of claims"),
            _b(3, 5, -40, "3–4 claims in one week"),
            _b(5, 10, -100, "5–9 claims in one week"),
            _b(10, INF, -180, "10 or more claims in one week: a professional pattern"),
        ),
        "most refund requests in one calendar week",
    ),
    Characteristic(
        "not_received_claims",
        (
            _b(0, 1, 20, "never claimed a parcel missing or empty"),
            _b(1, 2, 0, "one parcel claimed missing or empty: it happens"),
            _b(2, 3, -60, "two parcels claimed missing or empty"),
            _b(3, INF, -150, "three or more missing or empty parcels"),
        ),
        '"not received" / "empty parcel" claims',
    ),
    Characteristic(
        "misrepresentation_claims",
        (
            _b(0, 2, 20, "at most one counterfeit / not-as-described claim"),
            _b(2, 3, -30, "two counterfeit / not-as-described claims"),
            _b(3, 5, -90, "3–4 counterfeit / not-as-described claims"),
            _b(5, INF, -160, "serial counterfeit / not-as-described claims"),
        ),
        '"counterfeit" / "not as described" claims',
    ),
)


#: Ring characteristics, scored by :data:`RING_SCORECARD` (the default card does not read them).
#: ``ring_claimers`` is ``ring_burst_accounts`` of a ring of 3 or more accounts (0 otherwise): two
#: people of one household claiming the same week are not a ring.
RING_CHARACTERISTICS: tuple[Characteristic, ...] = (
    Characteristic(
        "ring_claimers",
        (
            _b(0, 2, 0, "no group of linked accounts claimed together"),
            _b(2, 3, -200, "two accounts of a ring of linked accounts claimed within 48 h"),
            _b(
                3,
                INF,
                -300,
                "three or more accounts of a ring of linked accounts claimed within 48 h",
            ),
        ),
        "accounts sharing a device, address or card with the buyer that claimed in one burst",
    ),
)


@dataclass(frozen=True)
class ExpertScorecard:
    """Base points, characteristics and the score range.

    Attributes:
        base: points everyone starts with; a buyer with no history scores ``base + 110``
            (the bands of a clean record) = 600 with the defaults; the best history reaches 950.
        characteristics: the scored inputs, each with its bands.
        ratio_prior: pseudo-count that shrinks the claim ratios to 1 (the norm) for buyers
            with little history.
        min_score, max_score: the score is clipped to this range.
    """

    base: int = 490
    characteristics: tuple[Characteristic, ...] = EXPERT_CHARACTERISTICS
    ratio_prior: float = 2.0
    min_score: int = MIN_SCORE
    max_score: int = MAX_SCORE

    @property
    def names(self) -> tuple[str, ...]:
        """The scored inputs' names, in the order the scorecard adds them."""
        return tuple(c.name for c in self.characteristics)

    def inputs(self, features: BuyerFeatures) -> dict[str, np.ndarray]:
        """The values the characteristics read: raw features plus the shrunk ratios."""
        m = self.ratio_prior
        derived = {c: getattr(features, c) for c in FEATURE_COLUMNS}
        derived["claim_ratio"] = (features.claims + m) / (features.expected_claims + m)
        derived["refund_only_ratio"] = (features.refund_only + m) / (
            features.expected_refund_only + m
        )
        rings = features.rings or {}
        for name in RING_COLUMNS:
            derived[name] = rings.get(name, np.zeros(len(features)))
        derived["ring_claimers"] = np.where(
            derived["ring_size"] >= 3, derived["ring_burst_accounts"], 0.0
        )
        return {name: derived[name] for name in self.names}


EXPERT_SCORECARD = ExpertScorecard()
#: The expert scorecard plus :data:`RING_CHARACTERISTICS`.
RING_SCORECARD = ExpertScorecard(characteristics=EXPERT_CHARACTERISTICS + RING_CHARACTERISTICS)


@dataclass(frozen=True)
class FeaturePoints:
    """One line of an explanation."""

    name: str
    value: float
    band: str
    points: int
    reason: str


@dataclass(frozen=True)
class CreditScores:
    """Scores of a batch of buyers and the points behind them.

    Attributes:
        buyer_id: the buyers, in input order.
        score: the credit score, 350–950 (int64).
        raw: base plus points before clipping.
        points: points per buyer and characteristic, shape (buyers, characteristics).
        band: band index per buyer and characteristic.
        inputs: the value each characteristic read.
        card: the scorecard used.
    """

    buyer_id: np.ndarray
    score: np.ndarray
    raw: np.ndarray
    points: np.ndarray
    band: np.ndarray
    inputs: dict[str, np.ndarray] = field(repr=False)
    card: ExpertScorecard = field(repr=False)

    def __len__(self) -> int:
        return int(self.score.size)

    def explain(self, i: int) -> list[FeaturePoints]:
        """Why buyer ``i`` got its score: one line per characteristic."""
        lines = []
        for j, c in enumerate(self.card.characteristics):
            band = c.bands[int(self.band[i, j])]
            value = float(self.inputs[c.name][i])
            lines.append(FeaturePoints(c.name, value, band.label, band.points, band.reason))
        return lines

    def index_of(self, buyer_id: str) -> int:
        """Position of a buyer in the batch."""
        hits = np.flatnonzero(self.buyer_id == buyer_id)
        if hits.size == 0:
            raise NotFound(f"no buyer {buyer_id!r} in the scored batch", field="buyer_id")
        return int(hits[0])

    def to_rows(self, *, points: bool = False) -> list[dict[str, Any]]:
        """One dict per buyer: ``buyer_id``, ``score`` and, if asked, ``points_<name>``."""
        rows = []
        for i in range(len(self)):
            row: dict[str, Any] = {"buyer_id": self.buyer_id[i], "score": int(self.score[i])}
            if points:
                for j, name in enumerate(self.card.names):
                    row[f"points_{name}"] = int(self.points[i, j])
            rows.append(row)
        return rows


def score_one(values: Mapping[str, float], card: ExpertScorecard = EXPERT_SCORECARD) -> int:
    """One buyer's score from its feature values (missing ones are 0), without arrays.

    The same number :func:`score_buyers` gives for a batch of one; a refund decision scores
    one buyer at a time, where building arrays cost more than the scoring.

    >>> score_one({})
    600

    Raises:
        InvalidInput: a value is negative or not a number, or not a known feature.
    """
    unknown = set(values) - set(FEATURE_COLUMNS) - set(RING_COLUMNS)
    if unknown:
        raise InvalidInput(f"unknown buyer feature(s): {', '.join(sorted(unknown))}")
    v: dict[str, float] = {}
    for name in (*FEATURE_COLUMNS, *RING_COLUMNS):
        x = float(values.get(name, 0.0))
        if not x >= 0:
            raise InvalidInput(
                f"feature {name!r} is {x}; it must be a non-negative number", field=name
            )
        v[name] = x
    m = card.ratio_prior
    v["claim_ratio"] = (v["claims"] + m) / (v["expected_claims"] + m)
    v["refund_only_ratio"] = (v["refund_only"] + m) / (v["expected_refund_only"] + m)
    v["ring_claimers"] = v["ring_burst_accounts"] if v["ring_size"] >= 3 else 0.0
    raw = card.base + sum(c.points_of(v[c.name]) for c in card.characteristics)
    return int(min(max(raw, card.min_score), card.max_score))


def score_buyers(features: BuyerFeatures, card: ExpertScorecard = EXPERT_SCORECARD) -> CreditScores:
    """Score every buyer with an expert scorecard.

    Args:
        features: the buyers' history (arrays).
        card: the scorecard; :data:`EXPERT_SCORECARD` by default.

    Returns:
        Scores (350–950), per-characteristic points and bands, in input order.

    >>> f = BuyerFeatures.from_columns({"buyer_id": ["new"]})
    >>> int(score_buyers(f).score[0])
    600
    """
    inputs = card.inputs(features)
    n = len(features)
    bands = np.empty((n, len(card.characteristics)), dtype=np.int64)
    points = np.empty_like(bands)
    for j, c in enumerate(card.characteristics):
        bands[:, j] = c.band_of(inputs[c.name])
        points[:, j] = c.points[bands[:, j]]
    raw = card.base + points.sum(axis=1)
    score = np.clip(raw, card.min_score, card.max_score)
    return CreditScores(features.buyer_id, score, raw, points, bands, inputs, card)
