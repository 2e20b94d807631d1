"""The registry of experiment metrics: unit-level (per buyer) definitions, as data (pure).

Every metric is built from *unit features*: per-unit sums over the unit's events from its
first exposure to the end of the analysis window (``docs/experiments.md`` defines each one).
A metric is one of the three statistical shapes of :mod:`tianping.stats`:

- ``mean``: the per-unit average of one feature (e.g. GMV per buyer);
- ``proportion``: the share of units whose 0/1 feature is 1 (conversion);
- ``ratio``: sum of a numerator feature over sum of a denominator feature across units
  (AOV = GMV / orders), analysed with the delta method;
- ``quantile``: a quantile (median, p90) of an order-level value (order value, delivery
  hours) over the arm's orders, with Woodruff's interval clustered by unit.

``higher_is_better`` is the direction a guardrail protects: a guardrail is *hurt* when its
effect goes significantly the other way.
"""

from __future__ import annotations

from dataclasses import dataclass

from tianping.errors import InvalidInput

#: Unit features the warehouse computes per unit (see ``analysis.unit_features``).
FEATURES: dict[str, str] = {
    "orders": "paid orders",
    "gmv": "sum of order amounts (major units)",
    "converted": "1 if the unit placed at least one order, else 0",
    "refunded_orders": "orders with at least one refund request",
    "reviews": "reviews of the unit's orders",
    "rating_sum": "sum of those reviews' ratings (1-5)",
    "nps_responses": "NPS survey answers",
    "nps_score_sum": "sum of NPS scores (0-10)",
    "nps_net": "promoter answers (9-10) minus detractor answers (0-6)",
    "door_orders": "orders delivered to the door",
    "moded_orders": "orders with a known delivery mode",
}

#: Order-level values quantile metrics are taken over.
EVENT_VALUES: dict[str, str] = {
    "order_value": "amount paid per order (major units)",
    "delivery_hours": "hours from payment to delivery (delivered orders only)",
}


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One experiment metric.

    Attributes:
        name: the metric's name in configs and reports.
        type: ``mean``, ``proportion``, ``ratio`` or ``quantile``.
        numerator: the unit feature averaged (or the ratio's numerator; for a quantile, the
            order-level value of :data:`EVENT_VALUES`).
        denominator: the ratio's denominator feature; None for mean and proportion.
        higher_is_better: the good direction (guardrails are hurt the other way).
        doc: one line for people.
        quantile: quantile metrics: the level (0.5 median, 0.9 p90).
    """

    name: str
    type: str
    numerator: str
    denominator: str | None = None
    higher_is_better: bool = True
    doc: str = ""
    quantile: float | None = None

    @property
    def features(self) -> tuple[str, ...]:
        """The per-unit columns the metric sums: its numerator, and its denominator for a ratio
        (none for a quantile metric, which reads events)."""
        if self.type == "quantile":
            return ()
        return (self.numerator,) if self.denominator is None else (self.numerator, self.denominator)


METRICS: dict[str, MetricDef] = {
    m.name: m
    for m in (
        MetricDef("gmv", "mean", "gmv", doc="GMV per unit"),
        MetricDef("orders", "mean", "orders", doc="orders per unit"),
        MetricDef("conversion", "proportion", "converted", doc="share of units with an order"),
        MetricDef("aov", "ratio", "gmv", "orders", doc="average order value: GMV / orders"),
        MetricDef(
            "refund_rate",
            "ratio",
            "refunded_orders",
            "orders",
            higher_is_better=False,
            doc="share of orders with a refund request",
        ),
        MetricDef("review_score", "ratio", "rating_sum", "reviews", doc="mean review rating (1-5)"),
        MetricDef(
            "nps",
            "ratio",
            "nps_net",
            "nps_responses",
            doc="net promoter score as a fraction (-1..1): (promoters - detractors) / answers",
        ),
        MetricDef(
            "nps_score", "ratio", "nps_score_sum", "nps_responses", doc="mean NPS answer (0-10)"
        ),
        MetricDef(
            "door_delivery_rate",
            "ratio",
            "door_orders",
            "moded_orders",
            doc="share of orders (with a known mode) delivered to the door",
        ),
        MetricDef(
            "order_value_median", "quantile", "order_value", quantile=0.5, doc="median order value"
        ),
        MetricDef(
            "order_value_p90",
            "quantile",
            "order_value",
            quantile=0.9,
            doc="90th percentile of order value",
        ),
        MetricDef(
            "delivery_hours_median",
            "quantile",
            "delivery_hours",
            quantile=0.5,
            higher_is_better=False,
            doc="median hours from payment to delivery",
        ),
        MetricDef(
            "delivery_hours_p90",
            "quantile",
            "delivery_hours",
            quantile=0.9,
            higher_is_better=False,
            doc="90th percentile of hours to delivery",
        ),
    )  # fmt: skip
}

#: Consumer-first guardrails every experiment gets unless its config says otherwise.
DEFAULT_GUARDRAILS: tuple[str, ...] = ("nps", "refund_rate", "review_score", "door_delivery_rate")


def get_metric(name: str) -> MetricDef:
    """The metric called ``name``.

    Raises:
        InvalidInput: no such metric (the message lists the known ones).
    """
    try:
        return METRICS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown metric {name!r}; known: {', '.join(METRICS)}", field="metric"
        ) from None


def features_of(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The unit features the metrics need, each once, in registry order."""
    wanted = {f for n in names for f in get_metric(n).features}
    return tuple(f for f in FEATURES if f in wanted)
