"""Bring your own warehouse: one simulated marketplace, reshaped as a company's own tables.

The shapes are deliberately not tianping's: other column names, amounts in fen (minor units,
integers) in one table and exact decimals in another, naive local times in Asia/Shanghai in
some tables and time-zone-aware instants in others, ratings as small integers. The sources file
maps them back; every answer must equal the one from the same data loaded the usual way.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

EVENT_TABLES = ("orders", "refunds", "reviews", "nps", "activity", "exposures")
SHANGHAI = timedelta(hours=8)
FIRST, LAST = date(2024, 4, 8), date(2024, 5, 31)
AS_OF = datetime(2024, 6, 1)


def _local(col: pa.ChunkedArray) -> pa.Array:
    """Naive UTC → naive Asia/Shanghai wall-clock time (no daylight saving since 1991)."""
    return pc.add(col, pa.scalar(SHANGHAI, pa.duration("us")))


def _fen(col: pa.ChunkedArray) -> pa.Array:
    return pa.array(
        [None if x is None else int(Decimal(x) * 100) for x in col.to_pylist()], pa.int64()
    )


def foreign_tables(t: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """tianping's event tables in a company's own shapes (see the module's docstring)."""
    o, r, v, n, a, e = (
        t[k] for k in ("orders", "refunds", "reviews", "nps", "activity", "exposures")
    )
    return {
        "shop_orders": pa.table(
            {
                "id": o["order_id"],
                "user_id": o["buyer_id"],
                "shop_id": o["merchant_id"],
                "cat": o["category"],
                "pay_fen": _fen(o["amount"]),
                "paid_at": _local(o["created_at"]),
                "sku": o["product_id"],
                "coupon_fen": _fen(o["coupon_amount"]),
                "delivered_at": _local(o["delivered_at"]),
                "delivery_mode": o["delivery_mode"],
                "channel": o["channel"],
                # the identity attributes under the company's own names (rings read them)
                "device": o["device_id"],
                "addr_hash": o["address_hash"],
                "card_fp": o["payment_fingerprint"],
            }
        ),
        "after_sales": pa.table(
            {
                "refund_id": r["refund_id"],
                "order_id": r["order_id"],
                "requested_at": pc.assume_timezone(r["requested_at"], "UTC"),
                "reason": r["reason"],
                "requested_amount": r["requested_amount"],
                "decision": r["decision"],
                "refunded_amount": r["refunded_amount"],
                "returned": r["returned"],
                "decided_at": pc.assume_timezone(r["decided_at"], "UTC"),
            }
        ),
        "reviews": pa.table(
            {
                "review_id": v["review_id"],
                "order_id": v["order_id"],
                "stars": pc.cast(v["rating"], pa.int16()),
                "created_at": _local(v["created_at"]),
            }
        ),
        "nps": n,
        "dau": pa.table({"uid": a["buyer_id"], "day": a["date"]}),
        "exposure_log": pa.table(
            {
                "experiment": e["experiment"],
                "variant": e["variant"],
                "user_id": e["unit_id"],
                "ts": _local(e["exposed_at"]),
            }
        ),
    }


#: Where each logical table lives, and how its columns map (shared by every engine).
MAPPINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "orders": (
        "shop_orders",
        {
            "timezone": "Asia/Shanghai",
            "money": "minor",
            "columns": {
                "order_id": "id",
                "buyer_id": "user_id",
                "merchant_id": "shop_id",
                "category": "cat",
                "amount": "pay_fen",
                "created_at": "paid_at",
                "product_id": "sku",
                "coupon_amount": "coupon_fen",
                "device_id": "device",
                "address_hash": "addr_hash",
                "payment_fingerprint": "card_fp",
            },
        },
    ),
    "refunds": ("after_sales", {"currency": "CNY"}),
    "reviews": (
        "reviews",
        {"columns": {"rating": "stars", "created_at": {"timezone": "Asia/Shanghai"}}},
    ),
    "nps": ("nps", {"timezone": "UTC"}),
    "activity": ("dau", {"columns": {"buyer_id": "uid", "date": "day"}}),
    "exposures": (
        "exposure_log",
        {"timezone": "Asia/Shanghai", "columns": {"unit_id": "user_id", "exposed_at": "ts"}},
    ),
}


def sources_yaml(origin: dict[str, dict[str, Any]]) -> str:
    """A sources file: ``origin`` gives each logical table's ``table``/``path``/``sql``."""
    tables = {name: {**origin[name], **mapping} for name, (_, mapping) in MAPPINGS.items()}
    return json.dumps({"tables": tables}, indent=2)  # JSON is YAML


def answers(wh: Any) -> dict[str, Any]:
    """The numbers a team reads: monthly metrics, an experiment analysis with CUPED, a race
    step's aggregates and buyers' credit features, as plain data."""
    from tianping.aftersales.features import buyer_features
    from tianping.experiments import analysis as an
    from tianping.metrics.service import compute_metrics

    out: dict[str, Any] = {"metrics": compute_metrics(wh, grain="month")}
    window = an.AnalysisWindow.from_dates(FIRST, LAST)
    metrics = ("gmv", "orders", "conversion", "aov", "refund_rate", "review_score")
    for name, experiment, cuped in (
        ("analysis", "checkout_red_packet", True),
        ("race_step", "homepage_feed_race", False),
    ):
        agg = an.fetch_aggregates(wh, an.Query(experiment, window, metrics, cuped=cuped))
        rows = sorted(
            agg.rows,
            key=lambda r: tuple(str(v) for k, v in sorted(r.items()) if isinstance(v, str)),
        )
        out[name] = {"rows": rows, "totals": agg.arm_totals}
    features = buyer_features(wh, as_of=AS_OF)
    # every per-buyer column (``rings`` is filled only when scored with ring features)
    fields = [
        f
        for f in features.__dataclass_fields__
        if f != "buyer_id" and getattr(features, f) is not None
    ]
    order = sorted(range(len(features.buyer_id)), key=lambda i: str(features.buyer_id[i]))
    out["credit"] = {
        str(features.buyer_id[i]): {f: getattr(features, f)[i] for f in fields} for i in order
    }
    return _plain(out)


def _plain(value: Any) -> Any:
    """Nested data with Decimals as strings (exact), floats as floats, arrays as lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, Decimal):
        return f"D{value}"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return _plain({f: getattr(value, f) for f in value.__dataclass_fields__})
    return value


def same(a: Any, b: Any, where: str = "") -> list[str]:
    """Where ``a`` and ``b`` differ: money exactly, floats to 1e-9 (relative), the rest equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in same(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items != {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in same(x, y, f"{where}[{i}]")
        ]
    if isinstance(a, float) and isinstance(b, (int, float)):
        if math.isnan(a) and math.isnan(b):
            return []
        return (
            [] if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) else [f"{where}: {a!r} != {b!r}"]
        )
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def write_parquet(tables: dict[str, pa.Table], folder: Path) -> dict[str, Path]:
    """Each foreign table as Parquet; the orders as a Hive-partitioned folder by month."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in tables.items():
        if name == "shop_orders":
            month = pc.strftime(table["paid_at"], "%Y-%m")
            root = folder / name
            for m in sorted(set(month.to_pylist())):
                part = root / f"month={m}"
                part.mkdir(parents=True, exist_ok=True)
                pq.write_table(table.filter(pc.equal(month, m)), part / "part-0.parquet")
            paths[name] = root
        else:
            paths[name] = folder / f"{name}.parquet"
            pq.write_table(table, paths[name])
    return paths
