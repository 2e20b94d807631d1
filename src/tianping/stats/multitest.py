"""Multiple-comparison adjustment of p-values, and a weighted alpha split between groups.

Holm controls the family-wise error rate (the chance of any false positive) and is
uniformly more powerful than Bonferroni; Benjamini–Hochberg controls the false discovery
rate and suits exploratory families (many metrics or slices) of independent or positively
dependent tests; Benjamini–Yekutieli (``by``) controls it under *any* dependence (metrics of
one experiment share units) at the price of the factor ``Σ_{i≤m} 1/i``. All agree with
``statsmodels.stats.multitest.multipletests`` (``holm``, ``fdr_bh``, ``fdr_by``).

:func:`split_alpha` divides the experiment's alpha between groups of metrics by weight
(e.g. primary 0.8, secondary 0.2, as Statsig): a weighted Bonferroni split, so the chance of
any false positive over all groups stays at most alpha when each group controls its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tianping.errors import InvalidInput

CORRECTIONS: tuple[str, ...] = ("holm", "bh", "by", "bonferroni", "none")


def adjust_pvalues(pvalues: Sequence[float], method: str = "holm") -> list[float]:
    """Adjusted p-values in the input order.

    Args:
        pvalues: raw p-values in [0, 1].
        method: ``holm``, ``bh`` (Benjamini–Hochberg), ``by`` (Benjamini–Yekutieli),
            ``bonferroni`` or ``none``.

    >>> adjust_pvalues([0.01, 0.04, 0.03], "holm")
    [0.03, 0.06, 0.06]
    >>> [round(p, 3) for p in adjust_pvalues([0.01, 0.04, 0.03], "bh")]
    [0.03, 0.04, 0.04]
    >>> [round(p, 3) for p in adjust_pvalues([0.01, 0.04, 0.03], "by")]
    [0.055, 0.073, 0.073]
    """
    if method not in CORRECTIONS:
        raise InvalidInput(
            f"unknown correction {method!r}; use one of {', '.join(CORRECTIONS)}",
            field="correction",
        )
    p = np.asarray(pvalues, dtype=float)
    if p.size and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
        raise InvalidInput("p-values must lie in [0, 1]", field="pvalues")
    m = p.size
    if m == 0 or method == "none":
        return p.tolist()
    if method == "bonferroni":
        return np.minimum(p * m, 1.0).tolist()
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":
        steps = np.maximum.accumulate(ranked * (m - np.arange(m)))
    else:
        factor = np.sum(1.0 / np.arange(1, m + 1)) if method == "by" else 1.0
        steps = np.minimum.accumulate((ranked * m * factor / np.arange(1, m + 1))[::-1])[::-1]
    adjusted = np.empty(m)
    # never below the raw p-value (rounding in p * m / i can dip under it by one ulp)
    adjusted[order] = np.clip(steps, ranked, 1.0)
    return adjusted.tolist()


def split_alpha(weights: Mapping[str, float], alpha: float) -> dict[str, float]:
    """Each group's share of ``alpha``, proportional to its weight.

    Args:
        weights: group name → positive weight (any scale).
        alpha: the experiment's significance level.

    Raises:
        InvalidInput: no groups, or a weight that is not a positive number.

    >>> split_alpha({"primary": 4, "secondary": 1}, 0.05)
    {'primary': 0.04, 'secondary': 0.01}
    """
    if not weights:
        raise InvalidInput("alpha_split needs at least one group", field="alpha_split")
    for name, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, int | float) or not w > 0 or w == float("inf"):
            raise InvalidInput(
                f"alpha_split: the weight of {name!r} must be a positive number, got {w!r}",
                field="alpha_split",
            )
    total = float(sum(weights.values()))
    return {name: round(alpha * w / total, 15) for name, w in weights.items()}
