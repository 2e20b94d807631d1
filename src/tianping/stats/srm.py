"""Sample-ratio mismatch: are the arms' unit counts consistent with the planned split?

A chi-square goodness-of-fit test of the observed counts against ``N * w_i / sum(w)``.
A p-value below :data:`SRM_THRESHOLD` (0.001) flags the experiment: its assignment or
exposure logging is broken and no ship recommendation should follow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from tianping.errors import InvalidInput

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SRMResult:
    """Outcome of the sample-ratio-mismatch check.

    Attributes:
        pvalue: chi-square goodness-of-fit p-value.
        statistic: the chi-square statistic (``len(counts) - 1`` degrees of freedom).
        expected: the expected counts under the planned weights.
        flagged: True when ``pvalue < threshold``.
    """

    pvalue: float
    statistic: float
    expected: tuple[float, ...]
    flagged: bool


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
    total, weight_sum = float(sum(counts)), float(sum(weights))
    expected = tuple(total * w / weight_sum for w in weights)
    if total <= 0:
        return SRMResult(1.0, 0.0, expected, False)
    statistic, pvalue = stats.chisquare([float(c) for c in counts], expected)
    return SRMResult(float(pvalue), float(statistic), expected, bool(pvalue < threshold))
