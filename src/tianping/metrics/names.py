"""The metrics tianping computes, by name (docs/metrics.md defines each): importable without
the warehouse, for the API's schemas and the CLI's help."""

from __future__ import annotations

METRICS = (
    "gmv",
    "orders",
    "buyers",
    "aov",
    "dac",
    "dau",
    "new_buyers",
    "packages",
    "door_delivery_rate",
    "refund_rate",
    "refund_amount_rate",
    "review_score",
    "nps",
    "repurchase_30d",
)
#: Metrics measured in money (major units in reports).
MONEY_METRICS = ("gmv", "aov")
