"""Interactions between concurrent experiments (pure: cell sums in, tests out).

Two experiments that share units and time form a 2-way table: each unit has an arm in each.
For experiment A's metric, the interaction of A's treatment ``t`` with B's treatment ``u`` is
the difference-in-differences of the cell means

    Δ = (m[t, u] − m[c, u]) − (m[t, c'] − m[c, c'])

(``c``, ``c'`` the controls), with ``se² = Σ v/n`` over the four cells and a normal test; a
pair with several treatments takes the smallest p-value times the number of contrasts
(Bonferroni within the pair). Across every pair and metric the p-values are adjusted by
Benjamini–Hochberg, so the share of false flags among the flagged pairs stays at ``fdr``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

from tianping.stats.multitest import adjust_pvalues


@dataclass(frozen=True, slots=True)
class Cell:
    """Units with arm ``a`` in the first experiment and ``b`` in the second: ``n``, ``Σy``,
    ``Σy²`` of the first experiment's metric."""

    a: str
    b: str
    n: int
    sum: float
    sum_sq: float

    @property
    def mean(self) -> float:
        """The cell's mean."""
        return self.sum / self.n

    @property
    def variance(self) -> float:
        """The cell's sample variance (divisor ``n − 1``)."""
        return max(self.sum_sq - self.n * self.mean**2, 0.0) / (self.n - 1)


@dataclass(frozen=True, slots=True)
class PairTest:
    """One experiment's metric tested for an interaction with another experiment.

    Attributes:
        first: the experiment whose effect is tested.
        second: the experiment it may depend on.
        metric: the first experiment's metric.
        units: units in both experiments.
        contrast: the ``(first treatment, second treatment)`` of the smallest p-value.
        estimate: its difference-in-differences (the metric's units).
        relative: ``estimate`` over the both-controls mean (None when that mean is 0).
        pvalue: Bonferroni within the pair.
        qvalue: Benjamini–Hochberg across every pair tested (set by :func:`screen`).
        flagged: ``qvalue < fdr``.
    """

    first: str
    second: str
    metric: str
    units: int
    contrast: tuple[str, str]
    estimate: float
    relative: float | None
    pvalue: float
    qvalue: float = 1.0
    flagged: bool = False

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "first": self.first, "second": self.second, "metric": self.metric,
            "units": self.units, "contrast": list(self.contrast), "estimate": self.estimate,
            "relative": self.relative, "pvalue": self.pvalue, "qvalue": self.qvalue,
            "flagged": self.flagged,
        }  # fmt: skip


def pair_test(
    first: str,
    second: str,
    metric: str,
    cells: Sequence[Cell],
    arms_first: Sequence[str],
    arms_second: Sequence[str],
) -> PairTest | None:
    """The interaction test of one pair (None when a needed cell has fewer than 2 units)."""
    table = {(c.a, c.b): c for c in cells}
    c1, c2 = arms_first[0], arms_second[0]
    base = table.get((c1, c2))
    best = None
    tests = 0
    for t in arms_first[1:]:
        for u in arms_second[1:]:
            four = [table.get(k) for k in ((t, u), (c1, u), (t, c2), (c1, c2))]
            if any(c is None or c.n < 2 for c in four):
                continue
            tests += 1
            tu, cu, tc, cc = four
            est = (tu.mean - cu.mean) - (tc.mean - cc.mean)
            se = math.sqrt(sum(c.variance / c.n for c in four))
            p = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(est) / se))
            if best is None or p < best[0]:
                best = (p, (t, u), est)
    if best is None:
        return None
    p, contrast, est = best
    units = sum(c.n for c in cells)
    relative = None if base is None or base.n == 0 or base.mean == 0 else est / base.mean
    return PairTest(first, second, metric, units, contrast, est, relative, min(1.0, p * tests))


def screen(tests: Sequence[PairTest], fdr: float = 0.05) -> list[PairTest]:
    """Every test with its Benjamini–Hochberg q-value and whether it is flagged at ``fdr``."""
    if not tests:
        return []
    q = adjust_pvalues([t.pvalue for t in tests], "bh")
    from dataclasses import replace

    return [replace(t, qvalue=qi, flagged=qi < fdr) for t, qi in zip(tests, q, strict=True)]


def involving(tests: Sequence[PairTest], name: str) -> list[Mapping]:
    """The tests of the pairs ``name`` is in, as JSON (for its report)."""
    return [t.to_dict() for t in tests if name in (t.first, t.second)]
