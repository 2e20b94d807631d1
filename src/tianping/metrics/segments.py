"""Which segments moved a metric: combinations of up to three dimensions, mix vs rate (pure).

The input is one cube: GMV (minor units) and orders per day and per combination of dimension
values, for a period before and a period after. Every segment — one value on each of one, two
or three dimensions (``channel = live_stream ∧ category = beauty``) — is read from that cube by
summing cells, never by another query.

**Contributions.** A segment's GMV is ``G_s = N · w_s · r_s``: all orders ``N``, the segment's
share of them ``w_s`` (its *mix*) and its order value ``r_s = G_s / N_s`` (its *rate*). The
segment's change splits exactly with the logarithmic mean Divisia index (as
:mod:`tianping.metrics.explain` does for the whole), ``L(G1_s, G0_s) · ln(x1 / x0)`` per
factor: *volume* (every segment's share of the overall change in orders), *mix* and *rate*.
The segment's **own effect** is mix + rate: what it did beyond riding the overall volume.

**Noise floor.** A ratio of two daily sums (``w_s = ΣN_s / ΣN``, ``r_s = ΣG_s / ΣN_s``) varies
from day to day; its variance is the ratio estimator's with days as clusters,
``n/(n−1) · Σ_d (Y_d − R·X_d)² / (ΣX)²``, and the weekly rhythm cancels inside each day's
ratio. A segment's own effect is reported as a cause only when its interval
``effect ± c·se`` excludes zero, with ``c`` the Student-t quantile at ``1 − α/(2m)`` over the
``m`` segments tested (Bonferroni) and ``n − 1`` degrees of freedom for the shorter period, so
with no real change the chance that *any* segment is reported is at most ``α``.

**Succinctness.** A reported segment is dropped when a parent (the same segment less one
dimension) explains it: its change in GMV share is not distinguishable from the rest of the
parent's (the effect is uniform inside the parent, so the shorter name says it). A parent is
dropped when one of its children carries its whole effect: the child differs from the rest of
the parent and that rest has no effect above the noise floor. What remains is ranked by the
size of its own effect (its explanatory power: the share of the total change it accounts for).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy import stats

from tianping.errors import InvalidInput

MAX_DEPTH = 3


@dataclass(frozen=True, slots=True)
class Cube:
    """GMV and orders per (period, day, dimension values): the one grouped pass's result.

    Attributes:
        dimensions: the dimension names, in the order of ``codes``' columns.
        labels: each dimension's values; ``codes[:, j]`` indexes ``labels[j]``.
        codes: (cells, dimensions) integer codes.
        period: 0 (before) or 1 (after) per cell.
        day: the day of each cell, 0-based inside its period.
        orders: orders per cell.
        gmv_minor: GMV per cell in minor units (integers).
        days: the days of each period, ``(before, after)``.
    """

    dimensions: tuple[str, ...]
    labels: tuple[tuple[str, ...], ...]
    codes: np.ndarray
    period: np.ndarray
    day: np.ndarray
    orders: np.ndarray
    gmv_minor: np.ndarray
    days: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Cause:
    """One segment whose own movement is above the noise floor.

    Money is in minor units (floats: the split of an integer change is not integral).
    ``interval`` is the simultaneous interval of ``own`` (mix + rate).
    """

    segment: tuple[tuple[str, str], ...]
    gmv_before: int
    gmv_after: int
    volume: float
    mix: float
    rate: float
    own: float
    interval: tuple[float, float]
    explanatory_power: float | None
    share_before: float
    share_after: float
    aov_before: float
    aov_after: float

    @property
    def change(self) -> int:
        """The segment's GMV change in minor units."""
        return self.gmv_after - self.gmv_before

    @property
    def label(self) -> str:
        """``dim = value ∧ dim = value``."""
        return " ∧ ".join(f"{d} = {v}" for d, v in self.segment)


@dataclass(frozen=True, slots=True)
class Explanation:
    """The causes of a GMV change, with what was tested and the floor it was tested against."""

    gmv_before: int
    gmv_after: int
    orders_before: int
    orders_after: int
    causes: tuple[Cause, ...]
    tested: int
    critical: float
    alpha: float
    dimensions: tuple[str, ...]

    @property
    def change(self) -> int:
        """Total GMV change in minor units."""
        return self.gmv_after - self.gmv_before


@dataclass(slots=True)
class _Level:
    """Every segment of one combination of dimensions, as day arrays."""

    dims: tuple[int, ...]
    keys: np.ndarray  # (segments, len(dims)) codes
    n: np.ndarray  # (segments, 2, max_days) orders per day
    g: np.ndarray  # (segments, 2, max_days) GMV per day
    index: dict[tuple[int, ...], int]


