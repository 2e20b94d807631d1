"""Budget mode: a money budget split across strategies by their chance of the best return on
spend (pure: numpy only).

A strategy's return is its goal metric summed over its units (e.g. GMV) and its spend the money
the race allocated to it so far (integer minor units). Its return on spend is
``return / spend``; by the central limit theorem the summed return is Normal with variance
``n * unit_variance``, so ROI ~ Normal(sum / spend, sqrt(n var) / spend). Each period's budget
is split in proportion to the Monte Carlo chance of having the best ROI, within the
per-strategy floor and cap (:func:`tianping.races.allocation.allocate_budget`). Before every
active strategy has been funded once, the split is equal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tianping.races.allocation import allocate_budget
from tianping.races.thompson import chance_to_be_best
from tianping.stats import ArmStats


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One strategy's money in a budget step.

    Attributes:
        arm: the strategy.
        allocated_minor: budget given for the next period (minor units).
        spend_minor: spent so far, before this allocation (minor units).
        return_value: goal metric summed over the strategy's units so far.
        roi: return per major currency unit spent (None before any spend).
        p_best: chance of having the best return on spend.
    """

    arm: str
    allocated_minor: int
    spend_minor: int
    return_value: float
    roi: float | None
    p_best: float


def budget_step(
    arms: Sequence[ArmStats],
    spend_minor: Sequence[int],
    *,
    total_minor: int,
    active: Sequence[bool],
    rng: np.random.Generator,
    floor_minor: int = 0,
    cap_minor: int | None = None,
    exponent: int = 2,
    draws: int = 10_000,
) -> list[BudgetLine]:
    """Allocate the next period's budget.

    Args:
        arms: each strategy's goal-metric statistics (``sum`` is the return).
        spend_minor: money each has been given so far.
        total_minor: the period's budget.
        active: strategies still in the race (eliminated ones get nothing).
        rng: seeded generator of the Monte Carlo draws.
        floor_minor: minimum per active strategy.
        cap_minor: maximum per strategy.
        exponent: decimals of the currency (ROI is per major unit).
        draws: Monte Carlo draws.
    """
    on = np.asarray(active, dtype=bool)
    spend = np.asarray(spend_minor, dtype=np.int64)
    scale = 10.0**exponent
    roi = [a.sum / (s / scale) if s > 0 else None for a, s in zip(arms, spend, strict=True)]
    p_best = np.zeros(len(arms))
    funded = on & (spend > 0)
    if on.any() and funded[on].all():
        idx = np.flatnonzero(on)
        cols = [rng.normal(roi[i], _roi_sd(arms[i], spend[i] / scale), draws) for i in idx]
        p_best[idx] = chance_to_be_best(np.column_stack(cols))
        target = p_best
    else:
        target = on.astype(float)
    parts = allocate_budget(
        total_minor, target, floor_minor=floor_minor, cap_minor=cap_minor, active=on
    )
    return [
        BudgetLine(a.name, int(parts[i]), int(spend[i]), float(a.sum), roi[i], float(p_best[i]))
        for i, a in enumerate(arms)
    ]


def _roi_sd(arm: ArmStats, spend_major: float) -> float:
    var = arm.variance if arm.n > 1 else 0.0
    return max(math.sqrt(max(var, 0.0) * arm.n) / spend_major, 1e-12)
