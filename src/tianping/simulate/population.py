"""Who is in the simulated marketplace: merchants, products and buyers with hidden traits (pure).

Everything here is ground truth the event tables never show directly: merchant quality, each
product's defect rate, each buyer's activity, price sensitivity and honesty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tianping.simulate.params import MarketParams

HONEST, OPPORTUNIST, PROFESSIONAL = 0, 1, 2
HONESTY_NAMES = ("honest", "opportunist", "professional")
ACCOUNT_AGE_DAYS = 5 * 365  # buyers there at the start joined up to five years before
QUALITY_PIVOT = 0.75  # an "average" merchant: category base rates apply at this quality


@dataclass(frozen=True, slots=True)
class Merchants:
    """Per-merchant truth (arrays indexed by merchant number)."""

    category: np.ndarray
    quality: np.ndarray
    popularity: np.ndarray
    defect_multiplier: np.ndarray
    delivery_days: np.ndarray
    lost_rate: np.ndarray

    @property
    def size(self) -> int:
        """How many merchants."""
        return int(self.quality.size)


@dataclass(frozen=True, slots=True)
class Products:
    """Per-product truth, plus the cumulative popularity used to draw products for orders."""

    merchant: np.ndarray
    category: np.ndarray
    price_fen: np.ndarray
    defect_rate: np.ndarray
    not_as_described_rate: np.ndarray
    popularity: np.ndarray
    lemon: np.ndarray
    cdf: np.ndarray

    @property
    def size(self) -> int:
        """How many products."""
        return int(self.price_fen.size)


@dataclass(frozen=True, slots=True)
class Buyers:
    """Per-buyer truth for one chunk of buyers (global numbers ``first .. first + size - 1``).

    ``joined_day`` counts from the window start: negative for accounts older than the window.
    """

    first: int
    joined_day: np.ndarray
    visit: np.ndarray
    conversion: np.ndarray
    price_sensitivity: np.ndarray
    basket: np.ndarray
    door_preference: np.ndarray
    change_of_mind: np.ndarray
    nps_mean: np.ndarray
    rating_bias: np.ndarray
    red_packet_rate: np.ndarray
    honesty: np.ndarray
    claim_rate: np.ndarray
    ring: np.ndarray | None = None  # global ring number, -1 outside rings (None: no rings drawn)
    serial: np.ndarray | None = None  # serial returners (None: none drawn)

    @property
    def size(self) -> int:
        """How many buyers in this chunk."""
        return int(self.visit.size)


def quality_factor(params: MarketParams, quality: np.ndarray) -> np.ndarray:
    """Multiplier of the category's problem rates for merchants of ``quality`` (1 at 0.75)."""
    return np.exp(params.quality_slope * (QUALITY_PIVOT - quality))


def make_merchants(rng: np.random.Generator, params: MarketParams, n: int) -> Merchants:
    """Draw ``n`` merchants: main category, quality, popularity and service levels."""
    shares = np.array([c.merchant_share for c in params.categories])
    category = rng.choice(shares.size, size=n, p=shares / shares.sum())
    quality = rng.beta(*params.merchant_quality_beta, size=n)
    sigma = params.merchant_popularity_sigma
    popularity = rng.lognormal(-(sigma**2) / 2, sigma, size=n) * (0.5 + quality)
    factor = quality_factor(params, quality)
    delivery = params.delivery_days_base + params.delivery_days_per_quality * (1 - quality)
    delivery = delivery * rng.gamma(8.0, 1 / 8.0, size=n)
    return Merchants(
        category=category,
        quality=quality,
        popularity=popularity,
        defect_multiplier=factor,
        delivery_days=delivery,
        lost_rate=np.minimum(params.lost_parcel_rate * factor**1.5, 0.2),
    )


