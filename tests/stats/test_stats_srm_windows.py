"""The sample-ratio check over windows of weights (a race re-weighting as it runs)."""

from __future__ import annotations

import pytest
from scipy import stats

from tianping.errors import InvalidInput
from tianping.stats import srm_over_windows, srm_test


def test_one_window_is_the_plain_chi_square_test():
    one = srm_over_windows([([480, 520, 1040], [1, 1, 2])])
    plain = srm_test([480, 520, 1040], [1, 1, 2])
    assert (one.pvalue, one.statistic, one.dof) == pytest.approx((plain.pvalue, plain.statistic, 2))


def test_windows_add_their_statistics_and_degrees_of_freedom():
    windows = [([500, 500], [1, 1]), ([90, 910], [0.1, 0.9]), ([0, 0], [0.5, 0.5])]
    r = srm_over_windows(windows)
    first = stats.chisquare([500, 500], [500, 500]).statistic
    second = stats.chisquare([90, 910], [100, 900]).statistic
    assert r.statistic == pytest.approx(first + second) and r.dof == 2 and r.windows == 3
    assert r.pvalue == pytest.approx(stats.chi2.sf(first + second, 2))
    assert r.expected == pytest.approx((600, 1400))
    assert not r.flagged and srm_test([590, 1410], [0.1, 0.9]).flagged


def test_an_arm_without_traffic_must_get_no_units():
    assert not srm_over_windows([([300, 0, 700], [0.3, 1e-9, 0.7])]).flagged
    broken = srm_over_windows([([300, 5, 700], [0.3, 1e-9, 0.7])])
    assert broken.flagged and broken.pvalue == 0.0


def test_bad_windows_are_refused():
    with pytest.raises(InvalidInput):
        srm_over_windows([])
    with pytest.raises(InvalidInput, match="planned_weights"):
        srm_over_windows([([1, 2], [1.0])])
