"""Reporting periods of market figures (pure): ``2023``, ``2023-Q2``, ``2023-06``, ``2023-06-18``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from tianping.errors import InvalidInput


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A calendar period: its first and last day and its kind."""

    start: date
    end: date
    kind: str  # year | quarter | month | day

    @property
    def label(self) -> str:
        """The period as people name it: ``2024``, ``2024-Q2``, ``2024-05`` or ``2024-05-17``."""
        if self.kind == "year":
            return f"{self.start.year}"
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if self.kind == "month":
            return f"{self.start:%Y-%m}"
        return self.start.isoformat()

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        return parse_period(_shift(self))


def _shift(p: Period) -> str:
    if p.kind == "year":
        return str(p.start.year - 1)
    if p.kind == "quarter":
        q = (p.start.month - 1) // 3 + 1
        return f"{p.start.year - 1}-Q4" if q == 1 else f"{p.start.year}-Q{q - 1}"
    if p.kind == "month":
        prev = p.start - timedelta(days=1)
        return f"{prev:%Y-%m}"
    return (p.start - timedelta(days=1)).isoformat()


def parse_period(text: str) -> Period:
    """Parse a period label.

    >>> parse_period("2023-Q2").end
    datetime.date(2023, 6, 30)
    """
    s = str(text).strip()
    try:
        if re.fullmatch(r"\d{4}", s):
            y = int(s)
            return Period(date(y, 1, 1), date(y, 12, 31), "year")
        if m := re.fullmatch(r"(\d{4})-[Qq]([1-4])", s):
            y, q = int(m[1]), int(m[2])
            start = date(y, 3 * q - 2, 1)
            return Period(start, _month_end(y, 3 * q), "quarter")
        if m := re.fullmatch(r"(\d{4})-(\d{2})", s):
            y, mo = int(m[1]), int(m[2])
            return Period(date(y, mo, 1), _month_end(y, mo), "month")
        d = date.fromisoformat(s)
        return Period(d, d, "day")
    except ValueError:
        pass
    raise InvalidInput(
        f"period {text!r} is not YYYY, YYYY-Qn, YYYY-MM or YYYY-MM-DD", field="period"
    )


def _month_end(year: int, month: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return nxt - timedelta(days=1)
