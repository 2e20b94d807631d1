"""Analyse one metric of an experiment from its arms' sufficient statistics.

:func:`analyze` is the one entry point the experiment service calls per metric: it
validates the arms, checks the sample ratio, compares every treatment with the control by
the chosen method (optionally with CUPED) and adjusts the p-values across treatments.
:func:`adjust_across` adjusts jointly across several metrics (e.g. all primary metrics).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from tianping.errors import InvalidInput
from tianping.stats.bayesian import bayesian_test, beta_binomial_test
from tianping.stats.contrast import (
    Contrast,
    check_alpha,
    check_alternative,
    check_relative_scale,
)
from tianping.stats.covariates import COVARIATE_MODES, regression_moments
from tianping.stats.effects import effect_of
from tianping.stats.frequentist import welch_test
from tianping.stats.moments import arm_moments, cuped_moments
from tianping.stats.multitest import CORRECTIONS, adjust_pvalues
from tianping.stats.quantile import QuantileArm, quantile_moments, validate_quantile_arms
from tianping.stats.sequential import DEFAULT_TUNING_N, sequential_test
from tianping.stats.srm import SRMResult, srm_test
from tianping.stats.sufficient import ArmStats, validate_arms

METHODS: tuple[str, ...] = ("frequentist", "sequential", "bayesian")
BAYESIAN_MODELS: tuple[str, ...] = ("normal", "beta")


@dataclass(frozen=True)
class AnalysisConfig:
    """How to analyse a metric. Every field has the documented default.

    Attributes:
        metric_type: ``mean``, ``proportion``, ``ratio`` or ``quantile`` (arms are then
            :class:`~tianping.stats.quantile.QuantileArm`).
        method: ``frequentist`` (Welch), ``sequential`` (mSPRT) or ``bayesian``.
        alpha: significance level (intervals have level ``1 - alpha``).
        alternative: ``two-sided``, ``greater`` or ``less`` (for Bayesian: ``less`` means
            lower is better).
        cuped: adjust for the pre-exposure covariate.
        covariates: ``regression`` (adjust for every covariate of the arms'
            :class:`~tianping.stats.sufficient.CovariateSums`, OLS slopes pooled over the
            arms: CUPED++) or ``ratio`` (their two covariates form one ratio covariate);
            takes the place of ``cuped``. None: no regression adjustment.
        correction: ``holm``, ``bh``, ``by``, ``bonferroni`` or ``none`` across treatments.
        relative_scale: ``delta`` (default) or ``log`` for relative intervals.
        tuning_n: sequential: total units at which the confidence sequence is tightest.
        mixing_variance: sequential: the mixture's ``rho2``, overriding ``tuning_n``.
        prior_mean: Bayesian: prior mean of the relative lift.
        prior_variance: Bayesian: prior variance of the relative lift; None is flat.
        bayesian_model: ``normal`` (every metric) or ``beta`` (proportions without CUPED).
    """

    metric_type: str
    method: str = "frequentist"
    alpha: float = 0.05
    alternative: str = "two-sided"
    cuped: bool = False
    covariates: str | None = None
    correction: str = "holm"
    relative_scale: str = "delta"
    tuning_n: float = DEFAULT_TUNING_N
    mixing_variance: float | None = None
    prior_mean: float = 0.0
    prior_variance: float | None = None
    bayesian_model: str = "normal"

    def __post_init__(self) -> None:
        _choice(self.method, METHODS, "method")
        _choice(self.correction, CORRECTIONS, "correction")
        _choice(self.bayesian_model, BAYESIAN_MODELS, "bayesian_model")
        check_alpha(self.alpha)
        check_alternative(self.alternative)
        check_relative_scale(self.relative_scale)
        if not isinstance(self.cuped, bool):
            raise InvalidInput(f"cuped must be true or false, got {self.cuped!r}", field="cuped")
        if self.covariates is not None:
            _choice(self.covariates, COVARIATE_MODES, "covariates")
        if self.metric_type == "quantile" and (self.cuped or self.covariates):
            raise InvalidInput(
                "quantile metrics are not adjusted for covariates; set cuped false",
                field="cuped",
            )
        if self.bayesian_model == "beta" and (
            self.metric_type != "proportion" or self.cuped or self.covariates
        ):
            raise InvalidInput(
                "the beta model applies to proportions without cuped", field="bayesian_model"
            )


@dataclass(frozen=True)
class ArmSummary:
    """One arm as analysed: its units and its unadjusted estimate.

    Attributes:
        name: the arm's name.
        n: units.
        mean: the metric's estimate (mean, rate or ratio).
        variance: per-unit variance of the estimate (``variance / n`` is its squared SE).
    """

    name: str
    n: int
    mean: float
    variance: float


@dataclass(frozen=True)
class Comparison:
    """One treatment against the control.

    Attributes:
        control: the control arm's name.
        treatment: the treatment arm's name.
        control_mean: the control's estimate as compared (CUPED-adjusted with cuped).
        treatment_mean: the treatment's estimate as compared.
        effect_size: treatment minus control.
        effect_size_ci_lower: lower bound (confidence interval, confidence sequence for
            sequential, credible interval for Bayesian).
        effect_size_ci_upper: upper bound.
        rel_effect_size: treatment / control - 1 (None if the control's estimate is 0).
        rel_effect_size_ci_lower: lower bound.
        rel_effect_size_ci_upper: upper bound.
        pvalue: p-value of the absolute effect (always-valid for sequential; the Welch one
            for Bayesian).
        pvalue_adjusted: ``pvalue`` after the multiple-comparison correction.
        se: standard error of ``effect_size``.
        rel_pvalue: p-value of the relative effect on the scale of its interval (delta
            method by default, as GrowthBook); None when the relative effect is undefined.
        rel_pvalue_adjusted: ``rel_pvalue`` after the multiple-comparison correction.
        chance_to_win: Bayesian only: probability that the treatment is better.
        risk: Bayesian only: expected relative loss of shipping the treatment.
        risk_control: Bayesian only: expected relative loss of keeping the control.
        cuped_theta: CUPED's coefficient (None without cuped).
        variance_reduction: share of the effect's variance the adjustment (CUPED or the
            covariates) removed (None without).
        covariate_coefficients: with ``covariates``: covariate name → pooled coefficient.
    """

    control: str
    treatment: str
    control_mean: float
    treatment_mean: float
    effect_size: float
    effect_size_ci_lower: float
    effect_size_ci_upper: float
    rel_effect_size: float | None
    rel_effect_size_ci_lower: float | None
    rel_effect_size_ci_upper: float | None
    pvalue: float
    pvalue_adjusted: float
    se: float
    rel_pvalue: float | None = None
    rel_pvalue_adjusted: float | None = None
    chance_to_win: float | None = None
    risk: float | None = None
    risk_control: float | None = None
    cuped_theta: float | None = None
    variance_reduction: float | None = None
    covariate_coefficients: dict[str, float] | None = None


@dataclass(frozen=True)
class Analysis:
    """The analysis of one metric: arms, comparisons and the sample-ratio check.

    Attributes:
        config: the settings used.
        arms: every arm, control first.
        comparisons: one per treatment arm, in input order.
        srm: the sample-ratio-mismatch check (None without planned weights).
        strata: post-stratified analyses: the strata recombined (empty otherwise).
    """

    config: AnalysisConfig
    arms: tuple[ArmSummary, ...]
    comparisons: tuple[Comparison, ...]
    srm: SRMResult | None = None
    strata: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """JSON-ready dict (infinite bounds become None); see docs/experiments.md."""
        return _to_dict(self)


def compare(control: ArmStats, treatment: ArmStats, config: AnalysisConfig) -> Comparison:
    """Compare one treatment with the control (no multiple-comparison correction).

    Args:
        control: the control's sufficient statistics.
        treatment: the treatment's.
        config: how to analyse.
    """
    _validate([control, treatment], config)
    theta = reduction = coefficients = None
    if config.metric_type == "quantile":
        mc, mt = quantile_moments(control), quantile_moments(treatment)
    elif config.covariates:
        fit = regression_moments(control, treatment, config.metric_type, config.covariates)
        mc, mt, reduction = fit.control, fit.treatment, fit.variance_reduction
        coefficients = dict(zip(fit.names, fit.theta, strict=True))
    elif config.cuped:
        fit = cuped_moments(control, treatment, config.metric_type)
        mc, mt, theta, reduction = fit.control, fit.treatment, fit.theta, fit.variance_reduction
    else:
        mc, mt = (
            arm_moments(control, config.metric_type),
            arm_moments(treatment, config.metric_type),
        )
    effect = effect_of(mc, mt)
    contrast = _contrast(effect, control, treatment, config)
    fields = asdict(contrast)
    return Comparison(
        control=control.name,
        treatment=treatment.name,
        control_mean=mc.mean,
        treatment_mean=mt.mean,
        pvalue_adjusted=contrast.pvalue,
        rel_pvalue_adjusted=contrast.rel_pvalue,
        se=effect.se,
        cuped_theta=theta,
        variance_reduction=reduction,
        covariate_coefficients=coefficients,
        **fields,
    )


def analyze(
    arms: Sequence[ArmStats],
    *,
    planned_weights: Sequence[float] | None = None,
    config: AnalysisConfig | None = None,
    **options,
) -> Analysis:
    """Analyse one metric: every treatment against the first arm (the control).

    Args:
        arms: the arms' sufficient statistics, control first.
        planned_weights: planned traffic split, one weight per arm, for the SRM check.
        config: the settings; or pass its fields as keyword ``options``
            (``metric_type=...`` is then required).
        **options: fields of :class:`AnalysisConfig`.

    >>> a = analyze([ArmStats("control", 1000, 100), ArmStats("b", 1000, 130)],
    ...             metric_type="proportion")
    >>> round(a.comparisons[0].effect_size, 3), round(a.comparisons[0].pvalue, 4)
    (0.03, 0.0354)
    """
    if config is None:
        if "metric_type" not in options:
            raise InvalidInput("metric_type is required", field="metric_type")
        config = AnalysisConfig(**options)
    elif options:
        config = replace(config, **options)
    _validate(arms, config)
    control = arms[0]
    comparisons = _adjusted([compare(control, t, config) for t in arms[1:]], config.correction)
    srm = None
    if planned_weights is not None:
        srm = srm_test([a.n for a in arms], planned_weights)
    summaries = tuple(_summary(a, config.metric_type) for a in arms)
    return Analysis(config, summaries, tuple(comparisons), srm)


def adjust_across(analyses: Sequence[Analysis], method: str = "holm") -> list[Analysis]:
    """Adjust p-values jointly over every comparison of several analyses.

    Use it for a family such as "all treatments on all primary metrics"; each
    comparison's ``pvalue_adjusted`` is replaced, everything else is unchanged.

    Args:
        analyses: analyses of different metrics (or slices) of one experiment.
        method: ``holm``, ``bh``, ``bonferroni`` or ``none``.
    """
    flat = _adjusted([c for a in analyses for c in a.comparisons], method)
    out, i = [], 0
    for a in analyses:
        out.append(replace(a, comparisons=tuple(flat[i : i + len(a.comparisons)])))
        i += len(a.comparisons)
    return out


def _adjusted(comparisons: Sequence[Comparison], method: str) -> list[Comparison]:
    """Both scales' p-values adjusted across ``comparisons`` (relative ones where defined;
    a comparison without a relative effect leaves the relative family)."""
    absolute = adjust_pvalues([c.pvalue for c in comparisons], method)
    defined = [i for i, c in enumerate(comparisons) if c.rel_pvalue is not None]
    relative = dict(zip(defined, adjust_pvalues([comparisons[i].rel_pvalue for i in defined],
                                                method), strict=True))  # fmt: skip
    return [
        replace(c, pvalue_adjusted=p, rel_pvalue_adjusted=relative.get(i))
        for i, (c, p) in enumerate(zip(comparisons, absolute, strict=True))
    ]


def _contrast(effect, control: ArmStats, treatment: ArmStats, config: AnalysisConfig) -> Contrast:
    common = dict(alpha=config.alpha, alternative=config.alternative)
    if config.method == "sequential":
        return sequential_test(
            effect,
            tuning_n=config.tuning_n,
            mixing_variance=config.mixing_variance,
            relative_scale=config.relative_scale,
            **common,
        )
    if config.method == "bayesian":
        if config.bayesian_model == "beta":
            return beta_binomial_test(control, treatment, **common)
        return bayesian_test(
            effect, prior_mean=config.prior_mean, prior_variance=config.prior_variance, **common
        )
    return welch_test(effect, relative_scale=config.relative_scale, **common)


def _validate(arms, config: AnalysisConfig) -> None:
    if config.metric_type == "quantile":
        if not all(isinstance(a, QuantileArm) for a in arms):
            raise InvalidInput("a quantile metric's arms must be quantile arms", field="arms")
        validate_quantile_arms(arms)
    else:
        validate_arms(arms, config.metric_type, cuped=config.cuped and not config.covariates)


def _summary(arm: ArmStats, metric_type: str) -> ArmSummary:
    m = quantile_moments(arm) if metric_type == "quantile" else arm_moments(arm, metric_type)
    return ArmSummary(arm.name, arm.n, m.mean, m.variance)


def _choice(value: object, options: tuple[str, ...], field: str) -> None:
    if value not in options:
        raise InvalidInput(
            f"unknown {field} {value!r}; use one of {', '.join(options)}", field=field
        )


_BAYES_ONLY = ("chance_to_win", "risk", "risk_control")
_CUPED_ONLY = ("cuped_theta",)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _to_dict(analysis: Analysis) -> dict:
    cfg = analysis.config
    out: dict = {
        "metric_type": cfg.metric_type,
        "method": cfg.method,
        "alpha": cfg.alpha,
        "alternative": cfg.alternative,
        "cuped": cfg.cuped,
        "covariates": cfg.covariates,
        "correction": cfg.correction,
    }
    if analysis.strata:
        out["strata"] = list(analysis.strata)
    if analysis.srm is not None:
        out["srm_pvalue"] = analysis.srm.pvalue
        out["srm_flagged"] = analysis.srm.flagged
    out["arms"] = [asdict(a) for a in analysis.arms]
    rows = []
    for c in analysis.comparisons:
        row = {k: _finite(v) for k, v in asdict(c).items()}
        for k in (() if cfg.method == "bayesian" else _BAYES_ONLY) + (
            () if cfg.cuped and not cfg.covariates else _CUPED_ONLY
        ):
            row.pop(k)
        if not (cfg.cuped or cfg.covariates):
            row.pop("variance_reduction")
        if not cfg.covariates:
            row.pop("covariate_coefficients")
        rows.append(row)
    out["comparisons"] = rows
    return out
