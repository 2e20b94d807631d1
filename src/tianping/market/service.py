"""Import market figures into the store and compare them with our metrics.

Import is all-or-nothing: every row is checked first and any problem (named by row and column)
stops the import. Re-importing the same file changes nothing; a new value for the same
platform, period and figure replaces the old one and is counted as updated.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tianping.clock import Clock, SystemClock
from tianping.errors import InvalidInput, UsageError
from tianping.market.compare import FIGURES, FLOWS, Comparison, basis, compare
from tianping.market.models import MarketFigure
from tianping.market.periods import Period, parse_period


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What an import did: figures read, new, changed and already stored as they are."""

    rows: int
    inserted: int
    updated: int
    unchanged: int


def read_market_file(path: Path) -> list[dict]:
    """Parse and check a market CSV; returns one dict per figure (platform, period, metric...)."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file", field="path")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in ("platform", "period") if c not in columns]
        if missing or not any(c in columns for c in FIGURES):
            raise UsageError(
                f"{path}: needs columns platform, period and at least one of "
                f"{', '.join(FIGURES)} (has: {', '.join(columns) or 'none'})",
                field="columns",
            )
        raw_rows = list(reader)
    figures, problems = [], []
    for i, raw in enumerate(raw_rows, start=1):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        figures.extend(_row_figures(i, row, problems))
    if problems:
        listed = "\n".join(f"  {p}" for p in problems[:20])
        raise InvalidInput(
            f"{path}: {len(problems)} problem(s); nothing imported.\n{listed}", field="path"
        )
    return figures


def _row_figures(i: int, row: dict, problems: list[str]) -> list[dict]:
    if not row.get("platform"):
        problems.append(f"row {i}, column platform: missing value")
        return []
    try:
        period = parse_period(row.get("period", ""))
    except InvalidInput as exc:
        problems.append(f"row {i}, column period: {exc.message}")
        return []
    out = []
    for metric in FIGURES:
        text = row.get(metric, "")
        if not text:
            continue
        try:
            value = Decimal(text.replace(",", ""))
        except InvalidOperation:
            problems.append(f"row {i}, column {metric}, value {text!r}: not a number")
            continue
        if not value.is_finite() or value < 0:
            problems.append(f"row {i}, column {metric}, value {text!r}: must be >= 0")
            continue
        out.append(
            {
                "platform": row["platform"].lower(),
                "period": period,
                "metric": metric,
                "value": value.quantize(Decimal("0.01")),
                "source": row.get("source", ""),
            }
        )
    if not out and not any(p.startswith(f"row {i},") for p in problems):
        problems.append(f"row {i}: no figure ({', '.join(FIGURES)}) given")
    return out


def import_figures(path: Path, *, session: Session, clock: Clock | None = None) -> ImportSummary:
    """Check ``path`` and upsert its figures; the caller commits."""
    figures = read_market_file(path)
    now = (clock or SystemClock()).now()
    inserted = updated = unchanged = 0
    for f in figures:
        p: Period = f["period"]
        existing = session.scalar(
            select(MarketFigure).where(
                MarketFigure.platform == f["platform"],
                MarketFigure.period == p.label,
                MarketFigure.metric == f["metric"],
            )
        )
        if existing is None:
            session.add(
                MarketFigure(
                    platform=f["platform"],
                    period=p.label,
                    period_start=p.start,
                    period_end=p.end,
                    metric=f["metric"],
                    value=f["value"],
                    source=f["source"],
                    imported_at=now,
                )
            )
            inserted += 1
        elif Decimal(existing.value) != f["value"] or existing.source != f["source"]:
            existing.value, existing.source, existing.imported_at = f["value"], f["source"], now
            updated += 1
        else:
            unchanged += 1
    session.flush()
    return ImportSummary(len(figures), inserted, updated, unchanged)


def market_periods(session: Session) -> list[str]:
    """Every period that has figures, oldest first."""
    labels = session.scalars(select(MarketFigure.period).distinct()).all()
    return sorted(labels, key=lambda s: parse_period(s))


def figures_for(session: Session, period: str) -> dict[str, dict[str, float]]:
    """``{metric: {platform: value}}`` of one period."""
    out: dict[str, dict[str, float]] = {}
    for f in session.scalars(select(MarketFigure).where(MarketFigure.period == period)):
        out.setdefault(f.metric, {})[f.platform] = float(f.value)
    return out


def forget_figures(session: Session, *, source_prefix: str) -> int:
    """Delete the figures whose source starts with ``source_prefix`` (e.g. a simulation's own,
    before it writes new ones); returns how many."""
    rows = session.scalars(
        select(MarketFigure).where(MarketFigure.source.startswith(source_prefix))
    ).all()
    for row in rows:
        session.delete(row)
    session.flush()
    return len(rows)


@dataclass(frozen=True)
class PeriodCoverage:
    """A market period and how much of it our data covers."""

    period: str
    start: date
    end: date
    days: int
    covered_days: int
    platforms: tuple[str, ...]
    metrics: tuple[str, ...]

    @property
    def coverage(self) -> float:
        """The share of the period's days our data covers (0..1)."""
        return self.covered_days / self.days

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``tianping market periods --format json``)."""
        return {
            "period": self.period, "start": self.start, "end": self.end, "days": self.days,
            "covered_days": self.covered_days, "coverage": self.coverage,
            "platforms": list(self.platforms), "metrics": list(self.metrics),
        }  # fmt: skip


def period_coverage(wh, *, session: Session) -> list[PeriodCoverage]:
    """Every market period, oldest first, with the days of it our data covers.

    "Our data" is the metrics layer's window (the first to the last day with any event).
    """
    from tianping.metrics.service import data_window

    bounds = data_window(wh, None, None)
    found: dict[str, tuple[set, set]] = {}
    for platform, period, metric in session.execute(
        select(MarketFigure.platform, MarketFigure.period, MarketFigure.metric)
    ):
        platforms, metrics = found.setdefault(period, (set(), set()))
        platforms.add(platform)
        metrics.add(metric)
    out = []
    for label in sorted(found, key=parse_period):
        p = parse_period(label)
        covered = 0
        if bounds is not None:
            lo, hi = max(p.start, bounds[0]), min(p.end, bounds[1])
            covered = max(0, (hi - lo).days + 1)
        platforms, metrics = found[label]
        out.append(PeriodCoverage(label, p.start, p.end, (p.end - p.start).days + 1, covered,
                                  tuple(sorted(platforms)),
                                  tuple(m for m in FIGURES if m in metrics)))  # fmt: skip
    return out


def default_period(periods: list[PeriodCoverage]) -> PeriodCoverage:
    """The period compared when none is named: the latest our data covers wholly, else the
    latest it covers in part, else the latest.

    Raises:
        UsageError: there are no market figures.
    """
    if not periods:
        raise UsageError("no market figures yet: run `tianping market import FILE` first")
    for wanted in (lambda c: c.covered_days == c.days, lambda c: c.covered_days > 0):
        chosen = [c for c in periods if wanted(c)]
        if chosen:
            return max(chosen, key=lambda c: (c.end, -c.days))
    return periods[-1]


@dataclass(frozen=True)
class OurFigures:
    """Our figures over a window, how much of the market period it covers, and whether
    flows were projected to the period's length."""

    values: dict[str, float | None]
    start: date
    end: date
    coverage: float
    projected: bool
    covered_days: int = 0
    period_days: int = 0


