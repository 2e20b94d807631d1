"""Our figures beside the market's (pure): share, rank, gap to each competitor, growth.

Share is our value over the sum of our value and every competitor's in the same period and
metric (the platforms in the market file are taken to be the market). Rank is 1 for the
largest value. Gap is ours minus theirs, and the ratio ours / theirs. Growth compares a period
with the one before it (same kind), for us and for each competitor that has both.
"""

from __future__ import annotations

from dataclasses import dataclass

FIGURES = ("gmv", "buyers", "dau", "packages")


@dataclass(frozen=True, slots=True)
class Gap:
    platform: str
    theirs: float
    gap: float | None
    ratio: float | None
    their_growth: float | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """One metric in one period."""

    metric: str
    period: str
    ours: float | None
    share: float | None
    rank: int | None
    platforms: int
    our_growth: float | None
    gaps: tuple[Gap, ...]


def growth(now: float | None, before: float | None) -> float | None:
    """Relative change; None when either side is missing or the base is zero.

    >>> growth(110.0, 100.0)
    0.1
    """
    if now is None or before is None or before == 0:
        return None
    return round(now / before - 1, 12)


def compare(
    metric: str,
    period: str,
    ours: float | None,
    theirs: dict[str, float],
    ours_before: float | None = None,
    theirs_before: dict[str, float] | None = None,
) -> Comparison:
    """Compare our value of ``metric`` with each competitor's in one period.

    >>> c = compare("gmv", "2023", 1.0, {"a": 3.0, "b": 1.0})
    >>> (c.share, c.rank)
    (0.2, 2)
    """
    theirs_before = theirs_before or {}
    gaps = tuple(
        Gap(
            p,
            v,
            (ours - v) if ours is not None else None,
            (ours / v) if ours is not None and v else None,
            growth(v, theirs_before.get(p)),
        )
        for p, v in sorted(theirs.items(), key=lambda kv: -kv[1])
    )
    if ours is None:
        return Comparison(metric, period, None, None, None, len(theirs) + 1, None, gaps)
    total = ours + sum(theirs.values())
    share = ours / total if total else None
    rank = 1 + sum(1 for v in theirs.values() if v > ours)
    return Comparison(
        metric, period, ours, share, rank, len(theirs) + 1, growth(ours, ours_before), gaps
    )
