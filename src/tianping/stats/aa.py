"""A/A checks: do many null comparisons produce p-values that look uniform?

Given the p-values of many A/A splits (no true effect), the false-positive rate at alpha
should be within sampling error of alpha and the p-values should be uniform on [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from tianping.errors import InvalidInput
from tianping.stats.contrast import check_alpha


@dataclass(frozen=True)
class AAReport:
    """Summary of an A/A run.

    Attributes:
        n: number of p-values.
        alpha: the significance level checked.
        false_positives: p-values below alpha.
        false_positive_rate: ``false_positives / n``.
        fpr_ci_lower: lower bound of the exact (Clopper–Pearson) interval for the rate.
        fpr_ci_upper: upper bound.
        ks_statistic: Kolmogorov–Smirnov distance to the uniform distribution.
        ks_pvalue: p-value of the KS test of uniformity.
        consistent: True when alpha lies in the rate's interval and the KS p-value is at
            least ``1 - confidence``.
    """

    n: int
    alpha: float
    false_positives: int
    false_positive_rate: float
    fpr_ci_lower: float
    fpr_ci_upper: float
    ks_statistic: float
    ks_pvalue: float
    consistent: bool


def aa_report(pvalues, alpha: float = 0.05, *, confidence: float = 0.95) -> AAReport:
    """False-positive rate with its binomial interval, and a KS test of uniformity.

    Args:
        pvalues: p-values of independent A/A comparisons.
        alpha: the significance level whose false-positive rate is checked.
        confidence: level of the interval for the rate (and 1 - the KS threshold).
    """
    alpha = check_alpha(alpha)
    confidence = check_alpha(confidence)
    p = np.asarray(pvalues, dtype=float)
    if p.size == 0 or np.isnan(p).any() or p.min() < 0 or p.max() > 1:
        raise InvalidInput("need one or more p-values, all in [0, 1]", field="pvalues")
    k = int((p < alpha).sum())
    ci = stats.binomtest(k, p.size).proportion_ci(confidence_level=confidence, method="exact")
    ks = stats.kstest(p, "uniform")
    consistent = bool(ci.low <= alpha <= ci.high and ks.pvalue >= 1 - confidence)
    return AAReport(
        int(p.size),
        alpha,
        k,
        k / p.size,
        float(ci.low),
        float(ci.high),
        float(ks.statistic),
        float(ks.pvalue),
        consistent,
    )
