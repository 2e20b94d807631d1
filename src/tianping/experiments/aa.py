"""A/A checks on historical data: split real units many times at random, analyse each split.

With no treatment, a sound analysis rejects at rate ``alpha`` and its p-values are uniform.
The units are the buyers active (an ``activity`` day or an order) in the window; each
unit's "exposure" is its first activity in the window, and its metric value is computed
exactly as in an experiment (:mod:`tianping.experiments.analysis`). Unlike an experiment's
analysis, the unit-level values (two numbers per unit) are read into Python once, because
every split re-partitions the same units; the splits use the production hash
(``draw("aa:<seed>:<i>", unit)``), so they also check the assigner's randomness.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

import ibis
import numpy as np

from tianping.errors import InvalidInput, UsageError
from tianping.experiments.analysis import AnalysisWindow, Query, unit_table
from tianping.experiments.assignment import BUCKETS, draws, unit_hashes
from tianping.experiments.unit_metrics import get_metric
from tianping.stats.aa import AAReport, aa_report, split_pvalues
from tianping.warehouse.backend import Warehouse

MAX_SPLITS = 100_000
_CHUNK = 64


@dataclass(frozen=True, slots=True)
class AAResult:
    """An A/A run: its settings, the report and the p-value histogram (10 bins of 0.1)."""

    metric: str
    start: str
    end: str
    units: int
    splits: int
    report: AAReport
    ci_coverage: float
    pvalue_histogram: tuple[int, ...]

    def to_dict(self) -> dict:
        """The result as JSON-ready data (what ``tianping experiment aa --format json`` prints)."""
        return {
            "metric": self.metric,
            "window": {"start": self.start, "end": self.end},
            "units": self.units,
            "splits": self.splits,
            **asdict(self.report),
            "ci_coverage": self.ci_coverage,
            "pvalue_histogram": list(self.pvalue_histogram),
        }


def active_units(wh: Warehouse, window: AnalysisWindow) -> ibis.Table:
    """Buyers with activity or an order in the window, first seen = their ``first_exposed``."""
    lo, hi = ibis.timestamp(window.start), ibis.timestamp(window.end)
    orders = wh.table("orders")
    seen = orders.select(unit_id=orders.buyer_id, at=orders.created_at.cast("timestamp"))
    if wh.has_table("activity"):
        act = wh.table("activity")
        seen = seen.union(act.select(unit_id=act.buyer_id, at=act.date.cast("timestamp")))
    seen = seen.filter((seen.at >= lo) & (seen.at < hi))
    units = seen.group_by("unit_id").agg(first_exposed=seen.at.min())
    return units.mutate(variant=ibis.literal("all"))


def unit_values(wh: Warehouse, metric: str, window: AnalysisWindow):
    """Unit ids and the metric's per-unit numerator (and denominator) as numpy arrays."""
    m = get_metric(metric)
    q = Query("__aa__", window, (metric,), cuped=False)
    rows = unit_table(wh, q, units=active_units(wh, window))
    cols = ["unit_id", m.numerator] + ([m.denominator] if m.denominator else [])
    table = wh.to_arrow(rows.select(*cols).order_by("unit_id"))
    ids = np.asarray(table.column("unit_id").to_numpy(zero_copy_only=False)).astype(str)
    y = table.column(m.numerator).to_numpy().astype(float)
    d = table.column(m.denominator).to_numpy().astype(float) if m.denominator else None
    return ids, y, d


def run_aa(
    wh: Warehouse,
    metric: str,
    first: date,
    last: date,
    *,
    splits: int = 1000,
    alpha: float = 0.05,
    seed: str = "0",
) -> AAResult:
    """Split the active units of ``[first, last]`` ``splits`` times 50/50 and analyse each.

    Raises:
        InvalidInput: bad metric, dates, split count or alpha.
        UsageError: fewer than 4 active units in the window.
    """
    m = get_metric(metric)
    if m.type == "quantile":
        raise InvalidInput(
            f"the A/A tool splits per-unit values; {metric} is a quantile of orders "
            "(its calibration is bench/calibration.py)",
            field="metric",
        )
    if not 1 <= splits <= MAX_SPLITS:
        raise InvalidInput(
            f"splits must be between 1 and {MAX_SPLITS}, got {splits}", field="splits"
        )
    window = AnalysisWindow.from_dates(first, last)
    ids, y, d = unit_values(wh, metric, window)
    if ids.size < 4:
        raise UsageError(
            f"only {ids.size} active unit(s) between {first} and {last}; need at least 4",
            field="window",
        )
    hashes = unit_hashes(ids)
    pvalues, covered = [], []
    for lo in range(0, splits, _CHUNK):
        treated = np.stack(
            [
                draws(f"aa:{seed}:{i}", hashes) < BUCKETS // 2
                for i in range(lo, min(splits, lo + _CHUNK))
            ]
        )
        out = split_pvalues(y, treated, metric_type=m.type, d=d, alpha=alpha)
        pvalues.append(out["pvalue"])
        covered.append(out["covered"])
    p = np.concatenate(pvalues)
    hist, _ = np.histogram(p, bins=10, range=(0.0, 1.0))
    return AAResult(
        metric,
        first.isoformat(),
        last.isoformat(),
        int(ids.size),
        splits,
        aa_report(p, alpha),
        float(np.concatenate(covered).mean()),
        tuple(int(h) for h in hist),
    )


def default_window(wh: Warehouse, first: date | None, last: date | None) -> tuple[date, date]:
    """``[first, last]`` with defaults: ``last`` = the last order day, ``first`` = 27 days
    before ``last`` (four whole weeks).

    Raises:
        UsageError: no orders to take a default from.
    """
    from datetime import timedelta

    if last is None:
        orders = wh.table("orders")
        latest = wh.execute(orders.created_at.max())
        if latest is None or latest != latest:
            raise UsageError("no orders in the warehouse; give --from and --to", field="window")
        last = latest.date() if hasattr(latest, "date") else latest
    if first is None:
        first = last - timedelta(days=27)
    return first, last
