"""Health gates of an experiment: can its numbers be trusted? (pure: counts and sums in).

Each gate gives one :class:`~tianping.experiments.rule.Gate` line (docs/experiments.md):

- **SRM** overall: Pearson chi-square of the arms' units against the planned weights;
- **SRM by day / by dimension**: the same per day of first exposure and per value of each
  declared unit attribute. A gate fails when one value's own test is below
  ``srm_alpha / values`` (Bonferroni: it *locates* the cause) or when the values' summed
  chi-square (a test of every value at once) is below ``srm_alpha``;
- **multiple exposure**: the share of units seen in more than one arm;
- **pre-period imbalance**: Welch's t of each pre-period covariate between the control and
  each treatment, Bonferroni over covariates and treatments;
- **sample size**: units so far against the plan frozen in the rule (``min_units``; not
  reached is a warning, which keeps the experiment running, not a failure);
- **novelty**: whether the effect in the first week after a unit's first exposure differs
  from its second week (Welch's t on the per-unit difference of the two weeks between arms,
  units exposed at least two weeks before the end).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from tianping.experiments.rule import Gate, HealthRule


def _chi2(counts: Sequence[int], weights: Sequence[float]) -> tuple[float, int]:
    """Pearson's statistic and degrees of freedom (0 for an empty row)."""
    n = float(sum(counts))
    if n <= 0:
        return 0.0, 0
    total = float(sum(weights))
    expected = [n * w / total for w in weights]
    return sum((c - e) ** 2 / e for c, e in zip(counts, expected, strict=True)), len(counts) - 1


def srm_gate(counts: Sequence[int], weights: Sequence[float], health: HealthRule) -> Gate:
    """The overall sample-ratio check."""
    stat, df = _chi2(counts, weights)
    if df == 0:
        return Gate("SRM", "n/a", "no units yet")
    p = float(stats.chi2.sf(stat, df))
    status = "fail" if p < health.srm_alpha else "pass"
    units = ", ".join(f"{c:,}" for c in counts)
    return Gate("SRM", status, f"units {units}: p = {p:.3g} (fails below {health.srm_alpha:g})",
                {"pvalue": p})  # fmt: skip


def srm_by_gate(
    name: str,
    table: Mapping[str, Sequence[int]],
    weights: Sequence[float],
    health: HealthRule,
) -> Gate:
    """The sample-ratio check per value of one dimension (``day`` or a unit attribute), with
    the values that cause a mismatch located."""
    rows = {k: list(v) for k, v in table.items() if sum(v) > 0}
    if not rows:
        return Gate(f"SRM by {name}", "n/a", "no units yet")
    per_value = {}
    total_stat, total_df = 0.0, 0
    for value, counts in rows.items():
        stat, df = _chi2(counts, weights)
        total_stat, total_df = total_stat + stat, total_df + df
        per_value[value] = float(stats.chi2.sf(stat, df)) if df else 1.0
    combined = float(stats.chi2.sf(total_stat, total_df)) if total_df else 1.0
    cut = health.srm_alpha / len(rows)
    located = sorted((v for v, p in per_value.items() if p < cut), key=per_value.get)
    data = {"pvalues": per_value, "combined_pvalue": combined, "located": located}
    if located:
        where = ", ".join(f"{v} (p = {per_value[v]:.2g})" for v in located[:5])
        more = f" and {len(located) - 5} more" if len(located) > 5 else ""
        return Gate(f"SRM by {name}", "fail", f"the mismatch comes from {where}{more}", data)
    if combined < health.srm_alpha:
        worst = min(per_value, key=per_value.get)
        return Gate(
            f"SRM by {name}", "fail",
            f"a mismatch spread over {len(rows)} values (combined p = {combined:.2g}); the "
            f"largest at {worst} (p = {per_value[worst]:.2g})", data,
        )  # fmt: skip
    return Gate(f"SRM by {name}", "pass",
                f"{len(rows)} values, none mismatched (combined p = {combined:.3g})", data)  # fmt: skip


def multiple_gate(multiple: int, counts: Sequence[int], health: HealthRule) -> Gate:
    """Units exposed to more than one arm, as a share of every exposed unit."""
    total = multiple + sum(counts)
    if total == 0:
        return Gate("multiple exposure", "n/a", "no units yet")
    share = multiple / total
    status = "fail" if share > health.max_multiple_exposed else "pass"
    return Gate(
        "multiple exposure", status,
        f"{multiple:,} unit(s) seen in more than one arm ({share:.2%}; at most "
        f"{health.max_multiple_exposed:.2%} allowed)", {"units": multiple, "share": share},
    )  # fmt: skip