def our_figures(wh, start: date, end: date, *, target_days: int | None = None) -> OurFigures:
    """GMV, buyers, DAU and packages from the metrics layer over ``[start, end]``.

    With ``target_days``, flows (GMV, packages) are scaled linearly from the days our data
    covers to ``target_days`` — a projection, labelled as such. Buyers (distinct) and DAU (a
    daily average) are never scaled.
    """
    from tianping.metrics.service import compute_metrics, data_window

    days = (end - start).days + 1
    bounds = data_window(wh, None, None)
    lo, hi = (max(start, bounds[0]), min(end, bounds[1])) if bounds else (start, start)
    if bounds is None or lo > hi:
        return OurFigures(dict.fromkeys(FIGURES), start, end, 0.0, False, 0, days)
    rows = compute_metrics(wh, "year", lo, hi)
    covered = (hi - lo).days + 1
    values = {
        "gmv": float(sum(r["gmv"] or 0 for r in rows)),
        "packages": float(sum(r["packages"] or 0 for r in rows)),
        "buyers": _distinct_buyers(wh, lo, hi),
        "dau": _dau(rows, lo, hi),
    }
    projected = target_days is not None and covered != target_days
    if projected:
        for k in FLOWS:
            values[k] = values[k] * target_days / covered
    return OurFigures(values, lo, hi, covered / days, projected, covered, days)


def _distinct_buyers(wh, lo: date, hi: date) -> float:
    from tianping.metrics.service import _distinct_buyers as distinct

    return float(distinct(wh, lo, hi))


def _dau(rows: list[dict], lo: date, hi: date) -> float | None:
    from tianping.metrics.periods import days_in_window

    weighted = [
        (r["dau"], days_in_window(r["period"], "year", lo, hi))
        for r in rows
        if r["dau"] is not None
    ]
    days = sum(d for _, d in weighted)
    return sum(v * d for v, d in weighted) / days if days else None


