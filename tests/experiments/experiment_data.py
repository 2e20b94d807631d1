"""Synthetic marketplace data for experiment tests: assigned with the real assigner."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pyarrow as pa

from tianping.events.schema import TABLES
from tianping.experiments.assignment import ExperimentConfig, Variant, assign_batch
from tianping.warehouse.backend import arrow_schema

START = datetime(2024, 6, 1)
END = datetime(2024, 6, 15)  # exclusive; the pre-period is May 18 .. June 1
PRE_START = START - (END - START)
CONFIG = ExperimentConfig(
    "checkout", "checkout", (Variant("control"), Variant("treatment"), Variant("bold", 0.5))
)
CATEGORIES = np.array(["food", "books", "toys"])


def _times(rng, n, lo: datetime, hi: datetime) -> np.ndarray:
    span = int((hi - lo).total_seconds())
    return np.datetime64(lo, "s") + rng.integers(0, span, n).astype("timedelta64[s]")


def make_data(
    rng: np.random.Generator, n_units: int = 1500, lift: float = 0.3
) -> dict[str, pa.Table]:
    """Exposures, orders, refunds, reviews and NPS answers; treatment raises order rates."""
    ids = np.array([f"b{i}" for i in range(n_units)])
    arm = assign_batch(CONFIG, "checkout", ids)
    exposed = _times(rng, n_units, START, END - timedelta(days=3))
    exposures = {
        "experiment": ["checkout"] * n_units,
        "variant": np.array(CONFIG.variant_names)[arm],
        "unit_id": ids,
        "exposed_at": exposed,
    }
    again = rng.random(n_units) < 0.3  # seen twice: only the first exposure counts
    extra_variant = np.array(CONFIG.variant_names)[arm[again]]
    extra_variant[:3] = ["control", "treatment", "control"]  # a few units in two arms
    extra_variant[:3] = np.where(
        extra_variant[:3] == exposures["variant"][again][:3], "bold", extra_variant[:3]
    )
    exposures = {
        "experiment": exposures["experiment"] + ["checkout"] * int(again.sum()),
        "variant": np.concatenate([exposures["variant"], extra_variant]),
        "unit_id": np.concatenate([ids, ids[again]]),
        "exposed_at": np.concatenate([exposed, exposed[again] + np.timedelta64(3600, "s")]),
    }
    buyers = np.concatenate([ids, np.array([f"x{i}" for i in range(100)])])  # x*: never exposed
    taste = rng.gamma(2.0, 1.0, len(buyers))  # buyers differ: what CUPED exploits
    boost = np.ones(len(buyers))
    boost[:n_units] = np.where(arm == 1, 1 + lift, 1.0)
    pre_counts = rng.poisson(taste)
    counts = rng.poisson(taste * boost)
    buyer_of = np.concatenate([np.repeat(buyers, pre_counts), np.repeat(buyers, counts)])
    created = np.concatenate(
        [
            _times(rng, int(pre_counts.sum()), PRE_START, START),
            _times(rng, int(counts.sum()), START, END + timedelta(days=2)),
        ]
    )
    n_orders = len(buyer_of)
    order_ids = np.array([f"o{i}" for i in range(n_orders)])
    orders = {
        "order_id": order_ids,
        "buyer_id": buyer_of,
        "merchant_id": rng.choice(["m1", "m2"], n_orders),
        "category": rng.choice(CATEGORIES, n_orders),
        "amount": [Decimal(int(c)) / 100 for c in rng.integers(100, 50_000, n_orders)],
        "created_at": created,
        "delivery_mode": rng.choice(np.array(["door", "station", None], dtype=object), n_orders),
    }
    refunded = rng.random(n_orders) < 0.15
    refund_orders = order_ids[refunded]
    refunds = {
        "refund_id": [f"r{i}" for i in range(len(refund_orders))],
        "order_id": refund_orders,
        "requested_at": orders["created_at"][refunded] + np.timedelta64(86400, "s"),
        "reason": ["damaged"] * len(refund_orders),
        "requested_amount": [Decimal("1.00")] * len(refund_orders),
    }
    reviewed = rng.random(n_orders) < 0.4
    reviews = {
        "review_id": [f"v{i}" for i in range(int(reviewed.sum()))],
        "order_id": order_ids[reviewed],
        "rating": rng.integers(1, 6, int(reviewed.sum())),
        "created_at": orders["created_at"][reviewed] + np.timedelta64(2 * 86400, "s"),
    }
    responders = rng.choice(buyers, size=n_units // 2)
    nps = {
        "response_id": [f"n{i}" for i in range(len(responders))],
        "buyer_id": responders,
        "score": rng.integers(0, 11, len(responders)),
        "created_at": _times(rng, len(responders), PRE_START, END),
    }
    return {
        name: pa.table(
            {
                k: list(v) if isinstance(v, np.ndarray) and v.dtype == object else v
                for k, v in cols.items()
            }
        )
        for name, cols in {
            "exposures": exposures,
            "orders": orders,
            "refunds": refunds,
            "reviews": reviews,
            "nps": nps,
        }.items()
    }


def load(wh, data: dict[str, pa.Table]) -> None:
    """Write the tables in their documented schema (missing optional columns are null)."""
    for name, table in data.items():
        schema = arrow_schema(TABLES[name], wh.scale)
        for f in schema:
            if f.name not in table.column_names:
                table = table.append_column(f.name, pa.nulls(len(table), f.type))
        wh.replace(name, table.select(schema.names).cast(schema))
