"""Event rows for race tests: units assigned with the real assigner from the store's snapshot,
conversions drawn from known per-arm rates."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pyarrow as pa

from tianping.events.schema import TABLES
from tianping.experiments.assignment import assign_batch
from tianping.warehouse.backend import arrow_schema


def day_of_traffic(
    snapshot, experiment: str, ids: np.ndarray, rates: dict[str, float], day: datetime, rng
) -> dict[str, pa.Table]:
    """Exposures of ``ids`` on ``day`` and one order for each unit that converts."""
    config = snapshot.experiment(experiment)
    arm = assign_batch(snapshot, experiment, ids)
    inside = arm >= 0
    ids, arm = ids[inside], arm[inside]
    names = np.array(config.variant_names)[arm]
    p = np.array([rates[n] for n in names])
    converts = rng.random(len(ids)) < p
    buyers = ids[converts]
    at = np.datetime64((day + timedelta(hours=9)).replace(tzinfo=None), "s")
    exposures = pa.table(
        {
            "experiment": [experiment] * len(ids),
            "variant": names,
            "unit_id": ids,
            "exposed_at": np.full(len(ids), at),
        }
    )
    orders = pa.table(
        {
            "order_id": [f"{experiment}-{day:%m%d}-{b}" for b in buyers],
            "buyer_id": buyers,
            "merchant_id": ["m1"] * len(buyers),
            "category": ["food"] * len(buyers),
            "amount": [Decimal("50.00")] * len(buyers),
            "created_at": np.full(len(buyers), at + np.timedelta64(3600, "s")),
        }
    )
    return {"exposures": exposures, "orders": orders}


def write(wh, batches: list[dict[str, pa.Table]]) -> None:
    """Replace the warehouse tables with the batches' rows (empty tables for the others)."""
    for name in ("exposures", "orders", "refunds", "reviews", "nps"):
        schema = arrow_schema(TABLES[name], wh.scale)
        parts = [b[name] for b in batches if name in b]
        table = (
            pa.concat_tables([_conform(t, schema) for t in parts])
            if parts
            else (schema.empty_table())
        )
        wh.replace(name, table)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    for f in schema:
        if f.name not in table.column_names:
            table = table.append_column(f.name, pa.nulls(len(table), f.type))
    return table.select(schema.names).cast(schema)
