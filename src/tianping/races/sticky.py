"""Sticky assignment for races: a unit keeps the arm it first got while the race re-weights
(pure: wraps the SDK :class:`~tianping.experiments.client.Client`).

Assignment is stateless (a hash draw against cumulative weight boundaries), so when a race
rewrites the weights some units' draws fall into another arm's range
(:func:`tianping.races.allocation.moved_share` measures how many). Re-assigning them would mix
their outcomes across arms (the analysis drops units seen in two arms), so clients of a race
remember each unit's first arm in a store they own (a dict, a cache, a table) and only new
units follow the new weights.

The confirmation of race ``R`` runs as experiment ``R.confirm`` and must see **fresh** units:
a unit this store remembers in ``R`` is not enrolled in ``R.confirm``.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from datetime import datetime

from tianping.clock import Clock, SystemClock
from tianping.experiments.assignment import Snapshot
from tianping.experiments.client import Client, Exposure

#: The confirmation experiment of race ``R`` is ``R`` + this suffix.
CONFIRM_SUFFIX = ".confirm"


class StickyClient:
    """Assign like :class:`~tianping.experiments.client.Client`, but a unit keeps its arm.

    Args:
        snapshot: the assignment snapshot (object, dict or JSON string).
        store: ``"experiment\\x1funit_id" -> variant`` of units already assigned.
        on_exposure: called with the first exposure of a unit to an experiment in this process.
        clock: where ``exposed_at`` comes from.

    >>> store = {}
    >>> snap = {"experiments": [{"name": "r", "variants": [{"name": "a", "weight": 1},
    ...                                                     {"name": "b", "weight": 1e-9}]}]}
    >>> c = StickyClient(snap, store)
    >>> c.variant("r", "u1")
    'a'
    >>> c.update({"experiments": [{"name": "r", "variants": [{"name": "a", "weight": 1e-9},
    ...                                                      {"name": "b", "weight": 1}]}]})
    >>> c.variant("r", "u1"), c.variant("r", "u2")
    ('a', 'b')
    """

    def __init__(
        self,
        snapshot: Snapshot | dict | str,
        store: MutableMapping[str, str],
        on_exposure: Callable[[Exposure], None] | None = None,
        *,
        clock: Clock | None = None,
    ):
        self._client = Client(snapshot, clock=clock)
        self._store = store
        self._on_exposure = on_exposure
        self._clock = clock or SystemClock()
        self._seen: set[tuple[str, str]] = set()

    def update(self, snapshot: Snapshot | dict | str) -> None:
        """Switch to new weights; units already in the store keep their arms."""
        self._client.update(snapshot)

    def variant(self, experiment: str, unit_id: str | int) -> str | None:
        """The unit's arm: the remembered one if it is still a variant, else a fresh draw."""
        unit_id = str(unit_id)
        key = f"{experiment}\x1f{unit_id}"
        name = self._store.get(key)
        if experiment not in self._client.experiments:
            return None
        config = self._client.snapshot.experiment(experiment)
        if name is None or name not in config.variant_names:
            if self._raced_before(experiment, unit_id):
                return None
            name = self._client.variant(experiment, unit_id)
            if name is None:
                return None
            self._store[key] = name
        self._expose(experiment, name, unit_id, self._clock.now())
        return name

    def _raced_before(self, experiment: str, unit_id: str) -> bool:
        race = experiment.removesuffix(CONFIRM_SUFFIX)
        return race != experiment and f"{race}\x1f{unit_id}" in self._store

    def _expose(self, experiment: str, name: str, unit_id: str, at: datetime) -> None:
        if self._on_exposure is not None and (experiment, unit_id) not in self._seen:
            self._seen.add((experiment, unit_id))
            self._on_exposure(Exposure(experiment, name, unit_id, at))