def explain_cube(
    cube: Cube,
    *,
    depth: int = MAX_DEPTH,
    alpha: float = 0.05,
    min_orders: int = 30,
    top: int = 10,
) -> Explanation:
    """The segments that explain the GMV change between the cube's two periods.

    Args:
        cube: the grouped cube (see :class:`Cube`).
        depth: combine up to this many dimensions (1–3).
        alpha: chance, with nothing changed, that any segment is reported (family-wise).
        min_orders: segments with fewer orders in either period are not tested.
        top: how many causes to return.
    """
    _check(cube, depth, alpha)
    n_tot, g_tot = daily_totals(cube)
    levels = [_level(cube, dims) for k in range(1, depth + 1)
              for dims in combinations(range(len(cube.dimensions)), k)]  # fmt: skip
    testable = [(lv, _testable(lv, min_orders)) for lv in levels]
    tested = int(sum(mask.sum() for _, mask in testable))
    df = max(min(cube.days) - 1, 1)
    critical = float(stats.t.ppf(1 - alpha / (2 * max(tested, 1)), df))
    total_change = float(g_tot[1].sum() - g_tot[0].sum())
    found: dict[tuple[tuple[int, int], ...], Cause] = {}
    for lv, mask in testable:
        for i in np.flatnonzero(mask):
            cause = _cause(cube, lv, i, n_tot, critical, total_change)
            if cause is not None:
                found[_key(lv, i)] = cause
    kept = _succinct(found, levels, n_tot, critical, cube, min_orders)
    ranked = sorted(kept, key=lambda c: (-abs(c.own), len(c.segment), c.label))
    return Explanation(
        gmv_before=int(g_tot[0].sum()),
        gmv_after=int(g_tot[1].sum()),
        orders_before=int(n_tot[0].sum()),
        orders_after=int(n_tot[1].sum()),
        causes=tuple(ranked[:top]),
        tested=tested,
        critical=critical,
        alpha=alpha,
        dimensions=cube.dimensions,
    )


def _check(cube: Cube, depth: int, alpha: float) -> None:
    if not 1 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be 1 to {MAX_DEPTH}, not {depth}", field="depth")
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha must be between 0 and 1, not {alpha}", field="alpha")
    if not cube.dimensions:
        raise InvalidInput("name at least one dimension to search", field="dimensions")
    if min(cube.days) < 2:
        raise InvalidInput(
            "each period needs at least two days: the noise floor is read from day-to-day "
            f"variation (got {cube.days[0]} and {cube.days[1]} days)",
            field="days",
        )


def daily_totals(cube: Cube) -> tuple[np.ndarray, np.ndarray]:
    """Orders and GMV (minor units) per period and day: two ``(2, longest period)`` arrays."""
    width = max(cube.days)
    flat = cube.period * width + cube.day
    n = np.bincount(flat, weights=cube.orders, minlength=2 * width).reshape(2, width)
    g = np.bincount(flat, weights=cube.gmv_minor, minlength=2 * width).reshape(2, width)
    return n, g


def _level(cube: Cube, dims: tuple[int, ...]) -> _Level:
    sizes = tuple(len(cube.labels[d]) for d in dims)
    segment = np.ravel_multi_index(tuple(cube.codes[:, d] for d in dims), sizes)
    width = max(cube.days)
    flat = (segment * 2 + cube.period) * width + cube.day
    size = math.prod(sizes) * 2 * width
    n = np.bincount(flat, weights=cube.orders, minlength=size).reshape(-1, 2, width)
    g = np.bincount(flat, weights=cube.gmv_minor, minlength=size).reshape(-1, 2, width)
    keys = np.stack(np.unravel_index(np.arange(math.prod(sizes)), sizes), axis=1)
    index = {tuple(int(c) for c in k): i for i, k in enumerate(keys)}
    return _Level(dims, keys, n, g, index)


def _testable(lv: _Level, min_orders: int) -> np.ndarray:
    per_period = lv.n.sum(axis=2)
    return (per_period >= min_orders).all(axis=1) & (lv.g.sum(axis=2) > 0).all(axis=1)


def _key(lv: _Level, i: int) -> tuple[tuple[int, int], ...]:
    return tuple((d, int(c)) for d, c in zip(lv.dims, lv.keys[i], strict=True))


def _log_ratio_var(y: np.ndarray, x: np.ndarray, days: int) -> float:
    """Variance of ``ln(Σy / Σx)`` over ``days`` day clusters (delta method)."""
    y, x = y[:days], x[:days]
    sy, sx = y.sum(), x.sum()
    r = sy / sx
    resid = y - r * x
    var_r = days / (days - 1) * float((resid**2).sum()) / sx**2
    return var_r / r**2


def _log_mean(a: float, b: float) -> float:
    return a if a == b else (a - b) / (math.log(a) - math.log(b))


def _own_se(y: np.ndarray, x: np.ndarray, days: tuple[int, int]) -> float:
    """Standard error of ``Δ ln(Σy / Σx)`` between the periods (``y``, ``x``: (2, width))."""
    return math.sqrt(sum(_log_ratio_var(y[p], x[p], days[p]) for p in (0, 1)))


