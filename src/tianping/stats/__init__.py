"""Statistics of the experiment engine, on per-arm sufficient statistics only (pure).

Nothing here reads a database or a file: the warehouse query aggregates each arm of each
metric into an :class:`ArmStats` (``n``, ``sum``, ``sum_sq``; ratio metrics add
``den_sum``, ``den_sum_sq``, ``num_den_sum``; CUPED adds ``pre_sum``, ``pre_sum_sq``,
``pre_cross_sum`` and, for ratios, ``pre_den_cross_sum``) and calls :func:`analyze`.

Typical use by the experiment service::

    from tianping.stats import ArmStats, analyze, adjust_across

    arms = [ArmStats("control", n=..., sum=..., sum_sq=...),
            ArmStats("treatment", n=..., sum=..., sum_sq=...)]
    result = analyze(arms, metric_type="mean", method="frequentist", alpha=0.05,
                     cuped=False, planned_weights=[0.5, 0.5])
    result.srm.flagged                      # sample-ratio mismatch (p < 0.001)
    c = result.comparisons[0]               # one per treatment, vs the first arm
    c.effect_size, c.effect_size_ci_lower, c.rel_effect_size, c.pvalue, c.pvalue_adjusted
    result.to_dict()                        # the JSON shape of `tianping stats analyze`

    primaries = adjust_across([result_gmv, result_orders], "holm")  # across metrics

Entry points
    analyze(arms, *, planned_weights=None, config=None, **AnalysisConfig fields) -> Analysis
    compare(control, treatment, config) -> Comparison
    adjust_across(analyses, method="holm") -> list[Analysis]
    analyze_slices(slices, *, planned_weights=None, config=None, **fields) -> SliceReport
    analyze_stratified(strata, *, planned_weights=None, config=None, **fields) -> Analysis
    analyze_summary(document: dict) -> dict          (the JSON interface)
    srm_test(counts, weights, *, threshold=0.001) -> SRMResult
    srm_over_windows([(counts, weights), ...], *, threshold=0.001) -> SRMResult
    adjust_pvalues(pvalues, method="holm") -> list[float]
    sample_size(metric_type, baseline, mde, *, sd=None, relative=False, alpha=0.05,
                power=0.8, ratio=1.0, arms=2, alternative="two-sided",
                distribution="normal", daily_units=None) -> PowerPlan
    minimum_detectable_effect(metric_type, baseline, n_control, *, ...) -> PowerPlan
    power_of(metric_type, baseline, mde, n_control, *, ...) -> float
    runtime_days(n_total, daily_units) -> int
    winsor_bounds(values, upper=0.99, lower=None) -> (lower_cap, upper_cap)
    winsorize(values, upper=0.99, lower=None) -> ndarray;  clip(values, lower, upper)
    aa_report(pvalues, alpha=0.05, *, confidence=0.95) -> AAReport
    always_valid_path(pvalues) -> ndarray            (running minimum over looks)

Sharper comparisons: ``ArmStats(..., covariates=CovariateSums(...))`` with
``covariates="regression"`` (CUPED++, OLS-exact) or ``"ratio"``; ``metric_type="quantile"``
with :class:`QuantileArm` (Woodruff); :func:`analyze_stratified` (post-stratification);
``correction="by"`` (Benjamini–Yekutieli); :func:`tianping.stats.multitest.split_alpha`;
CUPAC's cross-fitted models: :func:`tianping.stats.cupac.fit_cross_fitted` (their predictions
are covariates like any other).

Building blocks (for custom pipelines): :func:`validate_arms`, :func:`arm_moments`,
:func:`cuped_moments`, :func:`effect_of`, :func:`welch_test`, :func:`sequential_test`,
:func:`bayesian_test`, :func:`beta_binomial_test`, :func:`mixture_pvalue`,
:func:`mixture_halfwidth`, :func:`mixture_rho2`.

Invalid input raises :class:`tianping.errors.InvalidInput` naming the arm and field.
Formulas and choices: docs/experiments.md.
"""

from tianping.stats.aa import AAReport, aa_report
from tianping.stats.analysis import (
    Analysis,
    AnalysisConfig,
    ArmSummary,
    Comparison,
    adjust_across,
    analyze,
    compare,
)
from tianping.stats.bayesian import bayesian_test, beta_binomial_test
from tianping.stats.contrast import Contrast
from tianping.stats.covariates import RegressionFit, regression_moments
from tianping.stats.effects import Effect, effect_of
from tianping.stats.frequentist import welch_test
from tianping.stats.moments import ArmMoments, CupedFit, arm_moments, cuped_moments
from tianping.stats.multitest import adjust_pvalues
from tianping.stats.power import (
    PowerPlan,
    minimum_detectable_effect,
    power_of,
    runtime_days,
    sample_size,
)
from tianping.stats.quantile import QuantileArm, quantile_moments, woodruff_ranks
from tianping.stats.sequential import (
    always_valid_path,
    mixture_halfwidth,
    mixture_pvalue,
    mixture_rho2,
    sequential_test,
)
from tianping.stats.slices import SliceReport, analyze_slices
from tianping.stats.srm import SRM_THRESHOLD, SRMResult, srm_over_windows, srm_test
from tianping.stats.stratified import analyze_stratified
from tianping.stats.sufficient import ArmStats, CovariateSums, validate_arms
from tianping.stats.summary import analyze_summary
from tianping.stats.winsor import clip, winsor_bounds, winsorize

__all__ = [
    "SRM_THRESHOLD",
    "AAReport",
    "Analysis",
    "AnalysisConfig",
    "ArmMoments",
    "ArmStats",
    "ArmSummary",
    "Comparison",
    "Contrast",
    "CovariateSums",
    "CupedFit",
    "Effect",
    "PowerPlan",
    "QuantileArm",
    "RegressionFit",
    "SRMResult",
    "SliceReport",
    "aa_report",
    "adjust_across",
    "adjust_pvalues",
    "always_valid_path",
    "analyze",
    "analyze_slices",
    "analyze_stratified",
    "analyze_summary",
    "arm_moments",
    "bayesian_test",
    "beta_binomial_test",
    "clip",
    "compare",
    "cuped_moments",
    "effect_of",
    "minimum_detectable_effect",
    "mixture_halfwidth",
    "mixture_pvalue",
    "mixture_rho2",
    "power_of",
    "quantile_moments",
    "regression_moments",
    "runtime_days",
    "sample_size",
    "sequential_test",
    "srm_over_windows",
    "srm_test",
    "validate_arms",
    "welch_test",
    "winsor_bounds",
    "winsorize",
    "woodruff_ranks",
]
