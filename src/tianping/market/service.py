"""Import market figures into the store and compare them with our metrics.

Import is all-or-nothing: every row is checked first and any problem (named by row and column)
stops the import. Re-importing the same file changes nothing; a new value for the same
platform, period and figure replaces the old one and is counted as updated.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tianping.clock import Clock, SystemClock
from tianping.errors import InvalidInput, UsageError
from tianping.market.compare import FIGURES, Comparison, compare
from tianping.market.models import MarketFigure
from tianping.market.periods import Period, parse_period


@dataclass(frozen=True, slots=True)
class ImportSummary:
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


@dataclass(frozen=True)
class OurFigures:
    """Our figures over a window, how much of it the data covers, and whether projected."""

    values: dict[str, float | None]
    start: date
    end: date
    coverage: float
    projected: bool


def our_figures(wh, start: date, end: date, *, target_days: int | None = None) -> OurFigures:
    """GMV, buyers, DAU and packages from the metrics layer over ``[start, end]``.

    With ``target_days``, flows (GMV, packages) are scaled linearly from the days our data
    covers to ``target_days`` — a projection, labelled as such. Buyers (distinct) and DAU (a
    daily average) are never scaled.
    """
    from tianping.metrics.service import compute_metrics, data_window

    bounds = data_window(wh, None, None)
    if bounds is None:
        return OurFigures(dict.fromkeys(FIGURES), start, end, 0.0, False)
    lo, hi = max(start, bounds[0]), min(end, bounds[1])
    days = (end - start).days + 1
    if lo > hi:
        return OurFigures(dict.fromkeys(FIGURES), start, end, 0.0, False)
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
        for k in ("gmv", "packages"):
            values[k] = values[k] * target_days / covered
    return OurFigures(values, lo, hi, covered / days, projected)


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


def compare_with_market(
    wh,
    *,
    session: Session,
    period: str | None = None,
    ours_from: date | None = None,
    ours_to: date | None = None,
    project: bool = False,
) -> tuple[str, OurFigures, list[Comparison]]:
    """Our figures beside every platform's for one market period (default: the latest)."""
    labels = market_periods(session)
    if not labels:
        raise UsageError("no market figures yet: run `tianping market import FILE` first")
    label = period or labels[-1]
    target = parse_period(label)
    if target.label not in labels:
        raise UsageError(
            f"no market figures for {label}; periods: {', '.join(labels)}", field="period"
        )
    start, end = ours_from or target.start, ours_to or target.end
    target_days = (target.end - target.start).days + 1
    ours = our_figures(wh, start, end, target_days=target_days if project else None)
    before_label = target.previous().label
    theirs, theirs_before = figures_for(session, target.label), figures_for(session, before_label)
    ours_before = None
    if not project and ours_from is None and ours_to is None:
        prev = target.previous()
        ours_before = our_figures(wh, prev.start, prev.end).values
    rows = [
        compare(
            m,
            target.label,
            ours.values.get(m),
            theirs.get(m, {}),
            (ours_before or {}).get(m),
            theirs_before.get(m),
        )
        for m in FIGURES
        if m in theirs
    ]
    return target.label, ours, rows
