"""Ground truth is recoverable, and simulated buyers are assigned by tianping's own assigner."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest
from scipy import stats
from sim_helpers import simulate_to

from tianping.experiments.client import Client
from tianping.simulate.assign import snapshot_of
from tianping.simulate.scenario import parse_scenario
from tianping.simulate.service import load_scenario

KNOWN = """
name: known_effect
market: {professional_share: 0.0}
experiments:
  - name: bigger_button
    start_day: 10
    end_day: 80
    arms:
      - {name: control, weight: 0.5}
      - {name: treatment, weight: 0.5, effects: {conversion: 0.25}}
"""


def orders_per_exposed_unit(tables, experiment: str, end: np.datetime64) -> dict[str, np.ndarray]:
    """Orders each exposed buyer paid from its exposure until the experiment's end, per arm."""
    x = tables["exposures"].filter(pc.equal(tables["exposures"]["experiment"], experiment))
    units = x.column("unit_id").to_numpy(zero_copy_only=False)
    exposed = x.column("exposed_at").cast("int64").to_numpy()
    variant = x.column("variant").to_numpy(zero_copy_only=False)
    position = {u: i for i, u in enumerate(units)}
    o = tables["orders"]
    buyer = o.column("buyer_id").to_numpy(zero_copy_only=False)
    at = o.column("created_at").cast("int64").to_numpy()
    index = np.array([position.get(b, -1) for b in buyer])
    end_us = end.astype("datetime64[us]").astype(np.int64)
    counted = (index >= 0) & (at >= exposed[np.maximum(index, 0)]) & (at < end_us)
    counts = np.bincount(index[counted], minlength=units.size)
    return {v: counts[variant == v].astype(float) for v in np.unique(variant)}


def relative_lift(control: np.ndarray, treatment: np.ndarray, level: float = 0.95):
    """Difference in means as a ratio, ``mean_t / mean_c - 1``, with a delta-method interval."""
    mc, mt = control.mean(), treatment.mean()
    vc, vt = control.var(ddof=1) / control.size, treatment.var(ddof=1) / treatment.size
    lift = mt / mc - 1
    se = np.sqrt(vt / mc**2 + mt**2 * vc / mc**4)
    z = stats.norm.ppf(0.5 + level / 2)
    return lift, lift - z * se, lift + z * se


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    folder = tmp_path_factory.mktemp("known_effect")
    scenario = parse_scenario(KNOWN, "known_effect")
    return simulate_to(folder, buyers=40_000, days=90, seed=5, scenario=scenario)


def test_difference_in_means_recovers_the_true_lift(known):
    truth = known["_result"].truth["experiments"][0]
    effect = next(a for a in truth["arms"] if a["name"] == "treatment")["effects"]["conversion"]
    arms = orders_per_exposed_unit(known, "bigger_button", np.datetime64(truth["end"]))
    lift, lo, hi = relative_lift(arms["control"], arms["treatment"])
    assert lo < effect < hi, (lift, lo, hi)
    assert lo > 0.1  # and it is clearly detected, not only "not excluded"
    # the plain (absolute) difference in means agrees with Welch's test from scipy
    welch = stats.ttest_ind(arms["treatment"], arms["control"], equal_var=False)
    assert welch.pvalue < 1e-6


def test_truth_records_exposures_and_the_assignment_salt(known):
    truth = known["_result"].truth["experiments"][0]
    assert truth["start"] == "2024-04-11" and truth["end"] == "2024-06-20"
    assert truth["salt"] == "bigger_button"
    exposed = sum(a["exposed"] for a in truth["arms"])
    assert exposed == known["exposures"].num_rows
    counts = [a["exposed"] for a in truth["arms"]]
    assert stats.binomtest(counts[0], exposed, 0.5).pvalue > 0.001  # no sample-ratio mismatch
    assert truth["best_arm"] == "treatment"


def test_exposures_use_tianpings_own_assignment(tmp_path):
    scenario = load_scenario("default")
    tables = simulate_to(tmp_path, buyers=4_000, days=40, seed=2, scenario=scenario)
    client = Client(snapshot_of(scenario))
    x = tables["exposures"].to_pylist()
    assert len(x) > 3_000
    for row in x:
        assert client.variant(row["experiment"], row["unit_id"]) == row["variant"]
    # buyers never exposed are still assigned; only exposure needs a visit in the window
    names = {s.name for s in scenario.experiments}
    assert {r["experiment"] for r in x} == names


def test_experiments_sharing_a_layer_never_share_a_buyer(tmp_path):
    scenario = parse_scenario(
        """
name: one_layer
experiments:
  - {name: a, layer: search, arms: [{name: c}, {name: t, effects: {conversion: 0.1}}]}
  - {name: b, layer: search, arms: [{name: c}, {name: t, effects: {order_value: 0.1}}]}
  - {name: c, arms: [{name: c}, {name: t}]}
""",
        "one_layer",
    )
    tables = simulate_to(tmp_path, buyers=3_000, days=30, seed=1, scenario=scenario)
    x = tables["exposures"]
    units = {
        e: set(x.filter(pc.equal(x["experiment"], e)).column("unit_id").to_pylist())
        for e in ("a", "b", "c")
    }
    assert units["a"] and units["b"]
    assert not units["a"] & units["b"]
    assert units["c"] & units["a"] and units["c"] & units["b"]  # other layers are orthogonal
