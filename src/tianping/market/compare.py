"""Our figures beside the market's (pure): share, rank, gap to each competitor, growth.

Share is our value over the sum of our value and every competitor's in the same period and
metric (the platforms in the market file are taken to be the market). Rank is 1 for the
largest value. Gap is ours minus theirs, and the ratio ours / theirs. Growth compares a period
with the one before it (same kind), for us and for each competitor that has both.

Like is compared with like (:func:`basis`): a flow (GMV, packages) only over the whole period
or as a projection asked for; distinct buyers only over the whole period (they cannot be
projected); DAU, a daily average, over the days we cover. A figure that is not comparable is
shown without share, rank or gaps, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

FIGURES = ("gmv", "buyers", "dau", "packages")
#: Figures summed over the period (a part of the period can be projected to the whole).
FLOWS = ("gmv", "packages")


@dataclass(frozen=True, slots=True)
class Gap:
    """One competitor beside us for a metric: their figure, our gap and ratio to it, and their growth on the period before."""

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
    comparable: bool = True
    basis: str = "measured over the whole period"


def basis(metric: str, covered: int, days: int, projected: bool) -> tuple[bool, str]:
    """Whether our ``metric`` over ``covered`` of the period's ``days`` compares with a
    platform's figure for the whole period, and on what basis (said to the reader).

    >>> basis("gmv", 20, 31, projected=False)[0], basis("gmv", 20, 31, projected=True)
    (False, (True, 'projected linearly from 20 of 31 days'))
    >>> basis("dau", 20, 31, projected=False)
    (True, 'daily average over the 20 of 31 days we cover')
    """
    if covered == 0:
        return False, "we have no data in this period"
    if metric == "dau":
        if covered == days:
            return True, "daily average over the whole period"
        return True, f"daily average over the {covered} of {days} days we cover"
    if covered == days and not projected:
        return True, "measured over the whole period"
    if metric in FLOWS:
        if projected:
            return True, f"projected linearly from {covered} of {days} days"
        return False, (
            f"our data covers {covered} of {days} days: a part against the whole is not "
            "compared (--project projects it)"
        )
    return False, (
        f"distinct buyers of {covered} of {days} days do not compare with a whole period's, "
        "and cannot be projected"
    )


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
    *,
    on: tuple[bool, str] = (True, "measured over the whole period"),
) -> Comparison:
    """Compare our value of ``metric`` with each competitor's in one period.

    ``on`` is :func:`basis`' answer: when our figure is not comparable, it is shown alone
    (no share, rank, gap or ratio), with the reason.

    >>> c = compare("gmv", "2023", 1.0, {"a": 3.0, "b": 1.0})
    >>> (c.share, c.rank)
    (0.2, 2)
    """
    theirs_before = theirs_before or {}
    comparable, said = on
    if not comparable:
        gaps = tuple(
            Gap(p, v, None, None, growth(v, theirs_before.get(p)))
            for p, v in sorted(theirs.items(), key=lambda kv: -kv[1])
        )
        return Comparison(
            metric, period, ours, None, None, len(theirs) + 1, None, gaps, False, said
        )
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
        return Comparison(
            metric, period, None, None, None, len(theirs) + 1, None, gaps, False, said
        )
    total = ours + sum(theirs.values())
    share = ours / total if total else None
    rank = 1 + sum(1 for v in theirs.values() if v > ours)
    return Comparison(
        metric, period, ours, share, rank, len(theirs) + 1, growth(ours, ours_before), gaps,
        True, said,
    )  # fmt: skip