def _cause(
    cube: Cube, lv: _Level, i: int, n_tot: np.ndarray, critical: float, total_change: float
) -> Cause | None:
    n, g = lv.n[i], lv.g[i]
    g0, g1 = g[0].sum(), g[1].sum()
    weight = _log_mean(g1, g0)
    se = weight * _own_se(g, n_tot, cube.days)
    own = weight * math.log((g1 / n_tot[1].sum()) / (g0 / n_tot[0].sum()))
    if abs(own) <= critical * se:
        return None
    w0, w1 = n[0].sum() / n_tot[0].sum(), n[1].sum() / n_tot[1].sum()
    r0, r1 = g0 / n[0].sum(), g1 / n[1].sum()
    labels = tuple(
        (cube.dimensions[d], cube.labels[d][int(c)])
        for d, c in zip(lv.dims, lv.keys[i], strict=True)
    )
    return Cause(
        segment=labels,
        gmv_before=int(round(g0)),
        gmv_after=int(round(g1)),
        volume=weight * math.log(n_tot[1].sum() / n_tot[0].sum()),
        mix=weight * math.log(w1 / w0),
        rate=weight * math.log(r1 / r0),
        own=own,
        interval=(own - critical * se, own + critical * se),
        explanatory_power=own / total_change if total_change else None,
        share_before=float(w0),
        share_after=float(w1),
        aov_before=float(r0),
        aov_after=float(r1),
    )


def _succinct(
    found: dict[tuple[tuple[int, int], ...], Cause],
    levels: list[_Level],
    n_tot: np.ndarray,
    critical: float,
    cube: Cube,
    min_orders: int,
) -> list[Cause]:
    by_dims = {lv.dims: lv for lv in levels}
    dropped: set[tuple[tuple[int, int], ...]] = set()
    for key in found:
        if len(key) < 2:
            continue
        child = _arrays(by_dims, key)
        for parent_key in combinations(key, len(key) - 1):
            parent = _arrays(by_dims, parent_key)
            rest = (parent[0] - child[0], parent[1] - child[1])
            if (rest[0].sum(axis=1) < min_orders).any() or (rest[1].sum(axis=1) <= 0).any():
                continue  # the child is (almost) the whole parent: nothing to compare with
            if not _differs(child[1], rest[1], cube.days, critical):
                dropped.add(key)  # uniform inside the parent: the parent says it shorter
            elif parent_key in found and not _moves(rest[1], n_tot, cube.days, critical):
                dropped.add(parent_key)  # the child carries the parent's whole effect
    return [c for k, c in found.items() if k not in dropped]


def _arrays(by_dims: dict[tuple[int, ...], _Level], key) -> tuple[np.ndarray, np.ndarray]:
    lv = by_dims[tuple(d for d, _ in key)]
    i = lv.index[tuple(c for _, c in key)]
    return lv.n[i], lv.g[i]


def _differs(g_a: np.ndarray, g_b: np.ndarray, days: tuple[int, int], critical: float) -> bool:
    """Whether segment a's GMV moved differently from segment b's (``Δ ln(G_a / G_b)``)."""
    delta = math.log(g_a[1].sum() / g_b[1].sum()) - math.log(g_a[0].sum() / g_b[0].sum())
    return abs(delta) > critical * _own_se(g_a, g_b, days)


def _moves(g: np.ndarray, n_tot: np.ndarray, days: tuple[int, int], critical: float) -> bool:
    """Whether a segment's own effect (its GMV per order of the whole) is above the floor."""
    delta = math.log(g[1].sum() / n_tot[1].sum()) - math.log(g[0].sum() / n_tot[0].sum())
    return abs(delta) > critical * _own_se(g, n_tot, days)


def cube_of_orders(
    dimensions: tuple[str, ...],
    labels: tuple[tuple[str, ...], ...],
    period: np.ndarray,
    day: np.ndarray,
    codes: np.ndarray,
    amount_minor: np.ndarray,
    days: tuple[int, int],
) -> Cube:
    """Group order rows into a :class:`Cube` in memory (what the warehouse's grouped pass does).

    >>> c = cube_of_orders(("channel",), (("app", "web"),), np.array([0, 0, 1]),
    ...                    np.array([0, 0, 1]), np.array([[0], [0], [1]]),
    ...                    np.array([100, 50, 70]), (2, 2))
    >>> c.orders.tolist(), c.gmv_minor.tolist()
    ([2, 1], [150, 70])
    """
    width = max(days)
    sizes = (2, width, *(len(v) for v in labels))
    flat = np.ravel_multi_index((period, day, *codes.T), sizes)
    found, inverse = np.unique(flat, return_inverse=True)
    cells = np.stack(np.unravel_index(found, sizes), axis=1)
    return Cube(
        dimensions=dimensions,
        labels=labels,
        codes=cells[:, 2:],
        period=cells[:, 0],
        day=cells[:, 1],
        orders=np.bincount(inverse, minlength=cells.shape[0]).astype(np.int64),
        gmv_minor=np.bincount(inverse, weights=amount_minor, minlength=cells.shape[0]).astype(
            np.int64
        ),
        days=days,
    )
