"""The Python SDK: offline assignment from a snapshot, exposures through a callback (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tianping.clock import Clock, SystemClock
from tianping.experiments.assignment import Plan, Snapshot, assign_index, compile_plan


@dataclass(frozen=True, slots=True)
class Exposure:
    """One unit seeing one experiment's variant: a row of the ``exposures`` event table."""

    experiment: str
    variant: str
    unit_id: str
    exposed_at: datetime


class Client:
    """Assigns units offline from a config snapshot and reports each first exposure.

    Args:
        snapshot: a :class:`~tianping.experiments.assignment.Snapshot`, its dict (JSON) form,
            or a JSON string.
        on_exposure: called with an :class:`Exposure` the first time a unit is assigned to an
            experiment in this process; later calls for the same unit and experiment are
            deduplicated. Units not in the experiment are not reported.
        clock: where ``exposed_at`` comes from (UTC).

    >>> seen = []
    >>> c = Client({"experiments": [{"name": "x", "variants": ["control", "treatment"]}]},
    ...            on_exposure=seen.append)
    >>> v = c.variant("x", "buyer-1"); v == c.variant("x", "buyer-1"), len(seen)
    (True, 1)
    """

    def __init__(
        self,
        snapshot: Snapshot | dict | str,
        on_exposure: Callable[[Exposure], None] | None = None,
        *,
        clock: Clock | None = None,
    ):
        self._on_exposure = on_exposure
        self._clock = clock or SystemClock()
        self._seen: set[tuple[str, str]] = set()
        self.update(snapshot)

    def update(self, snapshot: Snapshot | dict | str) -> None:
        """Switch to a new snapshot; units keep their variants while the config keeps them."""
        if isinstance(snapshot, str):
            snapshot = Snapshot.from_json(snapshot)
        elif isinstance(snapshot, dict):
            snapshot = Snapshot.from_dict(snapshot)
        self.snapshot = snapshot
        self._plans: dict[str, Plan] = {}
        self._served = frozenset(e.name for e in snapshot.experiments)

    @property
    def experiments(self) -> frozenset[str]:
        """Names of the experiments the snapshot serves (running or shipped)."""
        return self._served

    def variant(self, experiment: str, unit_id: str | int) -> str | None:
        """The unit's variant name, or None when it is not in the experiment.

        An experiment the snapshot does not serve (stopped, a draft, or a name it does not
        know) gives None for every unit, and no exposure: the caller serves its default.
        :attr:`experiments` lists the names it serves, to catch a misspelt one.
        """
        if experiment not in self._served:
            return None
        plan = self._plans.get(experiment)
        if plan is None:
            plan = self._plans[experiment] = compile_plan(self.snapshot, experiment)
        unit_id = str(unit_id)
        i = assign_index(plan, unit_id)
        if i < 0:
            return None
        name = plan.experiment.variants[i].name
        if plan.shipped:  # a rollout, not an experiment: nothing to analyse, no exposure
            return name
        if self._on_exposure is not None and (experiment, unit_id) not in self._seen:
            self._seen.add((experiment, unit_id))
            self._on_exposure(Exposure(experiment, name, unit_id, self._clock.now()))
        return name

    def in_experiment(self, experiment: str, unit_id: str | int) -> bool:
        """Whether the unit is in the experiment (reports the exposure like :meth:`variant`);
        False for every unit of a shipped experiment, which is no longer one, and of one the
        snapshot does not serve."""
        if experiment not in self._served or self.snapshot.experiment(experiment).shipped:
            return False
        return self.variant(experiment, unit_id) is not None
