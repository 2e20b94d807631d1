"""Small simulations shared by the simulator's tests (each runs once per test session)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sim_helpers import simulate_to  # noqa: E402

from tianping.simulate.scenario import parse_scenario  # noqa: E402


@pytest.fixture(scope="session")
def steady_market(tmp_path_factory) -> dict:
    """No new accounts and no abuse bursts, so daily orders follow the calendar alone."""
    folder = tmp_path_factory.mktemp("steady_market")
    scenario = parse_scenario(
        "name: steady\nmarket: {new_buyer_share: 0.0, professional_share: 0.0}\n", "steady"
    )
    return simulate_to(folder, buyers=30_000, days=90, seed=11, scenario=scenario)
