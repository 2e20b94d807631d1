"""Helpers for the statistics tests: sufficient statistics from unit-level arrays."""

from __future__ import annotations

import numpy as np
import pytest

from tianping.stats import ArmStats


def arm_from(name: str, y, d=None, x=None) -> ArmStats:
    """Sufficient statistics of unit values y (denominators d, covariate x) as a warehouse
    query would compute them."""
    y = np.asarray(y, dtype=float)
    fields = {"sum": y.sum(), "sum_sq": (y * y).sum()}
    if d is not None:
        d = np.asarray(d, dtype=float)
        fields.update(den_sum=d.sum(), den_sum_sq=(d * d).sum(), num_den_sum=(y * d).sum())
    if x is not None:
        x = np.asarray(x, dtype=float)
        fields.update(pre_sum=x.sum(), pre_sum_sq=(x * x).sum(), pre_cross_sum=(y * x).sum())
        if d is not None:
            fields["pre_den_cross_sum"] = (d * x).sum()
    return ArmStats(name, n=y.size, **fields)


@pytest.fixture
def make_arm():
    return arm_from