def imbalance_gate(covariates: Mapping[str, Sequence[tuple[int, float, float]]],
                   arms: Sequence[str], health: HealthRule) -> Gate:  # fmt: skip
    """Pre-period covariates compared between the control and each treatment.

    Args:
        covariates: covariate → per arm (control first) ``(n, Σx, Σx²)``.
        arms: the arms' names, control first.
        health: the thresholds.
    """
    tests = []
    for name, per_arm in covariates.items():
        n0, s0, q0 = per_arm[0]
        for arm, (n1, s1, q1) in zip(arms[1:], per_arm[1:], strict=True):
            p = _welch_p(n0, s0, q0, n1, s1, q1)
            if p is not None:
                tests.append((p, name, arm))
    if not tests:
        return Gate("pre-period balance", "n/a", "no pre-period covariates")
    cut = health.imbalance_alpha / len(tests)
    bad = sorted(t for t in tests if t[0] < cut)
    data = {"pvalues": {f"{n} ({a})": p for p, n, a in tests}}
    if bad:
        where = ", ".join(f"{n} in {a} (p = {p:.2g})" for p, n, a in bad)
        return Gate("pre-period balance", "fail", f"arms differed before the start: {where}",
                    data)  # fmt: skip
    low = min(tests)
    return Gate(
        "pre-period balance", "pass",
        f"{len(tests)} covariate comparisons, smallest p = {low[0]:.3g} ({low[1]}, "
        f"fails below {cut:.2g})", data,
    )  # fmt: skip


def _welch_p(n0: int, s0: float, q0: float, n1: int, s1: float, q1: float) -> float | None:
    if n0 < 2 or n1 < 2:
        return None
    m0, m1 = s0 / n0, s1 / n1
    v0 = max(q0 - n0 * m0 * m0, 0.0) / (n0 - 1)
    v1 = max(q1 - n1 * m1 * m1, 0.0) / (n1 - 1)
    se2 = v0 / n0 + v1 / n1
    if se2 <= 0:
        return None
    df = se2**2 / ((v0 / n0) ** 2 / (n0 - 1) + (v1 / n1) ** 2 / (n1 - 1))
    return float(2 * stats.t.sf(abs(m1 - m0) / math.sqrt(se2), df))


def sample_gate(
    units_so_far: int, planned: int | None, estimate: int | None, binding: str | None
) -> Gate:
    """Units so far against the plan frozen in the rule (``warn`` while not reached, which
    keeps the experiment running). Without a frozen plan the gate only informs (``n/a``):
    the size re-estimated from the observed variances is itself noisy, and waiting on it
    would hold back half of the experiments run at exactly their planned size."""
    data = {"units": units_so_far, "planned": planned, "estimate": estimate}
    if planned is None:
        seen = f"{units_so_far:,} units so far; no plan frozen in the rule (health.min_units)"
        if estimate is not None:
            seen += f"; at the observed variances the rule needs {estimate:,} (set by {binding})"
        return Gate("sample size", "n/a", seen, data)
    detail = f"{units_so_far:,} of the {planned:,} units planned before the start"
    if estimate is not None:
        detail += f" (at the observed variances: {estimate:,}, set by {binding})"
    status = "pass" if units_so_far >= planned else "warn"
    return Gate("sample size", status, detail, data)


def novelty_gate(
    metric: str, arms: Sequence[str], weeks: Sequence[tuple[int, float, float, float, float]],
    health: HealthRule,
) -> Gate:  # fmt: skip
    """Does the effect on ``metric`` change from the first week after exposure to the second?

    Args:
        metric: the metric's name (shown).
        arms: arms, control first.
        weeks: per arm ``(n, Σy₁, Σy₂, Σ(y₁−y₂), Σ(y₁−y₂)²)`` over units with two whole weeks.
        health: the thresholds.
    """
    n0, a0, b0, d0, dd0 = weeks[0]
    if n0 < 2:
        return Gate("novelty", "n/a", "no unit has two weeks since its first exposure yet")
    lines, data, flagged = [], {}, False
    for arm, (n1, a1, b1, d1, dd1) in zip(arms[1:], weeks[1:], strict=True):
        p = _welch_p(n0, d0, dd0, n1, d1, dd1) if n1 >= 2 else None
        first = _lift(a1, n1, a0, n0)
        second = _lift(b1, n1, b0, n0)
        data[arm] = {"week1": first, "week2": second, "pvalue": p}
        if p is None:
            continue
        flagged |= p < health.novelty_alpha
        lines.append(f"{arm}: {_pct(first)} in week 1, {_pct(second)} in week 2 (p = {p:.3g})")
    if not lines:
        return Gate("novelty", "n/a", f"{metric}: too few units with two weeks", data)
    status = "warn" if flagged else "pass"
    return Gate("novelty", status, f"{metric} by week since first exposure: " + "; ".join(lines),
                data)  # fmt: skip


def _lift(s1: float, n1: int, s0: float, n0: int) -> float | None:
    if n0 == 0 or n1 == 0 or s0 == 0:
        return None
    return (s1 / n1) / (s0 / n0) - 1


def _pct(value: float | None) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:+.2%}"
