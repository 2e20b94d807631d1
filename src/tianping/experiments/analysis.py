"""Warehouse-native experiment analysis: per-arm sufficient statistics from one grouped query.

The query (Ibis, so it runs unchanged on DuckDB and Spark):

1. **units**: the experiment's exposures in ``[start, end)``, one row per unit with its variant
   and first exposure; a unit seen in two variants gets the arm ``MULTIPLE`` and is left out;
2. **unit features** (:data:`~tianping.experiments.unit_metrics.FEATURES`): the unit's
   orders paid from its first exposure until ``end``, refund requests and reviews on those
   orders, and its NPS answers in the same span; units without events count as zeros;
3. **pre-period features** (CUPED): the same features in the equal-length period before
   ``start``, for every unit;
4. optional **winsorisation**: each summed feature capped at its ``p`` quantile over all
   units, computed in the engine;
5. **aggregation** by arm (and slice): ``n`` and, per metric, the sums, sums of squares and
   cross-products that :class:`tianping.stats.sufficient.ArmStats` holds; with covariates
   (the default with CUPED), also the sums and cross products of every covariate — the
   pre-period value of every feature the metrics use, and the unit attribute ``returning``
   (ordered before its first exposure) — with each other and with every metric's value.

Quantile metrics (order value, delivery time) read the events instead: one window rank per
arm picks the quantile and its Woodruff bounds, and the per-unit counts below the quantile
give the clustered variance (:func:`quantile_query`).

Only those small aggregate tables reach Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import ibis

from tianping.errors import InvalidInput
from tianping.experiments import cupac
from tianping.experiments.unit_metrics import METRICS, features_of, get_metric
from tianping.stats.cupac import CupacFit
from tianping.stats.quantile import Z_WOODRUFF, QuantileArm
from tianping.stats.sufficient import ArmStats, CovariateSums
from tianping.warehouse.backend import Warehouse

MULTIPLE = "__multiple__"
ALL = "all"
UNIT_SLICES = ("buyer_type",)
#: Declared unit attributes used as covariates: 1 if the unit ordered before its exposure.
UNIT_ATTRIBUTES = ("returning",)
ORDER_SLICES = ("category", "channel", "delivery_mode", "merchant_id")


@dataclass(frozen=True, slots=True)
class AnalysisWindow:
    """Exposures and outcomes count in ``[start, end)``; the pre-period is as long, before it."""

    start: datetime
    end: datetime

    @classmethod
    def from_dates(cls, first: date, last: date) -> AnalysisWindow:
        """Whole UTC days ``first`` .. ``last`` inclusive."""
        if last < first:
            raise InvalidInput(f"end date {last} is before start date {first}", field="end_date")
        return cls(
            datetime.combine(first, time.min), datetime.combine(last + timedelta(days=1), time.min)
        )

    @property
    def pre_start(self) -> datetime:
        """Where the pre-period starts: as long before the window as the window is long (CUPED's covariates)."""
        return self.start - (self.end - self.start)


@dataclass(frozen=True, slots=True)
class Query:
    """What to aggregate for one experiment."""

    experiment: str
    window: AnalysisWindow
    metrics: tuple[str, ...]
    cuped: bool = True
    winsorize: float | None = None
    slice_by: str | None = None
    covariates: bool = True
    cupac: bool = False

    @property
    def with_covariates(self) -> bool:
        """Whether the query returns covariate sums (CUPED on, not sliced)."""
        return self.covariates and self.cuped and self.slice_by is None

    @property
    def with_cupac(self) -> bool:
        """Whether a cross-fitted prediction joins the covariates (CUPAC, not sliced)."""
        return self.cupac and self.with_covariates

    @property
    def summed_metrics(self) -> tuple[str, ...]:
        """The metrics aggregated into sums (every one but the quantile metrics)."""
        return tuple(m for m in self.metrics if METRICS[m].type != "quantile")

    def __post_init__(self) -> None:
        for m in self.metrics:
            get_metric(m)
        if self.cupac and not (self.cuped and self.covariates):
            raise InvalidInput(
                "cupac needs cuped: its prediction is one more covariate of the regression "
                "adjustment",
                field="cupac",
            )
        if self.winsorize is not None and not 0.5 < self.winsorize < 1:
            raise InvalidInput(
                "winsorize must be a quantile in (0.5, 1), e.g. 0.99", field="winsorize"
            )
        if self.slice_by is not None and self.slice_by not in UNIT_SLICES + ORDER_SLICES:
            raise InvalidInput(
                f"cannot slice by {self.slice_by!r}; use one of {', '.join(UNIT_SLICES + ORDER_SLICES)}",
                field="slice_by",
            )


# -- the unit table -------------------------------------------------------------------------


def exposed_units(wh: Warehouse, q: Query) -> ibis.Table:
    """One row per exposed unit: ``unit_id``, ``variant`` and ``first_exposed``."""
    ex = wh.table("exposures")
    ex = ex.filter(
        (ex.experiment == q.experiment)
        & (ex.exposed_at >= ibis.timestamp(q.window.start))
        & (ex.exposed_at < ibis.timestamp(q.window.end))
    )
    # A unit seen in two variants is "multiple": MIN <> MAX decides it as COUNT(DISTINCT) > 1
    # would (both skip nulls) without the distinct-count's hash table per group (2.4x
    # cheaper in DuckDB's profile at 3M units; docs/experiments.md).
    units = ex.group_by("unit_id").agg(
        first_exposed=ex.exposed_at.min(), variant=ex.variant.min(), _last=ex.variant.max()
    )
    return units.mutate(
        variant=ibis.ifelse(units.variant != units._last, MULTIPLE, units.variant)
    ).drop("_last")


def order_facts(
    wh: Warehouse, end: datetime, needed: Sequence[str] = (), keep: Sequence[str] = ORDER_SLICES
) -> ibis.Table:
    """Orders with their refund flag, review count and rating sum (events before ``end``).

    Refunds and reviews are joined only when ``needed`` (unit features) asks for them
    (empty: everything); otherwise their columns are zeros and the engine skips the join.
    Of the other order columns only ``keep`` is carried: the engine may materialise this
    table (it is read twice, during and before the experiment), so it stays narrow.
    """
    want = set(needed) or set(_ORDER_FEATURES)
    orders = wh.table("orders")
    facts = orders.select("order_id", "buyer_id", "created_at", "amount", *keep)
    facts = facts.mutate(refunded=ibis.literal(0, "int64"), reviews=ibis.literal(0, "int64"))
    facts = facts.mutate(rating_sum=ibis.literal(0, "int64"))
    if "refunded_orders" in want:
        refunds = wh.table("refunds")
        refunds = refunds.filter(refunds.requested_at < ibis.timestamp(end))
        refunded = refunds.group_by("order_id").agg(_refund_requests=refunds.refund_id.count())
        facts = facts.left_join(refunded, "order_id").select(~ibis.selectors.endswith("_right"))
        facts = facts.mutate(refunded=(facts._refund_requests.fill_null(0) > 0).ifelse(1, 0))
    if want & {"reviews", "rating_sum"}:
        reviews = wh.table("reviews")
        reviews = reviews.filter(reviews.created_at < ibis.timestamp(end))
        reviewed = reviews.group_by("order_id").agg(
            _reviews=reviews.review_id.count(), _rating_sum=reviews.rating.sum().cast("int64")
        )
        facts = facts.left_join(reviewed, "order_id").select(~ibis.selectors.endswith("_right"))
        facts = facts.mutate(
            reviews=facts._reviews.fill_null(0), rating_sum=facts._rating_sum.fill_null(0)
        )
    return facts.select(
        "buyer_id",
        "created_at",
        *keep,
        "refunded",
        "reviews",
        "rating_sum",
        amount=facts.amount.cast("float64"),
    )


def _order_features(facts: ibis.Table, key: list[str], needed: Sequence[str] = ()) -> ibis.Table:
    """Per-unit order features; only ``orders`` and those in ``needed`` (empty: all)."""
    return facts.group_by(key).agg(**_order_exprs(facts, needed))


def _order_exprs(
    facts: ibis.Table, needed: Sequence[str] = (), where: ibis.Value | None = None,
    prefix: str = "",
) -> dict[str, ibis.Value]:  # fmt: skip
    """The aggregates of :func:`_order_features`, over the rows ``where`` holds (all: None),
    named with ``prefix``."""
    exprs = {
        "orders": lambda: facts.count(where=where),
        "gmv": lambda: facts.amount.sum(where=where),
        "refunded_orders": lambda: facts.refunded.sum(where=where),
        "reviews": lambda: facts.reviews.sum(where=where),
        "rating_sum": lambda: facts.rating_sum.sum(where=where),
        "door_orders": lambda: (facts.delivery_mode == "door").ifelse(1, 0).sum(where=where),
        "moded_orders": lambda: facts.delivery_mode.notnull().ifelse(1, 0).sum(where=where),
    }
    want = {"orders", *needed} if needed else set(exprs)
    return {f"{prefix}{f}": make() for f, make in exprs.items() if f in want}


def _nps_features(nps: ibis.Table, key: list[str]) -> ibis.Table:
    return nps.group_by(key).agg(
        nps_responses=nps.count(),
        nps_score_sum=nps.score.sum().cast("int64"),
        nps_net=((nps.score >= 9).ifelse(1, 0) - (nps.score <= 6).ifelse(1, 0)).sum(),
    )


_ORDER_FEATURES = (
    "orders",
    "gmv",
    "refunded_orders",
    "reviews",
    "rating_sum",
    "door_orders",
    "moded_orders",
)
_NPS_FEATURES = ("nps_responses", "nps_score_sum", "nps_net")


def unit_table(
    wh: Warehouse, q: Query, units: ibis.Table | None = None, *, sparse: bool = False
) -> ibis.Table:
    """One row per unit (and slice value): ``variant``, ``slice``, features and ``pre_`` features.

    With an orders-column slice, a unit has one row per slice value it has orders in (during
    or before the experiment); units without any are absent but counted in ``n`` (their sums
    are zero), see :func:`fetch_aggregates`. ``units`` (``unit_id``, ``variant``,
    ``first_exposed``) replaces the experiment's exposed units, e.g. for A/A splits.
    ``sparse`` (only where :func:`_sparse` holds) leaves out units without orders the same
    way: every feature of theirs is zero, so they add nothing to any sum, and the join of
    every unit back to its features is saved.
    """
    units = exposed_units(wh, q) if units is None else units
    needed = _needed(q)
    order_slice = q.slice_by in ORDER_SLICES
    keep = {q.slice_by} if order_slice else set()
    if {"door_orders", "moded_orders"} & set(needed):
        keep.add("delivery_mode")
    facts = order_facts(wh, q.window.end, needed, tuple(c for c in ORDER_SLICES if c in keep))
    nps = wh.table("nps")
    with_nps = not order_slice and any(f in _NPS_FEATURES for f in needed)
    key = ["unit_id", "slice"] if order_slice else ["unit_id"]
    end = ibis.timestamp(q.window.end)
    if q.cuped and not order_slice:
        # One read of the orders and one join to the units for both periods: the window's
        # orders (from each unit's first exposure) and the pre-period's, split in the
        # aggregate (every unit's first exposure is after the pre-period ends).
        # With covariates the same read also finds ``returning`` (an order before the first
        # exposure, however old), so it reads the whole history up to the end.
        lo, start = ibis.timestamp(q.window.pre_start), ibis.timestamp(q.window.start)
        both = facts.join(units, facts.buyer_id == units.unit_id)
        both = both.filter(
            (both.created_at < end)
            if q.with_covariates
            else (both.created_at >= lo) & (both.created_at < end)
        )
        during = both.created_at >= both.first_exposed
        before = (both.created_at >= lo) & (both.created_at < start)
        prior = {"_prior": both.count(where=both.created_at < both.first_exposed)}
        arm = {"variant": both.variant.min()} if sparse else {}
        parts = [both.group_by(key).agg(**arm, **_order_exprs(both, needed, during),
                                        **_order_exprs(both, needed, before, "pre_"),
                                        **(prior if q.with_covariates else {}))]  # fmt: skip
    else:
        in_window = facts.join(units, facts.buyer_id == units.unit_id).filter(
            lambda t: (t.created_at >= t.first_exposed) & (t.created_at < end)
        )
        in_window = _sliced(in_window, q)
        arm = {"variant": in_window.variant.min()} if sparse else {}
        parts = [in_window.group_by(key).agg(**arm, **_order_exprs(in_window, needed))]
    if with_nps:
        nps_in = nps.join(units, nps.buyer_id == units.unit_id).filter(
            lambda t: (t.created_at >= t.first_exposed) & (t.created_at < end)
        )
        parts.append(_nps_features(nps_in, key))
    if q.cuped:
        parts += _pre_parts(facts, nps if with_nps else None, q, key, orders=order_slice)
    if sparse:
        if not _sparse(q) or len(parts) != 1:
            raise ValueError("a sparse unit table needs a query that _sparse() accepts")
        rows = parts[0]
    else:
        rows = _spine(units, parts, key)
        for part in parts:
            rows = rows.left_join(part, key).select(~ibis.selectors.endswith("_right"))
    if q.slice_by == "buyer_type":
        rows = _with_buyer_type(rows, facts)
    elif not order_slice:
        rows = rows.mutate(slice=ibis.literal(ALL))
    if q.with_covariates:
        rows = rows.mutate(returning=(rows._prior.fill_null(0) > 0).ifelse(1, 0)).drop("_prior")
    if q.with_cupac:
        rows = _with_cupac_features(wh, rows, q)
    return _fill_and_derive(rows, order_slice)


def _sparse(q: Query) -> bool:
    """Whether the sums can skip units without orders (:func:`unit_table` ``sparse``): every
    feature is an order feature (no NPS), nothing is computed across all units (winsorising
    caps, CUPAC's predictions) and no slice needs units without orders (``buyer_type``)."""
    return (
        q.slice_by is None
        and q.winsorize is None
        and not q.with_cupac
        and not any(f in _NPS_FEATURES for f in _needed(q))
    )


def _needed(q: Query) -> tuple[str, ...]:
    """The features the query's metrics sum; ``orders`` alone for quantile metrics only (an
    empty list would mean every feature)."""
    return features_of(q.metrics) or ("orders",)


def _sliced(facts: ibis.Table, q: Query) -> ibis.Table:
    if q.slice_by not in ORDER_SLICES:
        return facts
    return facts.mutate(slice=facts[q.slice_by].cast("string").fill_null("(none)"))


def _spine(units: ibis.Table, parts: list[ibis.Table], key: list[str]) -> ibis.Table:
    if key == ["unit_id"]:
        return units.select("unit_id", "variant", "first_exposed")
    keys = ibis.union(*(p.select("unit_id", "slice") for p in parts), distinct=True)
    return keys.join(units, "unit_id").select("unit_id", "slice", "variant", "first_exposed")


def _pre_parts(facts, nps, q: Query, key: list[str], *, orders: bool = True) -> list[ibis.Table]:
    """Pre-period features: NPS, and orders when not computed with the window's (``orders``)."""
    lo, hi = ibis.timestamp(q.window.pre_start), ibis.timestamp(q.window.start)
    parts = []
    if orders:
        pre_orders = facts.filter((facts.created_at >= lo) & (facts.created_at < hi)).rename(
            unit_id="buyer_id"
        )
        pre = _order_features(_sliced(pre_orders, q), key, _needed(q))
        parts.append(pre.rename({f"pre_{f}": f for f in _ORDER_FEATURES if f in pre.columns}))
    if nps is not None:
        pre_nps = nps.filter((nps.created_at >= lo) & (nps.created_at < hi)).rename(
            unit_id="buyer_id"
        )
        parts.append(_nps_features(pre_nps, key).rename({f"pre_{f}": f for f in _NPS_FEATURES}))
    return parts


def _with_buyer_type(rows: ibis.Table, facts: ibis.Table) -> ibis.Table:
    first = facts.group_by("buyer_id").agg(_first_order=facts.created_at.min())
    rows = rows.left_join(first, rows.unit_id == first.buyer_id)
    returning = rows._first_order.notnull() & (rows._first_order < rows.first_exposed)
    return rows.mutate(slice=ibis.ifelse(returning, "returning", "new")).drop(
        "_first_order", "buyer_id"
    )


def _with_cupac_features(wh: Warehouse, rows: ibis.Table, q: Query) -> ibis.Table:
    """CUPAC's inputs that exist for new buyers too: days from the first exposure to the
    window's end (hour resolution), and days with activity in the pre-period."""
    act = wh.table("activity")
    pre = act.filter(
        (act.date >= ibis.date(q.window.pre_start.date()))
        & (act.date < ibis.date(q.window.start.date()))
    )
    days = pre.group_by("buyer_id").agg(_active_days=pre.count())
    rows = rows.left_join(days, rows.unit_id == days.buyer_id).drop("buyer_id")
    exposed = rows.first_exposed.truncate("h").epoch_seconds().cast("float64")
    end = float((q.window.end - datetime(1970, 1, 1)).total_seconds())
    return rows.mutate(
        exposed_days=(ibis.literal(end, "float64") - exposed) / 86400.0,
        active_days_before=rows._active_days.fill_null(0).cast("float64"),
    ).drop("_active_days")


def _fill_and_derive(rows: ibis.Table, order_slice: bool) -> ibis.Table:
    present = set(rows.columns)
    fills = {}
    for f in (*_ORDER_FEATURES, *_NPS_FEATURES):
        for name in (f, f"pre_{f}"):
            if name in present:
                fills[name] = rows[name].fill_null(0)
            elif not name.startswith("pre_") and not (order_slice and f in _NPS_FEATURES):
                fills[name] = ibis.literal(0)
    rows = rows.mutate(**fills)
    rows = rows.mutate(converted=(rows.orders > 0).ifelse(1, 0))
    if "pre_orders" in rows.columns:
        rows = rows.mutate(pre_converted=(rows.pre_orders > 0).ifelse(1, 0))
    return rows


# -- winsorisation and aggregation ---------------------------------------------------------


def winsorized(rows: ibis.Table, features: Sequence[str], p: float) -> ibis.Table:
    """Cap each feature (and its ``pre_`` twin) at its ``p`` quantile over all rows (in-engine)."""
    capped = [c for f in features if f != "converted" for c in (f, f"pre_{f}") if c in rows.columns]
    if not capped:
        return rows
    caps = rows.agg(**{f"_cap_{c}": rows[c].cast("float64").quantile(p) for c in capped})
    joined = rows.cross_join(caps)
    return joined.mutate(
        **{c: ibis.least(joined[c].cast("float64"), joined[f"_cap_{c}"]) for c in capped}
    ).drop(*(f"_cap_{c}" for c in capped))


def _plan_sums(q: Query, rows: ibis.Table) -> dict[str, ibis.Expr]:
    """Name → aggregate expression: every sum any metric of the query needs, each once."""
    aggs: dict[str, ibis.Expr] = {"n": rows.count()}

    def s(name: str, expr: ibis.Value) -> None:
        aggs.setdefault(name, expr.cast("float64").sum())

    for name in q.summed_metrics:
        m = METRICS[name]
        if q.slice_by in ORDER_SLICES and m.numerator in _NPS_FEATURES:
            continue
        y, d = m.numerator, m.denominator
        s(f"{y}", rows[y])
        s(f"{y}*{y}", rows[y] * rows[y])
        if d is not None:
            s(d, rows[d])
            s(f"{d}*{d}", rows[d] * rows[d])
            s(f"{y}*{d}", rows[y] * rows[d])
        x = f"pre_{y}"
        if q.cuped and x in rows.columns:
            s(x, rows[x])
            s(f"{x}*{x}", rows[x] * rows[x])
            s(f"{y}*{x}", rows[y] * rows[x])
            if d is not None:
                s(f"{d}*{x}", rows[d] * rows[x])
    if q.with_covariates:
        _plan_covariate_sums(q, rows, s)
    return aggs


def covariate_columns(q: Query, columns: Sequence[str]) -> tuple[str, ...]:
    """The covariates of a query: every pre-period feature in the unit table, then the unit
    attributes (the same list for every metric, so one set of cross products serves all)."""
    if not q.with_covariates:
        return ()
    pre = [c for c in columns if c.startswith("pre_") and "*" not in c]
    predicted = [c for c in columns if c.startswith(cupac.PREFIX) and "*" not in c]
    return (*sorted(pre), *(a for a in UNIT_ATTRIBUTES if a in columns), *sorted(predicted))


def _plan_covariate_sums(q: Query, rows: ibis.Table, s) -> None:
    xs = covariate_columns(q, rows.columns)
    for j, a in enumerate(xs):
        s(a, rows[a])
        for b in xs[j:]:
            s(f"{a}*{b}", rows[a] * rows[b])
    for name in q.summed_metrics:
        m = METRICS[name]
        if m.numerator not in rows.columns:
            continue
        for v in (m.numerator, m.denominator):
            for x in xs if v is not None else ():
                s(f"{v}*{x}", rows[v] * rows[x])


def stats_query(wh: Warehouse, q: Query) -> ibis.Table:
    """The one grouped query: per ``variant`` and ``slice``, ``n`` and every needed sum
    (without CUPAC's predictions, which need a model fitted first: :func:`fetch_aggregates`).

    Where :func:`_sparse` holds, the sums run over the units with orders only and ``n``
    comes from the units themselves, in the same query: the same numbers without joining
    every unit back to its features (the units are a CTE the engine computes once).
    """
    if not _sparse(q):
        return _grouped(q, _prepared(wh, q))
    units = exposed_units(wh, q)
    rows = unit_table(wh, q, units, sparse=True)
    sums = {_column(k): v for k, v in _plan_sums(q, rows).items() if k != "n"}
    per_arm = rows.group_by("variant").agg(**sums)
    counts = units.group_by("variant").agg(n=units.count())
    out = counts.left_join(per_arm, "variant")
    return out.select(
        "variant",
        "n",
        slice=ibis.literal(ALL),
        **{k: out[k].fill_null(0.0) for k in sums},
    ).relocate("slice", after="variant")


def _prepared(wh: Warehouse, q: Query) -> ibis.Table:
    """The unit table, winsorised when asked."""
    rows = unit_table(wh, q)
    if q.winsorize is not None:
        rows = winsorized(rows, features_of(q.metrics), q.winsorize)
    return rows


def _grouped(q: Query, rows: ibis.Table) -> ibis.Table:
    sums = _plan_sums(q, rows)
    named = {_column(k): v for k, v in sums.items()}
    return rows.group_by(["variant", "slice"]).agg(**named)


def _column(key: str) -> str:
    return key.replace("*", "__x__")


@dataclass(frozen=True, slots=True)
class ArmAggregates:
    """What came back from the warehouse: ``n`` and named sums per (slice, variant)."""

    rows: tuple[dict[str, Any], ...]
    arm_totals: dict[str, int]
    covariates: tuple[str, ...] = ()
    quantiles: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    cupac: tuple[CupacFit, ...] = ()


def fetch_aggregates(wh: Warehouse, q: Query) -> ArmAggregates:
    """Run the grouped query (and one per quantile metric); returns plain Python numbers.

    With CUPAC, a training sample of the unit table is read first and the models fitted
    (:func:`tianping.experiments.cupac.with_predictions`); their predictions are columns of
    the grouped query.
    """
    fits: tuple[CupacFit, ...] = ()
    if q.with_cupac and q.summed_metrics:
        rows = _prepared(wh, q)
        units = int(wh.execute(exposed_units(wh, q).count()))
        rows, fits = cupac.with_predictions(wh, rows, features_of(q.summed_metrics), units=units)
        query = _grouped(q, rows)
    else:
        query = stats_query(wh, q)
    frame = wh.execute(query)
    rows = tuple(
        {k.replace("__x__", "*"): _number(v) for k, v in rec.items()}
        for rec in frame.to_dict("records")
    )
    totals: dict[str, int] = {}
    if q.slice_by in ORDER_SLICES:
        counted = wh.execute(exposed_units(wh, q).group_by("variant").agg(n=ibis._.count()))
        totals = {str(r["variant"]): int(r["n"]) for r in counted.to_dict("records")}
    covariates = covariate_columns(q, [c.replace("__x__", "*") for c in query.columns])
    quantiles = {}
    if q.slice_by is None:
        for m in q.metrics:
            if METRICS[m].type == "quantile":
                records = wh.execute(quantile_query(wh, q, m)).to_dict("records")
                quantiles[m] = tuple({k: _number(v) for k, v in r.items()} for r in records)
    return ArmAggregates(rows, totals, covariates, quantiles, fits)


def cupac_summary(agg: ArmAggregates) -> dict[str, dict[str, Any]]:
    """CUPAC's models as the report shows them: outcome → out-of-fold ``r2``,
    ``training_units`` and ``folds``."""
    return {
        f.outcome: {"r2": f.r2, "training_units": f.training_units, "folds": f.folds}
        for f in agg.cupac
    }


def _number(value: Any) -> Any:
    if value is None:
        return 0.0
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN: a sum over no rows
        return 0.0
    return value


def arm_stats(
    agg: ArmAggregates, metric: str, variants: Sequence[str], *, cuped: bool, slice_value: str = ALL
) -> list[ArmStats]:
    """The :class:`ArmStats` of ``metric`` for each variant (in ``variants`` order) of a slice
    (:class:`~tianping.stats.quantile.QuantileArm` for a quantile metric)."""
    m = get_metric(metric)
    if m.type == "quantile":
        return quantile_arms(agg, metric, variants)
    by_variant = {r["variant"]: r for r in agg.rows if r["slice"] == slice_value}
    y, d, x = m.numerator, m.denominator, f"pre_{m.numerator}"
    out = []
    for v in variants:
        r = by_variant.get(v, {})
        n = agg.arm_totals.get(v, r.get("n", 0)) if agg.arm_totals else r.get("n", 0)
        fields: dict[str, float] = {"sum": r.get(y, 0.0), "sum_sq": r.get(f"{y}*{y}", 0.0)}
        if d is not None:
            fields |= {
                "den_sum": r.get(d, 0.0),
                "den_sum_sq": r.get(f"{d}*{d}", 0.0),
                "num_den_sum": r.get(f"{y}*{d}", 0.0),
            }
        if cuped and f"{x}*{x}" in r:
            fields |= {
                "pre_sum": r.get(x, 0.0),
                "pre_sum_sq": r[f"{x}*{x}"],
                "pre_cross_sum": r.get(f"{y}*{x}", 0.0),
            }
            if d is not None:
                fields["pre_den_cross_sum"] = r.get(f"{d}*{x}", 0.0)
        if cuped and agg.covariates and r:
            fields["covariates"] = _covariate_sums(r, agg.covariates, y, d)
        out.append(ArmStats(name=v, n=int(n), **fields))
    return out


def _covariate_sums(r: dict[str, Any], xs: tuple[str, ...], y: str, d: str | None):
    def cross(a: str, b: str) -> float:
        return r.get(f"{a}*{b}", r.get(f"{b}*{a}", 0.0))

    return CovariateSums(
        names=xs,
        sum=tuple(r.get(x, 0.0) for x in xs),
        cross=tuple(tuple(cross(a, b) for b in xs) for a in xs),
        y_cross=tuple(r.get(f"{y}*{x}", 0.0) for x in xs),
        den_cross=None if d is None else tuple(r.get(f"{d}*{x}", 0.0) for x in xs),
    )


# -- quantile metrics ------------------------------------------------------------------------


def quantile_events(wh: Warehouse, q: Query, metric: str) -> ibis.Table:
    """The metric's events in the window: ``unit_id``, ``variant``, ``value`` (non-null)."""
    m = get_metric(metric)
    units = exposed_units(wh, q)
    orders = wh.table("orders")
    end = ibis.timestamp(q.window.end)
    ev = orders.join(units, orders.buyer_id == units.unit_id).filter(
        lambda t: (t.created_at >= t.first_exposed) & (t.created_at < end)
    )
    if m.numerator == "order_value":
        value = ev.amount.cast("float64")
    else:  # delivery_hours: only delivered orders, delivered before the window's end
        ev = ev.filter(ev.delivered_at.notnull() & (ev.delivered_at < end))
        value = (ev.delivered_at.epoch_seconds() - ev.created_at.epoch_seconds()).cast(
            "float64"
        ) / 3600.0
    return ev.select("unit_id", "variant", value=value)


def quantile_query(wh: Warehouse, q: Query, metric: str) -> ibis.Table:
    """Per arm: ``n`` events, the quantile and its Woodruff bounds (order statistics at the
    ranks of :func:`tianping.stats.quantile.woodruff_ranks`, computed with the same formula
    in the engine) and the per-unit sums of events below the quantile (clustered variance)."""
    level = get_metric(metric).quantile
    ev = quantile_events(wh, q, metric)
    ranked = ev.mutate(
        _rank=ibis.row_number().over(group_by="variant", order_by=["value", "unit_id"]) + 1,
        _n=ev.count().over(group_by="variant"),
    )
    n = ranked._n.cast("float64")
    s = (level * (1.0 - level) / n).sqrt()

    def rank(p) -> ibis.Value:
        return ibis.greatest(ibis.least((n * p).ceil().cast("int64"), ranked._n), 1)

    ranked = ranked.mutate(
        _k_lo=rank(level - Z_WOODRUFF * s),
        _k=rank(ibis.literal(level)),
        _k_hi=rank(level + Z_WOODRUFF * s),
    )

    def at(k: ibis.Value) -> ibis.Value:
        return ibis.ifelse(ranked._rank == k, ranked.value, ibis.null("float64")).max()

    per_unit = ranked.group_by(["variant", "unit_id"]).agg(
        events=ranked.count(),
        below=(ranked._rank <= ranked._k).ifelse(1, 0).sum(),
        n=ranked._n.max(),
        q=at(ranked._k),
        q_lo=at(ranked._k_lo),
        q_hi=at(ranked._k_hi),
    )
    e, b = per_unit.events.cast("float64"), per_unit.below.cast("float64")
    return per_unit.group_by("variant").agg(
        n=per_unit.n.max(),
        units=per_unit.count(),
        quantile=per_unit.q.max(),
        quantile_lower=per_unit.q_lo.max(),
        quantile_upper=per_unit.q_hi.max(),
        below_sum=b.sum(),
        below_sum_sq=(b * b).sum(),
        events_sum_sq=(e * e).sum(),
        below_events_sum=(b * e).sum(),
    )


def quantile_arms(agg: ArmAggregates, metric: str, variants: Sequence[str]) -> list[QuantileArm]:
    """The :class:`QuantileArm` of a quantile metric for each variant (clustered by unit)."""
    level = get_metric(metric).quantile
    by_variant = {r["variant"]: r for r in agg.quantiles.get(metric, ())}
    out = []
    for v in variants:
        r = by_variant.get(v, {})
        n = int(r.get("n") or 0)
        if n == 0:
            out.append(QuantileArm(v, 0, level, 0.0, 0.0, 0.0))
            continue
        out.append(
            QuantileArm(
                v, n, level, r["quantile"], r["quantile_lower"], r["quantile_upper"],
                units=int(r["units"]), below_sum=r["below_sum"], below_sum_sq=r["below_sum_sq"],
                events_sum_sq=r["events_sum_sq"], below_events_sum=r["below_events_sum"],
            )
        )  # fmt: skip
    return out


def slices_of(agg: ArmAggregates) -> list[str]:
    """The slice values present, sorted (``all`` when not sliced)."""
    return sorted({str(r["slice"]) for r in agg.rows})


def observed_counts(agg: ArmAggregates, variants: Sequence[str]) -> list[int]:
    """Units per variant over the whole experiment (for the sample-ratio check)."""
    if agg.arm_totals:
        return [agg.arm_totals.get(v, 0) for v in variants]
    counts = dict.fromkeys(variants, 0)
    for r in agg.rows:
        if r["variant"] in counts:
            counts[r["variant"]] += int(r["n"])
    return [counts[v] for v in variants]


def window_counts(
    wh: Warehouse, q: Query, starts: Sequence[datetime], variants: Sequence[str]
) -> list[list[int]]:
    """Units per variant by the window their first exposure fell in (one grouped query).

    Window 0 is before ``starts[0]``, window ``i`` from ``starts[i-1]`` until ``starts[i]``,
    the last from ``starts[-1]`` on: the windows of weights a race wrote at each step. Units
    seen in two variants are left out, as in every arm.
    """
    units = exposed_units(wh, q)
    index = sum(
        ((units.first_exposed >= ibis.timestamp(t)).ifelse(1, 0) for t in starts),
        ibis.literal(0, "int64"),
    )
    units = units.mutate(window=index)
    frame = wh.execute(units.group_by(["window", "variant"]).agg(n=units.count()))
    out = [[0] * len(variants) for _ in range(len(starts) + 1)]
    column = {v: i for i, v in enumerate(variants)}
    for r in frame.to_dict("records"):
        if r["variant"] in column:
            out[int(r["window"])][column[r["variant"]]] += int(r["n"])
    return out


def multiple_exposed(agg: ArmAggregates) -> int:
    """Units seen in more than one variant (left out of every arm)."""
    if agg.arm_totals:
        return agg.arm_totals.get(MULTIPLE, 0)
    return sum(int(r["n"]) for r in agg.rows if r["variant"] == MULTIPLE)


# -- health gates -----------------------------------------------------------------------------

#: Unit attributes fixed before the first exposure, by which the sample ratio is checked.
HEALTH_DIMENSIONS = ("buyer_type", "channel")


def exposure_counts(
    wh: Warehouse, q: Query, by: str, variants: Sequence[str]
) -> dict[str, list[int]]:
    """Units per variant by ``day`` of first exposure or by a unit attribute fixed before it:
    ``buyer_type`` (``returning`` with an order before the first exposure, else ``new``) or
    ``channel`` (the channel of the unit's last order before its first exposure, ``none``
    without one). One grouped query; units seen in two variants are left out.
    """
    units = exposed_units(wh, q)
    if by == "day":
        keyed = units.mutate(key=units.first_exposed.date().cast("string"))
    elif by in HEALTH_DIMENSIONS:
        orders = wh.table("orders")
        prior = orders.join(units, orders.buyer_id == units.unit_id)
        prior = prior.filter(prior.created_at < prior.first_exposed)
        if by == "buyer_type":
            attr = prior.group_by("unit_id").agg(_prior_orders=prior.count())
            attr = attr.mutate(_value=ibis.literal("returning")).drop("_prior_orders")
            fill = "new"
        else:
            value = prior.channel.cast("string").fill_null("none")
            attr = prior.group_by("unit_id").agg(_value=value.argmax(prior.created_at))
            fill = "none"
        keyed = units.left_join(attr, "unit_id").select(~ibis.selectors.endswith("_right"))
        keyed = keyed.mutate(key=keyed._value.fill_null(fill))
    else:
        raise InvalidInput(
            f"cannot check the sample ratio by {by!r}; use day or one of "
            f"{', '.join(HEALTH_DIMENSIONS)}",
            field="dimensions",
        )
    frame = wh.execute(keyed.group_by(["key", "variant"]).agg(n=keyed.count()))
    column = {v: i for i, v in enumerate(variants)}
    out: dict[str, list[int]] = {}
    for r in frame.to_dict("records"):
        if r["variant"] in column:
            row = out.setdefault(str(r["key"]), [0] * len(variants))
            row[column[r["variant"]]] += int(r["n"])
    return dict(sorted(out.items()))


#: The per-unit order feature each metric's novelty check follows (others: orders).
_NOVELTY_FEATURE = {"gmv": "gmv", "orders": "orders", "conversion": "converted"}


def novelty_sums(
    wh: Warehouse, q: Query, metric: str, variants: Sequence[str]
) -> tuple[str, list[tuple[int, float, float, float, float]]]:
    """Per variant ``(n, Σy₁, Σy₂, Σ(y₁−y₂), Σ(y₁−y₂)²)``: ``y₁`` a unit's value in the week
    after its first exposure, ``y₂`` in the week after that, over units first exposed at
    least 14 days before the window's end. ``metric`` is followed when it is GMV, orders or
    conversion per unit, otherwise orders per unit (returned first, by name).
    """
    followed = metric if metric in _NOVELTY_FEATURE else "orders"
    feature = _NOVELTY_FEATURE[followed]
    units = exposed_units(wh, q)
    units = units.filter(
        units.first_exposed + ibis.interval(days=14) <= ibis.timestamp(q.window.end)
    )
    orders = wh.table("orders")
    joined = orders.join(units, orders.buyer_id == units.unit_id)
    day7 = joined.first_exposed + ibis.interval(days=7)
    day14 = joined.first_exposed + ibis.interval(days=14)
    first = (joined.created_at >= joined.first_exposed) & (joined.created_at < day7)
    second = (joined.created_at >= day7) & (joined.created_at < day14)
    if feature == "gmv":
        value = joined.amount.cast("float64")
    else:
        value = joined.amount.notnull().ifelse(1.0, 1.0)  # one per order, as a column
    per_unit = joined.group_by("unit_id").agg(
        _y1=value.sum(where=first), _y2=value.sum(where=second)
    )
    rows = units.left_join(per_unit, "unit_id").select(~ibis.selectors.endswith("_right"))
    y1, y2 = rows._y1.fill_null(0.0), rows._y2.fill_null(0.0)
    if feature == "converted":
        y1, y2 = (y1 > 0).ifelse(1.0, 0.0), (y2 > 0).ifelse(1.0, 0.0)
    rows = rows.mutate(y1=y1, y2=y2).mutate(d=lambda t: t.y1 - t.y2)
    frame = wh.execute(
        rows.group_by("variant").agg(
            n=rows.count(), s1=rows.y1.sum(), s2=rows.y2.sum(), sd=rows.d.sum(),
            sdd=(rows.d * rows.d).sum(),
        )
    )  # fmt: skip
    got = {str(r["variant"]): r for r in frame.to_dict("records")}
    out = []
    for v in variants:
        r = got.get(v)
        out.append(
            (0, 0.0, 0.0, 0.0, 0.0)
            if r is None
            else (int(r["n"]), *(float(_number(r[k]) or 0.0) for k in ("s1", "s2", "sd", "sdd")))
        )
    return followed, out


# -- interactions between experiments -------------------------------------------------------


def interaction_cells(
    wh: Warehouse, first: Query, second: str, metric: str
) -> list[tuple[str, str, int, float, float]]:
    """``(arm in first, arm in second, n, Σy, Σy²)`` of ``metric``'s per-unit value (as the
    first experiment computes it, from the unit's first exposure) over the units exposed to
    both experiments in the first one's window. Units seen in two arms of either are left
    out. One grouped query."""
    m = get_metric(metric)
    if m.type in ("quantile", "ratio"):
        raise InvalidInput(f"{metric}: interactions are tested on per-unit metrics", field="metric")
    y = m.numerator
    rows = unit_table(wh, replace_metrics(first, (metric,)))
    other = exposed_units(wh, Query(second, first.window, ("orders",), cuped=False))
    other = other.select(unit_id="unit_id", other_variant="variant")
    both = rows.join(other, "unit_id")
    both = both.filter((both.variant != MULTIPLE) & (both.other_variant != MULTIPLE))
    value = both[y].cast("float64")
    frame = wh.execute(
        both.group_by(["variant", "other_variant"]).agg(
            n=both.count(), s=value.sum(), ss=(value * value).sum()
        )
    )
    return [
        (str(r["variant"]), str(r["other_variant"]), int(r["n"]), float(_number(r["s"])),
         float(_number(r["ss"])))
        for r in frame.to_dict("records")
    ]  # fmt: skip


def replace_metrics(q: Query, metrics: tuple[str, ...]) -> Query:
    """``q`` for other metrics, without the pre-period (a plain per-unit table)."""
    from dataclasses import replace

    return replace(q, metrics=metrics, cuped=False, cupac=False, winsorize=None)
