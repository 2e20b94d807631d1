"""Post-stratification on a declared discrete unit attribute (pure).

Units are split by an attribute fixed before exposure (new vs returning buyer, city tier);
each stratum's arms are analysed as usual and the strata are recombined with the weights
``w_s`` = the stratum's share of the compared units (both arms pooled):

- each arm's estimate ``m_a = Σ_s w_s m_{a,s}``;
- its squared standard error ``Σ_s w_s² v_{a,s} / n_{a,s}`` — the stratified (Neyman)
  variance conditional on the stratum sizes (Miratrix, Sekhon & Yu 2013, "Adjusting
  treatment effect estimates by post-stratification in randomized experiments", JRSS B 75).

For a mean metric the effect ``Σ_s w_s (m_{t,s} - m_{c,s})`` is exactly the treatment
coefficient of the fully interacted OLS ``y ~ T * (centred stratum dummies)`` (Lin 2013),
and the variance its HC2 one. Strata remove the between-strata variance from the
comparison; they help as much as the attribute explains the metric. Ratio metrics are
combined on the per-stratum ratios; with ``cuped`` each stratum is CUPED-adjusted first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from tianping.errors import InvalidInput
from tianping.stats.analysis import (
    Analysis,
    AnalysisConfig,
    ArmSummary,
    Comparison,
    _adjusted,
    _contrast,
)
from tianping.stats.effects import effect_of
from tianping.stats.moments import ArmMoments, arm_moments, cuped_moments
from tianping.stats.srm import srm_test
from tianping.stats.sufficient import ArmStats, validate_arms


def analyze_stratified(
    strata: Mapping[str, Sequence[ArmStats]],
    *,
    planned_weights: Sequence[float] | None = None,
    config: AnalysisConfig | None = None,
    **options,
) -> Analysis:
    """Post-stratified analysis: every treatment against the control, strata recombined.

    Args:
        strata: stratum value → that stratum's arms (the same arm names, control first,
            in every stratum).
        planned_weights: planned split per arm, for the sample-ratio check on the totals.
        config: the settings (or their fields as ``options``; ``metric_type`` required).
        **options: fields of :class:`AnalysisConfig`.

    Raises:
        InvalidInput: fewer than two strata, strata with different arms, or an arm a stratum
            cannot be analysed in (each needs ``n >= 2`` per arm).
    """
    if config is None:
        if "metric_type" not in options:
            raise InvalidInput("metric_type is required", field="metric_type")
        config = AnalysisConfig(**options)
    elif options:
        config = replace(config, **options)
    if config.metric_type == "quantile" or config.covariates or config.bayesian_model == "beta":
        raise InvalidInput(
            "post-stratification applies to mean, proportion and ratio metrics without "
            "covariates (and not to the beta model)",
            field="strata",
        )
    names = _check(strata, config)
    comparisons = []
    for j in range(1, len(names)):
        mc, mt = _combined(strata, 0, j, config)
        effect = effect_of(mc, mt)
        contrast = _contrast(effect, None, None, config)
        comparisons.append(
            Comparison(
                control=names[0],
                treatment=names[j],
                control_mean=mc.mean,
                treatment_mean=mt.mean,
                pvalue_adjusted=contrast.pvalue,
                rel_pvalue_adjusted=contrast.rel_pvalue,
                se=effect.se,
                **vars(contrast),
            )
        )
    totals = [sum(arms[i].n for arms in strata.values()) for i in range(len(names))]
    srm = None if planned_weights is None else srm_test(totals, planned_weights)
    summaries = tuple(_summary(strata, i, names[i], config) for i in range(len(names)))
    adjusted = tuple(_adjusted(comparisons, config.correction))
    return Analysis(config, summaries, adjusted, srm, tuple(strata))


def _combined(strata, c: int, t: int, config: AnalysisConfig) -> tuple[ArmMoments, ArmMoments]:
    total = sum(arms[c].n + arms[t].n for arms in strata.values())
    means, se2 = [0.0, 0.0], [0.0, 0.0]
    for arms in strata.values():
        w = (arms[c].n + arms[t].n) / total
        if config.cuped:
            fit = cuped_moments(arms[c], arms[t], config.metric_type)
            pair = (fit.control, fit.treatment)
        else:
            pair = (
                arm_moments(arms[c], config.metric_type),
                arm_moments(arms[t], config.metric_type),
            )
        for k, m in enumerate(pair):
            means[k] += w * m.mean
            se2[k] += w * w * m.se2
    out = []
    for k, i in enumerate((c, t)):
        n = sum(arms[i].n for arms in strata.values())
        name = next(iter(strata.values()))[i].name
        out.append(ArmMoments(name, n, means[k], se2[k] * n))
    return out[0], out[1]


def _summary(strata, i: int, name: str, config: AnalysisConfig) -> ArmSummary:
    pooled = None
    for arms in strata.values():
        pooled = arms[i] if pooled is None else pooled + arms[i]
    m = arm_moments(replace(pooled, name=name), config.metric_type)
    return ArmSummary(name, m.n, m.mean, m.variance)


def _check(strata: Mapping[str, Sequence[ArmStats]], config: AnalysisConfig) -> list[str]:
    if not isinstance(strata, Mapping) or len(strata) < 2:
        raise InvalidInput("post-stratification needs at least 2 strata", field="strata")
    names = None
    for value, arms in strata.items():
        try:
            validate_arms(arms, config.metric_type, cuped=config.cuped)
        except InvalidInput as exc:
            raise InvalidInput(f"stratum {value!r}: {exc.message}", field=exc.field) from None
        these = [a.name for a in arms]
        if names is None:
            names = these
        elif these != names:
            raise InvalidInput(
                f"stratum {value!r} has arms {these}, others have {names}: every stratum "
                "needs the same arms in the same order",
                field="strata",
            )
    return names
