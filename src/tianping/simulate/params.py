"""The marketplace simulator's parameters and their calibrated defaults (pure: no I/O).

Every default is explained in ``docs/simulator.md``; the numbers here and there must agree.
Rates are per order unless the name says otherwise; money is in fen (CNY minor units).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from tianping.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Category:
    """One product category and what its items are like.

    Attributes:
        name: category name as it appears in ``orders.category``.
        merchant_share: share of merchants whose main category this is.
        price_median_fen: median list price (prices are log-normal: long right tail).
        price_sigma: log-scale spread of list prices.
        defect_rate: chance an item from an average merchant is defective.
        not_as_described_rate: chance an item from an average merchant differs from its listing.
        change_of_mind_rate: chance an average buyer returns a good item within 7 days.
    """

    name: str
    merchant_share: float
    price_median_fen: int
    price_sigma: float
    defect_rate: float
    not_as_described_rate: float
    change_of_mind_rate: float


DEFAULT_CATEGORIES: tuple[Category, ...] = (
    Category("apparel", 0.24, 7900, 0.60, 0.020, 0.030, 0.080),
    Category("beauty", 0.12, 6900, 0.60, 0.015, 0.015, 0.030),
    Category("electronics", 0.10, 16900, 0.90, 0.030, 0.015, 0.030),
    Category("home", 0.16, 5900, 0.80, 0.025, 0.020, 0.025),
    Category("food", 0.16, 4500, 0.50, 0.025, 0.010, 0.012),
    Category("baby", 0.08, 8900, 0.70, 0.020, 0.015, 0.030),
    Category("sports", 0.08, 10900, 0.70, 0.020, 0.020, 0.045),
    Category("books", 0.06, 3900, 0.40, 0.010, 0.008, 0.025),
)

#: Relative order intensity Monday..Sunday (normalised to mean 1 when used).
DEFAULT_WEEKDAY_FACTORS: tuple[float, ...] = (0.96, 0.94, 0.95, 0.97, 1.02, 1.10, 1.06)

#: Share of a day's sessions starting in each UTC hour (Beijing = UTC+8: the evening peak
#: 20:00-23:00 CST is 12:00-15:00 UTC).
DEFAULT_HOURLY_PROFILE: tuple[float, ...] = (
    3.0, 4.0, 5.0, 5.5, 5.5, 6.0, 5.5, 5.0, 4.5, 5.0, 5.5, 6.0,
    7.5, 8.5, 8.0, 6.0, 3.5, 1.5, 0.8, 0.5, 0.4, 0.4, 0.6, 1.3,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Festival:
    """A shopping festival: a pre-sale ramp, the peak day and a hangover.

    Attributes:
        name: e.g. ``618``.
        month, day: the peak day each year.
        peak: order-intensity multiplier on the peak day.
        presale_days: days before the peak whose intensity ramps linearly up to ``presale_peak``.
        presale_peak: multiplier on the day before the peak.
        hangover_days: days after the peak with multiplier ``hangover``.
        hangover: multiplier after the peak (buyers bought ahead).
        strength_by_year: ``(year, s)`` pairs: in that year every multiplier ``m`` of the
            festival becomes ``1 + s·(m − 1)`` (1.5: a festival half as strong again, a planted
            change for the aligned comparison to find; years not listed have ``s = 1``).
    """

    name: str
    month: int
    day: int
    peak: float = 3.0
    presale_days: int = 10
    presale_peak: float = 1.6
    hangover_days: int = 3
    hangover: float = 0.8
    strength_by_year: tuple[tuple[int, float], ...] = ()


DEFAULT_FESTIVALS: tuple[Festival, ...] = (Festival("618", 6, 18), Festival("double11", 11, 11))


@dataclass(frozen=True, slots=True)
class MarketParams:
    """Every knob of the generative model (see ``docs/simulator.md`` for the reasoning).

    Buyers: ``visit`` and ``conversion`` are Beta distributions (a, b) of each buyer's daily
    chance to visit and chance to order on a visit; the rest are per-buyer traits.
    """

    start: date = date(2024, 4, 1)
    days: int = 90
    categories: tuple[Category, ...] = DEFAULT_CATEGORIES
    weekday_factors: tuple[float, ...] = DEFAULT_WEEKDAY_FACTORS
    hourly_profile: tuple[float, ...] = DEFAULT_HOURLY_PROFILE
    festivals: tuple[Festival, ...] = DEFAULT_FESTIVALS
    festival_visit_share: float = 0.4
    # buyers
    new_buyer_share: float = 0.15
    visit_beta: tuple[float, float] = (2.5, 14.0)
    conversion_beta: tuple[float, float] = (2.5, 25.0)
    max_conversion: float = 0.95
    extra_orders_per_order_day: float = 0.05
    basket_extra_items_mean: float = 0.15
    price_sensitivity_beta: tuple[float, float] = (2.0, 2.0)
    door_preference_beta: tuple[float, float] = (2.0, 2.4)
    change_of_mind_sigma: float = 0.5
    # honesty
    opportunist_share: float = 0.02
    opportunist_claim_rate: float = 0.2
    professional_share: float = 0.001
    professional_claim_rate: float = 0.75
    professional_bursts: tuple[int, int] = (1, 3)
    professional_burst_days: tuple[int, int] = (3, 7)
    professional_burst_conversion: float = 0.6
    professional_burst_extra_orders: float = 1.0
    # organised abuse (off by default; the ``rings`` scenario turns it on)
    ring_share: float = 0.0
    ring_size: tuple[int, int] = (3, 8)
    ring_bursts: tuple[int, int] = (2, 4)
    ring_burst_days: tuple[int, int] = (1, 2)
    ring_join_burst: float = 0.85
    ring_claim_rate: float = 0.8
    ring_shared_device: float = 0.8
    ring_shared_address: float = 0.7
    ring_shared_payment: float = 0.6
    serial_returner_share: float = 0.0
    serial_returner_multiplier: float = 8.0
    # identity attributes of orders (device, shipping address, payment method)
    attribute_missing_share: float = 0.02
    public_device_share: float = 0.02
    public_devices: int = 20
    parcel_lockers: int = 200
    household_share: float = 0.04
    household_shared_payment: float = 0.3
    # merchants and products
    merchant_quality_beta: tuple[float, float] = (6.0, 2.0)
    merchant_popularity_sigma: float = 1.2
    products_per_merchant: float = 8.0
    product_popularity_sigma: float = 1.0
    product_defect_sigma: float = 0.5
    lemon_share: float = 0.02
    lemon_multiplier: float = 5.0
    quality_slope: float = 1.5
    lost_parcel_rate: float = 0.004
    # delivery
    delivery_days_base: float = 1.5
    delivery_days_per_quality: float = 3.0
    door_extra_days: float = 0.3
    # red packets
    red_packets_per_30_days: float = 1.0
    red_packet_values_fen: tuple[int, ...] = (300, 500, 1000, 2000, 3000)
    red_packet_value_weights: tuple[float, ...] = (0.30, 0.30, 0.25, 0.10, 0.05)
    red_packet_threshold_multiples: tuple[int, ...] = (0, 5, 10)
    red_packet_threshold_weights: tuple[float, ...] = (0.3, 0.4, 0.3)
    red_packet_validity_days: tuple[int, ...] = (7, 15, 30)
    red_packet_validity_weights: tuple[float, ...] = (0.4, 0.4, 0.2)
    red_packet_use_base: float = 0.55
    red_packet_use_per_sensitivity: float = 0.4
    # channels
    channels: tuple[str, ...] = ("app", "mini_program", "live_stream", "web")
    channel_weights: tuple[float, ...] = (0.70, 0.14, 0.12, 0.04)
    # after-sales claims: chance an honest buyer claims when the cause is real
    claim_defective: float = 0.8
    claim_not_as_described: float = 0.7
    claim_not_received: float = 0.95
    partial_request_share: float = 0.25
    # the platform's legacy refund decisions
    auto_approve_below_fen: int = 5000
    detect_professional: float = 0.5
    detect_opportunist: float = 0.15
    reject_share: float = 0.05
    partial_decision_share: float = 0.10
    # reviews
    review_rate: float = 0.25
    review_rate_unhappy: float = 0.6
    rating_mean: float = 5.1
    rating_noise: float = 0.6
    rating_buyer_sigma: float = 0.3
    rating_quality_slope: float = 0.8
    rating_defect_penalty: float = 2.8
    rating_not_as_described_penalty: float = 1.8
    slow_delivery_days: float = 3.0
    rating_slow_penalty_per_day: float = 0.15
    # NPS
    nps_invite_rate: float = 0.08
    nps_response_rate: float = 0.35
    nps_mean: float = 8.4
    nps_buyer_sigma: float = 1.0
    nps_noise: float = 1.6
    nps_defect_penalty: float = 2.5
    nps_not_as_described_penalty: float = 1.5
    nps_lost_penalty: float = 2.5
    nps_door_bonus: float = 0.4
    nps_slow_penalty_per_day: float = 0.15

    @property
    def category_names(self) -> tuple[str, ...]:
        """The categories' names, in the order category indices refer to."""
        return tuple(c.name for c in self.categories)

    def with_window(self, start: date | None, days: int | None) -> MarketParams:
        """A copy with another window (``None`` keeps the current value)."""
        return replace(self, start=start or self.start, days=self.days if days is None else days)


