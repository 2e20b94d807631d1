"""Traffic shares and money budgets with per-arm floors and caps (pure: numpy only).

:func:`bounded_shares` is the projection both use: shares proportional to a target, clipped
to ``[floor, cap]`` and re-balanced among the unclipped arms until they sum to one (each pass
fixes at least one arm, so it ends within ``arms`` passes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tianping.errors import InvalidInput


def bounded_shares(
    target: Sequence[float], floor: float | Sequence[float], cap: float | Sequence[float]
) -> np.ndarray:
    """Shares summing to 1, proportional to ``target`` within ``[floor, cap]`` per arm.

    Raises:
        InvalidInput: the bounds cannot hold together (floors above 1, caps below 1, or a
            floor above its cap).

    >>> bounded_shares([0.9, 0.1, 0.0], 0.1, 0.6).round(3).tolist()
    [0.6, 0.3, 0.1]
    """
    t = np.clip(np.asarray(target, dtype=float), 0.0, None)
    k = len(t)
    lo = np.broadcast_to(np.asarray(floor, dtype=float), (k,)).copy()
    hi = np.broadcast_to(np.asarray(cap, dtype=float), (k,)).copy()
    _check_bounds(lo, hi)
    if t.sum() <= 0:
        t = np.ones(k)
    share = np.zeros(k)
    free = np.ones(k, dtype=bool)
    for _ in range(k + 1):
        left = 1.0 - share[~free].sum()
        weights = t[free] if t[free].sum() > 0 else np.ones(int(free.sum()))
        share[free] = left * (weights / weights.sum())
        low, high = free & (share < lo - 1e-15), free & (share > hi + 1e-15)
        # Fix the side that is violated most (both at once can overshoot the other bound).
        fix = low if (lo - share)[low].sum() >= (share - hi)[high].sum() else high
        if not fix.any():
            break
        share[fix] = np.where(low[fix], lo[fix], hi[fix])
        free &= ~fix
    return _settle(share, lo, hi)


def _settle(share: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Spread a rounding or all-clipped residual over the arms with room to take it."""
    residual = 1.0 - share.sum()
    if abs(residual) > 1e-12:
        room = hi - share if residual > 0 else share - lo
        if room.sum() > 0:
            share = share + residual * room / room.sum()
    return share


def _check_bounds(lo: np.ndarray, hi: np.ndarray) -> None:
    if (lo < 0).any() or (hi > 1).any() or (lo > hi).any():
        raise InvalidInput("shares need 0 <= floor <= cap <= 1", field="min_share")
    if lo.sum() > 1 + 1e-12:
        raise InvalidInput(
            f"floors add up to {lo.sum():.3f} > 1: lower min_share or race fewer arms",
            field="min_share",
        )
    if hi.sum() < 1 - 1e-12:
        raise InvalidInput(f"caps add up to {hi.sum():.3f} < 1: raise max_share", field="max_share")


def traffic_weights(
    alloc: Sequence[float],
    active: Sequence[bool],
    *,
    control: int | None = None,
    control_share: float = 0.0,
    min_share: float = 0.0,
    max_share: float = 1.0,
) -> np.ndarray:
    """The next traffic split over all arms.

    The control (if any) keeps its fixed share; the other active arms share the rest in
    proportion to ``alloc`` (Thompson probabilities), each at least ``min_share`` and at most
    ``max_share`` of all traffic; eliminated arms get nothing.

    >>> traffic_weights([0.2, 0.7, 0.1, 0.0], [True, True, True, False], control=0,
    ...                 control_share=0.2, min_share=0.1).round(3).tolist()
    [0.2, 0.7, 0.1, 0.0]
    """
    a = np.asarray(alloc, dtype=float)
    on = np.asarray(active, dtype=bool).copy()
    out = np.zeros(len(a))
    rest = 1.0
    if control is not None:
        out[control] = control_share
        rest -= control_share
        on[control] = False
    if not on.any():
        out[control if control is not None else 0] = 1.0
        return out
    k = int(on.sum())
    lo = min(min_share / rest, 1.0 / k) if rest > 0 else 0.0
    hi = max(min(max_share / rest, 1.0), 1.0 / k) if rest > 0 else 1.0
    out[on] = rest * bounded_shares(a[on], lo, hi)
    return out


def allocate_budget(
    total_minor: int,
    target: Sequence[float],
    *,
    floor_minor: int = 0,
    cap_minor: int | None = None,
    active: Sequence[bool] | None = None,
) -> np.ndarray:
    """Split a money budget (integer minor units) in proportion to ``target``.

    Each active strategy gets at least ``floor_minor`` and at most ``cap_minor``; inactive ones
    get 0. Rounding is largest-remainder (ties to the lower index), so the parts add up to the
    total exactly unless the caps cannot absorb it (then the rest stays unallocated).

    Raises:
        InvalidInput: negative amounts, or floors that exceed the total.

    >>> allocate_budget(100, [0.5, 0.3, 0.2], floor_minor=25).tolist()
    [47, 28, 25]
    """
    if total_minor < 0 or floor_minor < 0 or (cap_minor is not None and cap_minor < floor_minor):
        raise InvalidInput("budget amounts must be >= 0 and cap >= floor", field="budget")
    t = np.asarray(target, dtype=float)
    on = np.ones(len(t), dtype=bool) if active is None else np.asarray(active, dtype=bool)
    out = np.zeros(len(t), dtype=np.int64)
    k = int(on.sum())
    if k * floor_minor > total_minor:
        raise InvalidInput(
            f"floors of {k} strategies ({k * floor_minor}) exceed the budget {total_minor}",
            field="floor_minor",
        )
    if k == 0 or total_minor == 0:
        return out
    cap = total_minor if cap_minor is None else cap_minor
    spendable = min(total_minor, k * cap)
    shares = bounded_shares(t[on], floor_minor / spendable, min(cap / spendable, 1.0))
    exact = shares * spendable
    part = np.floor(exact + 1e-9).astype(np.int64)
    short = spendable - int(part.sum())
    order = np.argsort(-(exact - part), kind="stable")
    part[order[:short]] += 1
    out[on] = part
    return out


def moved_share(old: Sequence[float], new: Sequence[float]) -> float:
    """Share of assignment buckets whose arm changes when the weights go from ``old`` to
    ``new`` (assignment compares one draw per unit with cumulative boundaries).

    >>> moved_share([1, 1], [1, 3])
    0.25
    """
    from tianping.experiments.assignment import BUCKETS, variant_boundaries

    a = (0, *variant_boundaries(list(old)))
    b = (0, *variant_boundaries(list(new)))
    kept = sum(max(0, min(a[i + 1], b[i + 1]) - max(a[i], b[i])) for i in range(len(a) - 1))
    return 1.0 - kept / BUCKETS
