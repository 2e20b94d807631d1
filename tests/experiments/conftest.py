"""Fixtures of the experiment tests."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from experiment_data import make_data


@pytest.fixture(scope="module")
def experiment_data() -> dict[str, pa.Table]:
    return make_data(np.random.default_rng(20241111))
