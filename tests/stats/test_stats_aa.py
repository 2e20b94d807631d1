"""A/A summaries against scipy; many independent simulated experiments: the false-positive
rate is alpha and intervals cover a known effect 95% of the time (mean, ratio, proportion)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tianping.errors import InvalidInput
from tianping.stats import AnalysisConfig, aa_report, compare
from tianping.stats.aa import split_pvalues
from tianping.stats.sufficient import ArmStats

REPS = 2000


def arm_from(name: str, y, d=None) -> ArmStats:
    y = np.asarray(y, dtype=float)
    fields = {"sum": y.sum(), "sum_sq": (y * y).sum()}
    if d is not None:
        d = np.asarray(d, dtype=float)
        fields |= {"den_sum": d.sum(), "den_sum_sq": (d * d).sum(), "num_den_sum": (y * d).sum()}
    return ArmStats(name, y.size, **fields)


def _binomial_ok(hits: int, n: int, p: float) -> bool:
    ci = stats.binomtest(hits, n).proportion_ci(0.999)
    return ci.low <= p <= ci.high


def test_aa_report_matches_scipy(rng):
    p = rng.random(500)
    r = aa_report(p, 0.05)
    k = int((p < 0.05).sum())
    ci = stats.binomtest(k, 500).proportion_ci(0.95, method="exact")
    assert (r.false_positives, r.fpr_ci_lower, r.fpr_ci_upper) == (k, ci.low, ci.high)
    assert r.ks_pvalue == stats.kstest(p, "uniform").pvalue and r.consistent
    skewed = aa_report(p**2, 0.05)  # too many small p-values
    assert not skewed.consistent and skewed.false_positive_rate > 0.15
    with pytest.raises(InvalidInput, match="p-values"):
        aa_report([0.5, 1.5])


def test_split_pvalues_equal_one_comparison_per_split(rng):
    y, d = rng.poisson(3, 300).astype(float), rng.poisson(2, 300).astype(float) + 1
    treated = rng.random((5, 300)) < 0.5
    out = split_pvalues(y, treated, metric_type="ratio", d=d)
    for i, t in enumerate(treated):
        c = compare(
            arm_from("control", y[~t], d[~t]),
            arm_from("treatment", y[t], d[t]),
            AnalysisConfig(metric_type="ratio"),
        )
        assert out["pvalue"][i] == pytest.approx(c.pvalue, rel=1e-9)
        assert out["covered"][i] == (c.effect_size_ci_lower <= 0 <= c.effect_size_ci_upper)
    with pytest.raises(InvalidInput, match="denominators"):
        split_pvalues(y, treated, metric_type="ratio")


def _cover(kind: str, rng: np.random.Generator, lift: float) -> tuple[float, float]:
    """Share of REPS independent experiments whose 95% relative interval covers ``lift``,
    and their false-positive rate when the treatment is a copy of the control (A/A)."""
    covered = rejected = 0
    config = AnalysisConfig(metric_type=kind)
    for _ in range(REPS):
        if kind == "mean":  # heavy-tailed spend per buyer, many zeros
            draw = lambda m: rng.lognormal(3, 1.2, 1500) * (rng.random(1500) < 0.3) * m  # noqa: E731
            arms = [arm_from("c", draw(1.0)), arm_from("t", draw(1 + lift))]
            null = [arm_from("c", draw(1.0)), arm_from("t", draw(1.0))]
        elif kind == "proportion":
            arms = [
                arm_from("c", rng.random(3000) < 0.1),
                arm_from("t", rng.random(3000) < 0.1 * (1 + lift)),
            ]
            null = [arm_from("c", rng.random(3000) < 0.1), arm_from("t", rng.random(3000) < 0.1)]
        else:  # revenue per order: orders per buyer vary, value per order skewed

            def draw(m):
                d = rng.poisson(2.0, 1500) + 1.0
                return rng.gamma(2.0 * d, 50.0) * m, d

            (yc, dc), (yt, dt) = draw(1.0), draw(1 + lift)
            arms = [arm_from("c", yc, dc), arm_from("t", yt, dt)]
            (yc, dc), (yt, dt) = draw(1.0), draw(1.0)
            null = [arm_from("c", yc, dc), arm_from("t", yt, dt)]
        c = compare(*arms, config)
        covered += c.rel_effect_size_ci_lower <= lift <= c.rel_effect_size_ci_upper
        rejected += compare(*null, config).pvalue < 0.05
    return covered, rejected


@pytest.mark.parametrize("kind", ["mean", "proportion", "ratio"])
def test_coverage_and_false_positive_rate_on_independent_experiments(kind):
    covered, rejected = _cover(kind, np.random.default_rng(20241111), lift=0.08)
    assert _binomial_ok(covered, REPS, 0.95), covered / REPS
    assert _binomial_ok(rejected, REPS, 0.05), rejected / REPS
