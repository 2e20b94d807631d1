"""Multiple-comparison adjustment of p-values: Holm (default) and Benjamini–Hochberg.

Holm controls the family-wise error rate (the chance of any false positive) and is
uniformly more powerful than Bonferroni; Benjamini–Hochberg controls the false discovery
rate and suits exploratory families (many metrics or slices). Both agree with
``statsmodels.stats.multitest.multipletests`` (``holm``, ``fdr_bh``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tianping.errors import InvalidInput

CORRECTIONS: tuple[str, ...] = ("holm", "bh", "bonferroni", "none")


def adjust_pvalues(pvalues: Sequence[float], method: str = "holm") -> list[float]:
    """Adjusted p-values in the input order.

    Args:
        pvalues: raw p-values in [0, 1].
        method: ``holm``, ``bh`` (Benjamini–Hochberg), ``bonferroni`` or ``none``.

    >>> adjust_pvalues([0.01, 0.04, 0.03], "holm")
    [0.03, 0.06, 0.06]
    >>> [round(p, 3) for p in adjust_pvalues([0.01, 0.04, 0.03], "bh")]
    [0.03, 0.04, 0.04]
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
        steps = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    adjusted = np.empty(m)
    # never below the raw p-value (rounding in p * m / i can dip under it by one ulp)
    adjusted[order] = np.clip(steps, ranked, 1.0)
    return adjusted.tolist()
