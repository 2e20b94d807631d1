"""Slices: the same metric analysed within each value of a dimension.

Looking at many slices (categories, new vs returning buyers, ...) multiplies the chances of
a false positive. :func:`analyze_slices` analyses every slice, adjusts the p-values jointly
across all slices and treatments, and says how many tests were run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tianping.errors import InvalidInput
from tianping.stats.analysis import Analysis, AnalysisConfig, adjust_across, analyze
from tianping.stats.sufficient import ArmStats


@dataclass(frozen=True)
class SliceReport:
    """Analyses per slice with p-values adjusted across all of them.

    Attributes:
        analyses: slice value -> analysis (``pvalue_adjusted`` is across every slice).
        tests: number of comparisons over all slices.
        warning: the multiple-comparison warning (None for a single test).
    """

    analyses: dict[str, Analysis]
    tests: int
    warning: str | None


def analyze_slices(
    slices: Mapping[str, Sequence[ArmStats]],
    *,
    planned_weights: Sequence[float] | None = None,
    config: AnalysisConfig | None = None,
    **options,
) -> SliceReport:
    """Analyse each slice and adjust p-values jointly (``config.correction``, Holm default).

    Args:
        slices: slice value -> the arms' sufficient statistics within that slice.
        planned_weights: planned split for a per-slice SRM check.
        config: analysis settings, or its fields as keyword ``options``.
        **options: fields of :class:`~tianping.stats.analysis.AnalysisConfig`.
    """
    if not slices:
        raise InvalidInput("need at least one slice", field="slices")
    raw = {
        k: analyze(arms, planned_weights=planned_weights, config=config, **options)
        for k, arms in slices.items()
    }
    cfg = next(iter(raw.values())).config
    adjusted = adjust_across(list(raw.values()), cfg.correction)
    analyses = dict(zip(raw, adjusted, strict=True))
    tests = sum(len(a.comparisons) for a in adjusted)
    return SliceReport(analyses, tests, _warning(len(slices), tests, cfg))


def _warning(slices: int, tests: int, cfg: AnalysisConfig) -> str | None:
    if tests <= 1:
        return None
    expected = tests * cfg.alpha
    how = (
        "no correction was applied"
        if cfg.correction == "none"
        else f"pvalue_adjusted uses {cfg.correction} across all of them"
    )
    return (
        f"{tests} comparisons over {slices} slices: about {expected:.1f} would look "
        f"significant at alpha={cfg.alpha:g} by chance alone; {how}. Treat slice findings "
        f"as hypotheses to confirm in a new experiment."
    )