@dataclass(frozen=True)
class MarketView:
    """One market period compared: what we cover of it, our figures, each metric beside every
    platform's, and every period with its coverage (so every surface lists the same)."""

    period: PeriodCoverage
    ours: OurFigures
    comparisons: list[Comparison]
    periods: list[PeriodCoverage]

    @property
    def label(self) -> str:
        """The compared period's name (``2024-05``)."""
        return self.period.period

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``tianping market compare --format json``)."""
        return {
            "period": self.label,
            "period_start": self.period.start,
            "period_end": self.period.end,
            "period_days": self.period.days,
            "ours_from": self.ours.start,
            "ours_to": self.ours.end,
            "covered_days": self.ours.covered_days,
            "coverage": self.ours.coverage,
            "projected": self.ours.projected,
            "comparisons": [_comparison_dict(c) for c in self.comparisons],
        }


def _comparison_dict(c: Comparison) -> dict[str, Any]:
    return {
        "metric": c.metric,
        "ours": c.ours,
        "comparable": c.comparable,
        "basis": c.basis,
        "share": c.share,
        "rank": c.rank,
        "platforms": c.platforms,
        "our_growth": c.our_growth,
        "competitors": [
            {"platform": g.platform, "value": g.theirs, "gap": g.gap, "ratio": g.ratio,
             "growth": g.their_growth}
            for g in c.gaps
        ],
    }  # fmt: skip


def compare_with_market(
    wh,
    *,
    session: Session,
    period: str | None = None,
    ours_from: date | None = None,
    ours_to: date | None = None,
    project: bool = False,
) -> MarketView:
    """Our figures beside every platform's for one market period (default:
    :func:`default_period`), like with like (:func:`tianping.market.compare.basis`).

    ``ours_from``/``ours_to`` narrow our window inside the period; a window reaching outside
    it compares another span with the period, so it needs ``project`` (flows are then scaled
    to the period's length and labelled projected).

    Raises:
        UsageError: no market figures, an unknown period, or another window without project.
    """
    periods = period_coverage(wh, session=session)
    if period is None:
        target = default_period(periods)
    else:
        label = parse_period(period).label
        target = next((c for c in periods if c.period == label), None)
        if target is None:
            known = ", ".join(c.period for c in periods) or "none"
            raise UsageError(f"no market figures for {label}; periods: {known}", field="period")
    start, end = ours_from or target.start, ours_to or target.end
    if (start < target.start or end > target.end) and not project:
        raise UsageError(
            f"our window {start}…{end} is not market period {target.period} "
            f"({target.start}…{target.end}); add --project to compare a projection of it",
            field="ours_from",
        )
    outside = start < target.start or end > target.end
    ours = our_figures(wh, start, end, target_days=target.days if project else None)
    ours = replace(ours, period_days=target.days, coverage=ours.covered_days / target.days,
                   projected=ours.projected or (outside and ours.covered_days > 0))  # fmt: skip
    theirs = figures_for(session, target.period)
    before = _before(wh, session, target, whole=ours_from is None and ours_to is None)
    rows = [
        compare(
            m,
            target.period,
            ours.values.get(m),
            theirs.get(m, {}),
            before[0].get(m),
            before[1].get(m),
            on=_basis(m, ours, target, outside),
        )  # fmt: skip
        for m in FIGURES
        if m in theirs
    ]
    return MarketView(target, ours, rows, periods)


def _basis(metric: str, ours: OurFigures, target: PeriodCoverage, outside: bool):
    """:func:`basis`, saying so when our days lie outside the period (asked for: projected)."""
    if not outside or ours.covered_days == 0:
        return basis(metric, ours.covered_days, target.days, ours.projected)
    span = f"our {ours.covered_days} days {ours.start}…{ours.end}"
    if metric in FLOWS:
        return True, f"projected linearly from {span} to the {target.days} days of {target.period}"
    if metric == "dau":
        return True, f"daily average over {span}, taken for {target.period}"
    return False, f"distinct buyers of {span} do not compare with {target.period}'s"


def _before(wh, session: Session, target: PeriodCoverage, *, whole: bool):
    """Our and the platforms' figures of the period before, for growth: ours only when our
    data covers that whole period (a part would fake a fall)."""
    prev = parse_period(target.period).previous()
    theirs = figures_for(session, prev.label)
    if not whole:
        return {}, theirs
    ours = our_figures(wh, prev.start, prev.end)
    if ours.covered_days < (prev.end - prev.start).days + 1:
        return {}, theirs
    return ours.values, theirs
