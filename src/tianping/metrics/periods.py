"""Calendar periods of the metrics layer (pure).

Periods are UTC calendar days, ISO weeks (starting Monday), months and years, named by their
first day. A period at the edge of the query window is partial: daily averages (DAC, DAU)
divide by the days the period shares with the window.
"""

from __future__ import annotations

from datetime import date, timedelta

from tianping.errors import UsageError

GRAINS = ("day", "week", "month", "year")
#: Ibis truncation units of each grain.
TRUNCATE_UNIT = {"day": "D", "week": "W", "month": "M", "year": "Y"}


def check_grain(grain: str) -> str:
    """Return ``grain`` if known, else raise a clear error."""
    if grain not in GRAINS:
        raise UsageError(f"unknown grain {grain!r}; use one of {', '.join(GRAINS)}", field="grain")
    return grain


def period_start(day: date, grain: str) -> date:
    """First day of the period of ``grain`` containing ``day``.

    >>> period_start(date(2024, 6, 19), "week")
    datetime.date(2024, 6, 17)
    """
    check_grain(grain)
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def period_end(start: date, grain: str) -> date:
    """Last day of the period that starts on ``start``.

    >>> period_end(date(2024, 2, 1), "month")
    datetime.date(2024, 2, 29)
    """
    check_grain(grain)
    if grain == "day":
        return start
    if grain == "week":
        return start + timedelta(days=6)
    if grain == "month":
        nxt = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
        return nxt - timedelta(days=1)
    return date(start.year, 12, 31)


def days_in_window(start: date, grain: str, window_from: date, window_to: date) -> int:
    """Days the period starting at ``start`` shares with ``[window_from, window_to]``.

    >>> days_in_window(date(2024, 6, 1), "month", date(2024, 6, 10), date(2024, 12, 31))
    21
    """
    lo = max(start, window_from)
    hi = min(period_end(start, grain), window_to)
    return max((hi - lo).days + 1, 0)
