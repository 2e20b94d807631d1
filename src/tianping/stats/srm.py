"""Sample-ratio mismatch: are the arms' unit counts consistent with the planned split?

A chi-square goodness-of-fit test of the observed counts against ``N * w_i / sum(w)``.
A p-value below :data:`SRM_THRESHOLD` (0.001) flags the experiment: its assignment or
exposure logging is broken and no ship recommendation should follow.

When the weights changed while units arrived (a horse race re-weights its arms at every
step), :func:`srm_over_windows` tests each window's new units against the weights in force
in that window and adds the chi-square statistics (and their degrees of freedom): windows
hold different units, so the sum is chi-square under "the split worked" too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from tianping.errors import InvalidInput

SRM_THRESHOLD = 0.001
#: A weight below this share of a window's total is "no traffic" (an eliminated race arm).
NEGLIGIBLE_SHARE = 1e-6


@dataclass(frozen=True)
class SRMResult:
    """Outcome of the sample-ratio-mismatch check.

    Attributes:
        pvalue: chi-square goodness-of-fit p-value.
        statistic: the chi-square statistic (``len(counts) - 1`` degrees of freedom).
        expected: the expected counts under the planned weights (summed over windows).
        flagged: True when ``pvalue < threshold``.
        dof: degrees of freedom of ``statistic``.
        windows: how many weight windows were tested (1 for a fixed split).
    """

    pvalue: float
    statistic: float
    expected: tuple[float, ...]
    flagged: bool
    dof: int = 0
    windows: int = 1


def srm_test(
    counts: Sequence[int], weights: Sequence[float], *, threshold: float = SRM_THRESHOLD
) -> SRMResult:
    """Chi-square test of the arms' unit counts against the planned weights.

    Args:
        counts: units per arm, control first.
        weights: planned traffic weights per arm, any positive scale (normalised here).
        threshold: p-values below this flag a mismatch.

    >>> srm_test([5000, 5000], [0.5, 0.5]).flagged
    False
    >>> srm_test([5000, 5400], [0.5, 0.5]).flagged
    True
    """
    _check_weights(counts, weights)
    total, weight_sum = float(sum(counts)), float(sum(weights))
    expected = tuple(total * w / weight_sum for w in weights)
    if total <= 0:
        return SRMResult(1.0, 0.0, expected, False, len(counts) - 1)
    statistic, pvalue = stats.chisquare([float(c) for c in counts], expected)
    return SRMResult(
        float(pvalue), float(statistic), expected, bool(pvalue < threshold), len(counts) - 1
    )


def srm_over_windows(
    windows: Sequence[tuple[Sequence[int], Sequence[float]]],
    *,
    threshold: float = SRM_THRESHOLD,
) -> SRMResult:
    """Chi-square test of each window's new units against the weights in force in it.

    Each window contributes ``sum((c - e)**2 / e)`` over the arms with traffic and
    ``arms with traffic - 1`` degrees of freedom; an arm without traffic (a weight below
    :data:`NEGLIGIBLE_SHARE` of the window's) must have no units, else the split is broken
    (p = 0). Windows without units add nothing. With one window this is :func:`srm_test`.

    Args:
        windows: ``(counts, weights)`` per window, both in arm order.
        threshold: p-values below this flag a mismatch.

    >>> srm_over_windows([([500, 500], [1, 1]), ([100, 900], [0.1, 0.9])]).flagged
    False
    >>> srm_test([600, 1400], [0.1, 0.9]).flagged  # the same units against the last weights
    True
    """
    if not windows:
        raise InvalidInput("no weight windows to test", field="windows")
    arms = len(windows[0][0])
    statistic, dof = 0.0, 0
    expected = np.zeros(arms)
    for counts, weights in windows:
        _check_weights(counts, weights)
        if len(counts) != arms:
            raise InvalidInput("every window needs a count per arm", field="windows")
        c, w = np.asarray(counts, dtype=float), np.asarray(weights, dtype=float)
        share = w / w.sum()
        expected += c.sum() * share
        if c.sum() <= 0:
            continue
        live = share >= NEGLIGIBLE_SHARE
        if (c[~live] > 0).any():
            statistic = math.inf
            continue
        e = c.sum() * share[live] / share[live].sum()
        statistic += float(((c[live] - e) ** 2 / e).sum())
        dof += int(live.sum()) - 1
    if math.isinf(statistic):
        pvalue = 0.0
    else:
        pvalue = float(stats.chi2.sf(statistic, dof)) if dof > 0 else 1.0
    return SRMResult(
        pvalue, statistic, tuple(float(x) for x in expected), pvalue < threshold, dof, len(windows)
    )


def _check_weights(counts: Sequence[int], weights: Sequence[float]) -> None:
    if len(weights) != len(counts):
        raise InvalidInput(
            f"planned_weights has {len(weights)} entries but there are {len(counts)} arms",
            field="planned_weights",
        )
    for i, w in enumerate(weights):
        if (
            isinstance(w, bool)
            or not isinstance(w, int | float)
            or not (math.isfinite(w) and w > 0)
        ):
            raise InvalidInput(
                f"planned_weights[{i}] must be a positive number, got {w!r}",
                field="planned_weights",
            )