def make_products(rng: np.random.Generator, params: MarketParams, m: Merchants) -> Products:
    """Draw each merchant's products: long-tailed prices, popularity and defect rates."""
    counts = 1 + rng.poisson(max(params.products_per_merchant - 1, 0), size=m.size)
    merchant = np.repeat(np.arange(m.size), counts)
    category = m.category[merchant]
    median = np.array([c.price_median_fen for c in params.categories], dtype=np.float64)
    sigma = np.array([c.price_sigma for c in params.categories])
    price = rng.lognormal(np.log(median[category]), sigma[category])
    price_fen = np.maximum(np.rint(price), 100).astype(np.int64)
    ps = params.product_popularity_sigma
    popularity = m.popularity[merchant] * rng.lognormal(-(ps**2) / 2, ps, size=merchant.size)
    lemon = rng.random(merchant.size) < params.lemon_share
    ds = params.product_defect_sigma
    noise = rng.lognormal(-(ds**2) / 2, ds, size=merchant.size)
    base = np.array([c.defect_rate for c in params.categories])[category]
    defect = base * m.defect_multiplier[merchant] * noise
    defect = np.minimum(np.where(lemon, defect * params.lemon_multiplier, defect), 0.6)
    nad_base = np.array([c.not_as_described_rate for c in params.categories])[category]
    nad = np.minimum(nad_base * m.defect_multiplier[merchant], 0.5)
    cdf = np.cumsum(popularity)
    return Products(merchant, category, price_fen, defect, nad, popularity, lemon, cdf / cdf[-1])


def make_buyers(rng: np.random.Generator, params: MarketParams, first: int, n: int) -> Buyers:
    """Draw ``n`` buyers' hidden traits (buyer numbers start at ``first``)."""
    joins = rng.random(n) < params.new_buyer_share
    before = -rng.integers(1, ACCOUNT_AGE_DAYS, size=n, endpoint=True)
    joined_day = np.where(joins, rng.integers(0, params.days, size=n), before)
    honesty = _honesty(rng, params, n)
    claim = np.select(
        [honesty == OPPORTUNIST, honesty == PROFESSIONAL],
        [params.opportunist_claim_rate, params.professional_claim_rate],
        0.0,
    )
    com = params.change_of_mind_sigma
    return Buyers(
        first=first,
        joined_day=joined_day,
        visit=rng.beta(*params.visit_beta, size=n),
        conversion=rng.beta(*params.conversion_beta, size=n),
        price_sensitivity=rng.beta(*params.price_sensitivity_beta, size=n),
        basket=rng.gamma(1.0, params.basket_extra_items_mean, size=n),
        door_preference=rng.beta(*params.door_preference_beta, size=n),
        change_of_mind=rng.lognormal(-(com**2) / 2, com, size=n),
        nps_mean=rng.normal(params.nps_mean, params.nps_buyer_sigma, size=n),
        rating_bias=rng.normal(0.0, params.rating_buyer_sigma, size=n),
        red_packet_rate=params.red_packets_per_30_days * rng.gamma(2.0, 0.5, size=n),
        honesty=honesty,
        claim_rate=claim,
    )


def _honesty(rng: np.random.Generator, params: MarketParams, n: int) -> np.ndarray:
    u = rng.random(n)
    out = np.full(n, HONEST, dtype=np.int8)
    out[u < params.opportunist_share + params.professional_share] = OPPORTUNIST
    out[u < params.professional_share] = PROFESSIONAL
    return out


def burst_cells(
    rng: np.random.Generator, params: MarketParams, buyers: Buyers
) -> tuple[np.ndarray, np.ndarray]:
    """(buyer, day) of every day a professional abuser spends in a burst of orders and claims."""
    solo = buyers.honesty == PROFESSIONAL
    if buyers.ring is not None:
        solo &= buyers.ring < 0  # ring members burst together (tianping.simulate.identity)
    pros = np.flatnonzero(solo)
    lo, hi = params.professional_bursts
    n_bursts = rng.integers(lo, hi + 1, size=pros.size)
    who = np.repeat(pros, n_bursts)
    first_day = np.maximum(buyers.joined_day[who], 0)
    start = first_day + (rng.random(who.size) * (params.days - first_day)).astype(np.int64)
    dlo, dhi = params.professional_burst_days
    length = rng.integers(dlo, dhi + 1, size=who.size)
    cell_buyer = np.repeat(who, length)
    offset = np.arange(cell_buyer.size) - np.repeat(np.cumsum(length) - length, length)
    cell_day = np.repeat(start, length) + offset
    keep = cell_day < params.days
    return cell_buyer[keep], cell_day[keep]
