"""Simulated buyers go through tianping's own assignment, exactly as live traffic would (pure).

A scenario becomes an assignment :class:`~tianping.experiments.assignment.Snapshot`: each
experiment's salt is its name; experiments naming the same ``layer`` split that layer's buckets
into equal, disjoint ranges in scenario order (mutually exclusive), and layers are orthogonal.
So ``assign_batch(snapshot_of(scenario), name, buyer_ids)`` reproduces the simulated arms.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tianping.experiments.assignment import (
    BUCKETS,
    ExperimentConfig,
    Layer,
    Snapshot,
    Variant,
    assign_batch,
    unit_hashes,
)
from tianping.simulate.scenario import Scenario


def snapshot_of(scenario: Scenario) -> Snapshot:
    """The assignment snapshot of a scenario's experiments."""
    members: dict[str, list[str]] = {}
    for spec in scenario.experiments:
        if spec.layer is not None:
            members.setdefault(spec.layer, []).append(spec.name)
    configs = []
    for spec in scenario.experiments:
        buckets = (0, BUCKETS)
        if spec.layer is not None:
            names = members[spec.layer]
            k, i = len(names), names.index(spec.name)
            buckets = (BUCKETS * i // k, BUCKETS * (i + 1) // k)
        configs.append(
            ExperimentConfig(
                name=spec.name,
                salt=spec.name,
                variants=tuple(Variant(a.name, a.weight) for a in spec.arms),
                traffic=spec.traffic,
                layer=spec.layer,
                layer_buckets=buckets,
            )
        )
    layers = tuple(Layer(name, name) for name in members)
    return Snapshot(experiments=tuple(configs), layers=layers)


def scenario_assigner(
    scenario: Scenario, unit_ids: Callable[[np.ndarray], np.ndarray]
) -> Callable[[np.ndarray], list[np.ndarray]]:
    """``assign(buyer_numbers) -> [arm index per buyer, -1 outside]`` for every experiment.

    Args:
        scenario: the experiments.
        unit_ids: buyer numbers to their id strings (a NumPy unicode array), as written to the
            event tables.
    """
    snapshot = snapshot_of(scenario)
    names = [s.name for s in scenario.experiments]

    def assign(numbers: np.ndarray) -> list[np.ndarray]:
        if not names:
            return []
        ids = unit_ids(numbers)
        hashes = unit_hashes(ids)
        return [assign_batch(snapshot, n, ids, hashes=hashes).astype(np.int64) for n in names]

    return assign
