"""The metrics layer as Ibis expressions: one grouped query per event table.

Each function returns an Ibis expression of per-period (and per ``by`` value) aggregates;
:mod:`tianping.metrics.service` runs them and derives the headline metrics. The same
expressions run on DuckDB and Spark. Definitions are in ``docs/metrics.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import ibis
from ibis import _

from tianping.metrics.periods import TRUNCATE_UNIT

#: Columns of the orders table that ``--by`` may slice on.
BY_COLUMNS = ("category", "merchant_id", "product_id", "channel", "delivery_mode", "buyer_id")
REPURCHASE_DAYS = 30


@dataclass(frozen=True, slots=True)
class Window:
    """The query window: whole UTC days ``[start, end]`` and the grain of its periods."""

    start: date
    end: date
    grain: str

    @property
    def lo(self) -> datetime:
        """The window's first instant (naive UTC, as the warehouse stores times)."""
        return datetime.combine(self.start, time.min)

    @property
    def hi(self) -> datetime:
        """The instant after the window's last day (exclusive upper bound)."""
        return datetime.combine(self.end + timedelta(days=1), time.min)


def period_of(column: ibis.Value, grain: str) -> ibis.Value:
    """First day (a date) of the period ``column`` falls in."""
    unit = TRUNCATE_UNIT[grain]
    return column.truncate(unit).cast("date")


def _in_window(column: ibis.Value, w: Window) -> ibis.Value:
    if column.type().is_date():
        return column.between(ibis.date(w.start), ibis.date(w.end))
    return (column >= ibis.timestamp(w.lo)) & (column < ibis.timestamp(w.hi))


def orders_aggregates(
    orders: ibis.Table, refunds: ibis.Table, w: Window, by: str | None, data_end: datetime | None
) -> ibis.Table:
    """GMV, orders, buyers, new buyers, packages, delivery, refunds and repurchase per period.

    ``data_end`` is the last order time in the whole table: a buyer's 30-day repurchase window
    must end by then to count (later ones are censored, not counted as "no repurchase").
    """
    buyer_w = ibis.window(group_by=orders.buyer_id, order_by=[orders.created_at, orders.order_id])
    enriched = orders.mutate(
        prev_at=orders.created_at.lag().over(buyer_w),
        next_at=orders.created_at.lead().over(buyer_w),
    )
    per_order = refunds.group_by("order_id").agg(
        _refunds=_.count(), _refunded=_.refunded_amount.sum()
    )
    enriched = enriched.left_join(per_order, "order_id").select(
        ~ibis.selectors.matches(r"^order_id_right$")
    )
    enriched = enriched.filter(_in_window(enriched.created_at, w))
    period = period_of(enriched.created_at, w.grain)
    first_in_period = enriched.prev_at.isnull() | (period_of(enriched.prev_at, w.grain) < period)
    horizon = enriched.created_at + ibis.interval(days=REPURCHASE_DAYS)
    uncensored = ibis.literal(False) if data_end is None else horizon <= ibis.timestamp(data_end)
    rep_den = first_in_period & uncensored
    rep_num = rep_den & enriched.next_at.notnull() & (enriched.next_at <= horizon)
    keys = {"period": period, **({by: enriched[by]} if by else {})}
    return enriched.group_by(**keys).agg(
        gmv=enriched.amount.sum(),
        orders=enriched.count(),
        buyers=enriched.buyer_id.nunique(),
        new_buyers=enriched.prev_at.isnull().ifelse(1, 0).sum(),
        packages=enriched.delivered_at.notnull().ifelse(1, 0).sum(),
        door=(enriched.delivery_mode == "door").fill_null(False).ifelse(1, 0).sum(),
        mode_known=enriched.delivery_mode.notnull().ifelse(1, 0).sum(),
        refunded_orders=enriched._refunds.notnull().ifelse(1, 0).sum(),
        refunded_amount=enriched._refunded.sum(),
        repurchase_num=rep_num.ifelse(1, 0).sum(),
        repurchase_den=rep_den.ifelse(1, 0).sum(),
    )


def daily_buyers(orders: ibis.Table, w: Window, by: str | None) -> ibis.Table:
    """Sum over the period's days of each day's distinct buyers (DAC numerator).

    At day grain this equals the period's distinct buyers, which the orders query already has.
    """
    t = orders.filter(_in_window(orders.created_at, w))
    keys = {
        "period": period_of(t.created_at, w.grain),
        "day": t.created_at.cast("date"),
        **({by: t[by]} if by else {}),
    }
    daily = t.group_by(**keys).agg(n=t.buyer_id.nunique())
    return daily.group_by(["period", *([by] if by else [])]).agg(dac_sum=daily.n.sum())


def daily_active(activity: ibis.Table, w: Window) -> ibis.Table:
    """Sum over the period's days of each day's distinct active users (DAU numerator)."""
    t = activity.filter(_in_window(activity.date, w))
    # One row per user-day is the table's key, so the day's rows are its distinct users and
    # the period's row count is the sum over its days.
    return t.group_by(period=period_of(t.date, w.grain)).agg(dau_sum=t.count())


def review_aggregates(reviews: ibis.Table, orders: ibis.Table, w: Window, by: str | None):
    """Sum and count of review ratings by the review's period (and the order's ``by`` value)."""
    t = reviews.filter(_in_window(reviews.created_at, w))
    if by:
        t = t.join(orders.select("order_id", by), "order_id")
    keys = {"period": period_of(t.created_at, w.grain), **({by: t[by]} if by else {})}
    return t.group_by(**keys).agg(rating_sum=t.rating.sum(), rating_n=t.count())


def nps_aggregates(nps: ibis.Table, w: Window) -> ibis.Table:
    """Responses, promoters (9–10) and detractors (0–6) per period."""
    t = nps.filter(_in_window(nps.created_at, w))
    return t.group_by(period=period_of(t.created_at, w.grain)).agg(
        responses=t.count(),
        promoters=(t.score >= 9).ifelse(1, 0).sum(),
        detractors=(t.score <= 6).ifelse(1, 0).sum(),
    )


def time_range(table: ibis.Table, column: str) -> ibis.Table:
    """Min and max of a table's time column."""
    return table.aggregate(lo=table[column].min(), hi=table[column].max())
