"""Compute the headline metrics per period from the warehouse.

``compute_metrics`` runs the grouped queries of :mod:`tianping.metrics.layer` (only aggregates
come back), then derives ratios in exact decimals or floats. A metric whose table holds no data
at all is ``None``; a count in a period without rows is 0 and a ratio with a zero denominator
is ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tianping.errors import UsageError
from tianping.metrics import layer
from tianping.metrics.explain import Decomposition, Mover, Snapshot, decompose, rank_movers
from tianping.metrics.names import METRICS, MONEY_METRICS  # noqa: F401 - goals read them here
from tianping.metrics.periods import check_grain, days_in_window
from tianping.warehouse.backend import Warehouse

CENT = Decimal("0.01")


def data_window(wh: Warehouse, start: date | None, end: date | None) -> tuple[date, date] | None:
    """The query window: given bounds, else the first and last day with any data."""
    if start is not None and end is not None:
        return _ordered(start, end)
    lows, highs = [], []
    for table, column in (
        ("orders", "created_at"),
        ("refunds", "requested_at"),
        ("reviews", "created_at"),
        ("nps", "created_at"),
        ("activity", "date"),
    ):
        if wh.has_table(table):
            row = wh.execute(layer.time_range(wh.table(table), column)).iloc[0]
            if row["lo"] is not None and row["lo"] == row["lo"]:
                lows.append(_as_date(row["lo"]))
                highs.append(_as_date(row["hi"]))
    if not lows:
        return None
    return _ordered(start or min(lows), end or max(highs))


def _ordered(start: date, end: date) -> tuple[date, date]:
    if start > end:
        raise UsageError(f"--from {start} is after --to {end}", field="from")
    return start, end


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return value.to_pydatetime().date()  # pandas Timestamp


def compute_metrics(
    wh: Warehouse,
    grain: str = "day",
    start: date | None = None,
    end: date | None = None,
    by: str | None = None,
) -> list[dict[str, Any]]:
    """Headline metrics per period (and per ``by`` value), ordered by period then ``by``.

    Args:
        wh: the warehouse.
        grain: ``day``, ``week``, ``month`` or ``year``.
        start, end: first and last UTC day (inclusive); default: the data's range.
        by: a column of the orders table to slice by (see ``layer.BY_COLUMNS``); NPS and DAU,
            which have no such column, are ``None`` when slicing.

    Returns:
        One dict per row: ``period`` (date of the period's first day), the ``by`` value if any,
        then one key per metric in :data:`METRICS` (money as ``Decimal`` with 2 places).
    """
    check_grain(grain)
    if by is not None and by not in layer.BY_COLUMNS:
        raise UsageError(
            f"cannot slice by {by!r}; use one of {', '.join(layer.BY_COLUMNS)}", field="by"
        )
    bounds = data_window(wh, start, end)
    if bounds is None:
        return []
    w = layer.Window(bounds[0], bounds[1], grain)
    parts = _run_aggregates(wh, w, by)
    return _derive(
        parts,
        w,
        by,
        loaded={t: wh.has_table(t) for t in ("orders", "refunds", "reviews", "nps", "activity")},
    )


def _run_aggregates(wh: Warehouse, w: layer.Window, by: str | None) -> dict[str, list[dict]]:
    parts: dict[str, list[dict]] = {}
    if wh.has_table("orders"):
        orders = wh.table("orders")
        data_end = wh.execute(orders.created_at.max())
        parts["orders"] = _records(
            wh, layer.orders_aggregates(orders, wh.table("refunds"), w, by, _py_datetime(data_end))
        )
        if w.grain != "day":
            parts["dac"] = _records(wh, layer.daily_buyers(orders, w, by))
    if wh.has_table("reviews"):
        parts["reviews"] = _records(
            wh, layer.review_aggregates(wh.table("reviews"), wh.table("orders"), w, by)
        )
    if by is None and wh.has_table("nps"):
        parts["nps"] = _records(wh, layer.nps_aggregates(wh.table("nps"), w))
    if by is None and wh.has_table("activity"):
        parts["dau"] = _records(wh, layer.daily_active(wh.table("activity"), w))
    return parts


def _py_datetime(value: Any) -> datetime | None:
    if value is None or value != value:
        return None
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value


def _records(wh: Warehouse, expr) -> list[dict]:
    frame = wh.execute(expr)
    rows = frame.to_dict("records")
    for r in rows:
        r["period"] = _as_date(r["period"])
        for k, v in r.items():
            if v is not None and isinstance(v, float) and v != v:
                r[k] = None
    return rows


def _derive(
    parts: dict[str, list[dict]], w: layer.Window, by: str | None, loaded: dict[str, bool]
) -> list[dict[str, Any]]:
    keyed: dict[tuple, dict[str, dict]] = {}
    for name, rows in parts.items():
        for r in rows:
            key = (r["period"], r.get(by) if by else None)
            keyed.setdefault(key, {})[name] = r
    out = []
    for (period, by_value), found in sorted(
        keyed.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))
    ):
        days = days_in_window(period, w.grain, w.start, w.end)
        row: dict[str, Any] = {"period": period}
        if by:
            row[by] = by_value
        row.update(_metric_values(found, days, loaded, by, w.grain))
        out.append(row)
    return out


def _metric_values(
    found: dict[str, dict], days: int, loaded: dict[str, bool], by: str | None, grain: str
) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(METRICS)
    if loaded["orders"]:
        o = found.get("orders", {})
        n = int(o.get("orders") or 0)
        gmv = _money(o.get("gmv"))
        values.update(
            gmv=gmv,
            orders=n,
            buyers=int(o.get("buyers") or 0),
            aov=(gmv / n).quantize(CENT, ROUND_HALF_UP) if n else None,
            dac=_dac(found, o, days, grain),
            new_buyers=int(o.get("new_buyers") or 0),
            packages=int(o.get("packages") or 0),
            door_delivery_rate=_ratio(o.get("door"), o.get("mode_known")),
            refund_rate=_ratio(o.get("refunded_orders"), n) if loaded["refunds"] else None,
            refund_amount_rate=(
                _ratio(_money(o.get("refunded_amount")), gmv) if loaded["refunds"] else None
            ),
            repurchase_30d=_ratio(o.get("repurchase_num"), o.get("repurchase_den")),
        )
    if loaded["reviews"]:
        r = found.get("reviews", {})
        values["review_score"] = _ratio(r.get("rating_sum"), r.get("rating_n"))
    if loaded["nps"] and by is None:
        p = found.get("nps", {})
        values["nps"] = _nps(p)
    if loaded["activity"] and by is None:
        values["dau"] = int(found.get("dau", {}).get("dau_sum") or 0) / days if days else None
    return values


def _dac(found: dict[str, dict], orders_row: dict, days: int, grain: str) -> float | None:
    if not days:
        return None
    if grain == "day":  # one day: DAC is the day's distinct buyers
        return int(orders_row.get("buyers") or 0) / days
    return int(found.get("dac", {}).get("dac_sum") or 0) / days


def _money(value: Any) -> Decimal:
    if value is None:
        return Decimal("0.00")
    return Decimal(str(value)).quantize(CENT)


def _ratio(num: Any, den: Any) -> float | None:
    if den is None or float(den) == 0:
        return None
    return float(num or 0) / float(den)


def _nps(p: dict) -> float | None:
    n = int(p.get("responses") or 0)
    if not n:
        return None
    return 100.0 * (int(p.get("promoters") or 0) - int(p.get("detractors") or 0)) / n


def explain_gmv(
    wh: Warehouse,
    before: tuple[date, date],
    after: tuple[date, date],
    dimension: str = "category",
    top: int = 10,
) -> tuple[Decomposition, list[Mover]]:
    """Why GMV moved between two spans: factor contributions and the top movers by dimension."""
    b = span_summary(wh, *before, by=dimension)
    a = span_summary(wh, *after, by=dimension)
    snap_b = Snapshot(
        float(sum(r["gmv"] for r in b.values())),
        sum(r["orders"] for r in b.values()),
        _distinct_buyers(wh, *before),
    )
    snap_a = Snapshot(
        float(sum(r["gmv"] for r in a.values())),
        sum(r["orders"] for r in a.values()),
        _distinct_buyers(wh, *after),
    )
    movers = rank_movers(
        {k: float(v["gmv"]) for k, v in b.items()},
        {k: float(v["gmv"]) for k, v in a.items()},
        top=top,
    )
    return decompose(snap_b, snap_a), movers


def span_summary(wh: Warehouse, start: date, end: date, by: str) -> dict[str, dict[str, Any]]:
    """GMV and orders per ``by`` value over ``[start, end]``."""
    import ibis

    t = wh.table("orders")
    w = layer.Window(start, end, "day")
    t = t.filter((t.created_at >= ibis.timestamp(w.lo)) & (t.created_at < ibis.timestamp(w.hi)))
    frame = wh.execute(t.group_by(key=t[by]).agg(gmv=t.amount.sum(), orders=t.count()))
    return {
        str(r["key"]): {"gmv": _money(r["gmv"]), "orders": int(r["orders"])}
        for r in frame.to_dict("records")
    }


def _distinct_buyers(wh: Warehouse, start: date, end: date) -> int:
    import ibis

    t = wh.table("orders")
    w = layer.Window(start, end, "day")
    t = t.filter((t.created_at >= ibis.timestamp(w.lo)) & (t.created_at < ibis.timestamp(w.hi)))
    return int(wh.execute(t.buyer_id.nunique()))


def as_json_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows ready for JSON: dates as ISO strings, money as Decimal (2 places)."""
    return [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in r.items()} for r in rows]