#: What the calibrated defaults produce (baseline scenario, 800k buyers over 90 days from
#: 2024-04-01, seed 0; see docs/simulator.md). Emergent figures, not inputs: tests check that
#: small simulations land within sampling error of them.
CALIBRATED_OUTCOMES: dict[str, float] = {
    "orders_per_buyer": 1.282,
    "refund_rate": 0.0768,  # orders with a refund request / orders
    "nps": 33.6,  # NPS points over all responses
    "repurchase_30d": 0.437,  # first orders followed by another order within 30 days
    "review_score": 4.59,
    "aov_yuan": 116.1,
    "door_delivery_rate": 0.458,
    "red_packet_order_share": 0.178,  # orders with a red packet redeemed
}


def check_size(buyers: int, merchants: int, days: int) -> None:
    """Reject sizes the model cannot simulate, naming the field.

    Raises:
        InvalidInput: a size is not positive or too large for fixed-width ids.
    """
    for name, value, cap in (
        ("buyers", buyers, 10**9 - 1),
        ("merchants", merchants, 10**7 - 1),
        ("days", days, 3660),
    ):
        if not isinstance(value, int) or value < 1:
            raise InvalidInput(f"{name} must be a positive whole number, not {value!r}", field=name)
        if value > cap:
            raise InvalidInput(f"{name} must be at most {cap}, not {value}", field=name)
