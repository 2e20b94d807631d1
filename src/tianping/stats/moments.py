"""From sufficient statistics to each arm's estimate and its per-unit variance.

Every method (Welch, sequential, Bayesian) works on the same small record per arm:
:class:`ArmMoments` ``(n, mean, variance)``, where ``variance / n`` is the squared standard
error of ``mean``. This module builds it for each metric type, with or without CUPED.

- mean: ``mean = sum/n``, ``variance`` = sample variance of ``y``.
- proportion: ``mean = p = sum/n``, ``variance = p (1 - p)``.
- ratio (delta method): ``R = sum(y)/sum(d)``; the per-unit variance is that of the
  linearisation ``(y - R d) / mean(d)``:
  ``(var_y - 2 R cov_yd + R**2 var_d) / mean(d)**2``.
- CUPED: ``theta = cov(y, x) / var(x)`` on the two arms pooled (for ratios, ``y`` is the
  linearisation above); each arm's estimate becomes ``mean - theta (mean_x - pooled mean_x)``
  and its variance ``var_y - 2 theta cov_yx + theta**2 var_x``. The pooled ``theta`` and the
  centring on the pooled covariate mean follow tea-tasting; the absolute effect equals
  GrowthBook's ``(y_t - y_c) - theta (x_t - x_c)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tianping.stats.sufficient import ArmStats


@dataclass(frozen=True)
class ArmMoments:
    """One arm's estimate of the metric and the per-unit variance of that estimate.

    Attributes:
        name: the arm's name.
        n: number of units.
        mean: the estimate (mean, proportion or ratio; CUPED-adjusted if asked).
        variance: per-unit variance, so that ``variance / n`` is the squared standard error.
    """

    name: str
    n: int
    mean: float
    variance: float

    @property
    def se2(self) -> float:
        """Squared standard error of :attr:`mean`."""
        return self.variance / self.n


@dataclass(frozen=True)
class CupedFit:
    """CUPED adjustment of one control/treatment pair.

    Attributes:
        control: the control's adjusted moments.
        treatment: the treatment's adjusted moments.
        theta: the pooled regression coefficient of the metric on the covariate.
        variance_reduction: ``1 - Var(adjusted effect) / Var(unadjusted effect)``.
    """

    control: ArmMoments
    treatment: ArmMoments
    theta: float
    variance_reduction: float


def arm_moments(arm: ArmStats, metric_type: str) -> ArmMoments:
    """The unadjusted estimate and per-unit variance of one arm.

    Args:
        arm: validated sufficient statistics (see :func:`validate_arms`).
        metric_type: ``mean``, ``proportion`` or ``ratio``.
    """
    if metric_type == "proportion":
        p = arm.mean
        return ArmMoments(arm.name, arm.n, p, p * (1.0 - p))
    if metric_type == "ratio":
        return ArmMoments(arm.name, arm.n, arm.ratio, _linearised_variance(arm))
    return ArmMoments(arm.name, arm.n, arm.mean, arm.variance)


def cuped_moments(control: ArmStats, treatment: ArmStats, metric_type: str) -> CupedFit:
    """CUPED / regression-adjusted moments for one control/treatment pair.

    Args:
        control: the control arm, with the covariate sums.
        treatment: the treatment arm, with the covariate sums.
        metric_type: ``mean``, ``proportion`` or ``ratio``.
    """
    pooled = control + treatment
    pooled_x_var = _x_variance(pooled, metric_type)
    theta = 0.0 if pooled_x_var <= 0 else _xy_covariance(pooled, metric_type) / pooled_x_var
    adjusted = [_adjusted(arm, metric_type, theta, pooled.pre_mean) for arm in (control, treatment)]
    plain = [arm_moments(arm, metric_type) for arm in (control, treatment)]
    before = plain[0].se2 + plain[1].se2
    after = adjusted[0].se2 + adjusted[1].se2
    reduction = 0.0 if before <= 0 else 1.0 - after / before
    return CupedFit(adjusted[0], adjusted[1], theta, reduction)


def _adjusted(arm: ArmStats, metric_type: str, theta: float, pooled_x_mean: float) -> ArmMoments:
    plain = arm_moments(arm, metric_type)
    mean = plain.mean - theta * (arm.pre_mean - pooled_x_mean)
    variance = (
        plain.variance
        - 2.0 * theta * _xy_covariance(arm, metric_type)
        + theta * theta * _x_variance(arm, metric_type)
    )
    return ArmMoments(arm.name, arm.n, mean, max(variance, 0.0))


def _x_variance(arm: ArmStats, metric_type: str) -> float:
    return arm.pre_variance * _ddof_factor(arm, metric_type)


def _xy_covariance(arm: ArmStats, metric_type: str) -> float:
    """Covariance of the metric's linearised unit value with the covariate."""
    if metric_type == "ratio":
        return (arm.pre_covariance - arm.ratio * arm.pre_den_covariance) / arm.den_mean
    return arm.pre_covariance * _ddof_factor(arm, metric_type)


def _ddof_factor(arm: ArmStats, metric_type: str) -> float:
    """Proportions use divisor n (binomial variance), so their covariances do too."""
    return (arm.n - 1) / arm.n if metric_type == "proportion" else 1.0


def _linearised_variance(arm: ArmStats) -> float:
    r = arm.ratio
    variance = (
        arm.variance - 2.0 * r * arm.num_den_covariance + r * r * arm.den_variance
    ) / arm.den_mean**2
    return max(variance, 0.0)
