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


def split_pvalues(
    y,
    treated,
    *,
    metric_type: str,
    d=None,
    alpha: float = 0.05,
) -> dict[str, np.ndarray]:
    """p-values and interval coverage of zero for many A/A splits of the same units.

    Every row of ``treated`` is one split (True = treatment, False = control); the sums of
    both halves come from matrix products, so a thousand splits of a million units cost a
    few seconds, and each split is analysed exactly as an experiment would be (Welch, delta
    method for ratios, no CUPED).

    Args:
        y: unit values (the numerator for ratio metrics), length ``n``.
        treated: boolean matrix ``(splits, n)``.
        metric_type: ``mean``, ``proportion`` or ``ratio``.
        d: the denominators, for ratio metrics.
        alpha: significance level of the intervals.

    Returns:
        ``{"pvalue": ..., "covered": ..., "effect_size": ...}``, one entry per split;
        ``covered`` says whether the effect's interval contains zero (the truth).
    """
    from tianping.stats.analysis import AnalysisConfig, compare
    from tianping.stats.sufficient import ArmStats

    y = np.asarray(y, dtype=float)
    t = np.asarray(treated, dtype=bool)
    if t.ndim != 2 or t.shape[1] != y.size:
        raise InvalidInput("treated must be a (splits, units) boolean matrix", field="treated")
    cols = {"sum": y, "sum_sq": y * y}
    if metric_type == "ratio":
        if d is None:
            raise InvalidInput("a ratio metric needs its denominators d", field="d")
        d = np.asarray(d, dtype=float)
        cols |= {"den_sum": d, "den_sum_sq": d * d, "num_den_sum": y * d}
    names = list(cols)
    matrix = np.stack([cols[k] for k in names], axis=1)
    totals = matrix.sum(axis=0)
    tf = t.astype(float)
    in_t = tf @ matrix
    n_t = t.sum(axis=1)
    config = AnalysisConfig(metric_type=metric_type, alpha=alpha, correction="none")
    out = {k: np.empty(t.shape[0]) for k in ("pvalue", "effect_size")}
    covered = np.empty(t.shape[0], dtype=bool)
    for i in range(t.shape[0]):
        treat = ArmStats("treatment", int(n_t[i]), **dict(zip(names, in_t[i], strict=True)))
        ctrl = ArmStats(
            "control", int(y.size - n_t[i]), **dict(zip(names, totals - in_t[i], strict=True))
        )
        c = compare(ctrl, treat, config)
        out["pvalue"][i] = c.pvalue
        out["effect_size"][i] = c.effect_size
        covered[i] = c.effect_size_ci_lower <= 0 <= c.effect_size_ci_upper
    return {**out, "covered": covered}
