"""Sample-ratio mismatch and multiple-comparison adjustment against scipy and statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.multitest import multipletests

from tianping.errors import InvalidInput
from tianping.stats import SRM_THRESHOLD, adjust_pvalues, srm_test


def test_srm_matches_scipy_chisquare():
    counts, weights = [10_100, 9_900, 20_300], [1, 1, 2]
    ref = stats.chisquare(counts, [40_300 / 4, 40_300 / 4, 40_300 / 2])
    r = srm_test(counts, weights)
    assert r.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert not r.flagged


def test_srm_flags_below_one_in_a_thousand():
    # 50/50 planned, 10,000 vs 10,500 observed: chi2 = 12.2, p = 0.00047
    r = srm_test([10_000, 10_500], [0.5, 0.5])
    assert r.pvalue == pytest.approx(4.7e-4, rel=0.02)
    assert r.flagged and SRM_THRESHOLD == 0.001
    assert not srm_test([10_000, 10_300], [0.5, 0.5]).flagged


@pytest.mark.parametrize("weights", [[0.5], [0.5, -0.5], [0.5, float("nan")]])
def test_srm_rejects_bad_weights(weights):
    with pytest.raises(InvalidInput, match="planned_weights"):
        srm_test([100, 100], weights)


pvalue_lists = st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(pvalue_lists)
def test_holm_bh_and_by_match_statsmodels(pvalues):
    pairs = (("holm", "holm"), ("bh", "fdr_bh"), ("by", "fdr_by"), ("bonferroni", "bonferroni"))
    for ours, theirs in pairs:
        expected = multipletests(pvalues, method=theirs)[1]
        assert np.allclose(adjust_pvalues(pvalues, ours), expected, rtol=1e-12, atol=1e-15)


@settings(max_examples=100, deadline=None)
@given(pvalue_lists)
def test_adjusted_pvalues_are_bounded_and_ordered(pvalues):
    for method in ("holm", "bh", "by"):
        adjusted = adjust_pvalues(pvalues, method)
        assert all(p <= a <= 1 for p, a in zip(pvalues, adjusted, strict=True))
        order = np.argsort(pvalues)
        assert np.all(np.diff(np.asarray(adjusted)[order]) >= -1e-15)


def test_by_is_bh_times_the_harmonic_sum_and_rejects_less():
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    bh, by = adjust_pvalues(p, "bh"), adjust_pvalues(p, "by")
    harmonic = sum(1 / i for i in range(1, 11))
    assert by[0] == pytest.approx(min(1.0, bh[0] * harmonic), rel=1e-12)
    assert sum(q < 0.05 for q in by) <= sum(q < 0.05 for q in bh)


def test_split_alpha_is_proportional_and_rejects_bad_weights():
    from tianping.stats.multitest import split_alpha

    assert split_alpha({"primary": 0.8, "secondary": 0.2}, 0.05) == pytest.approx(
        {"primary": 0.04, "secondary": 0.01}
    )
    assert sum(split_alpha({"a": 1, "b": 2, "c": 3}, 0.1).values()) == pytest.approx(0.1)
    for bad in ({}, {"primary": 0}, {"primary": -1}, {"primary": "x"}):
        with pytest.raises(InvalidInput, match="alpha_split"):
            split_alpha(bad, 0.05)


def test_unknown_correction_is_invalid():
    with pytest.raises(InvalidInput, match="correction"):
        adjust_pvalues([0.1], "sidak")
