"""Which arm of a running refund-policy race a buyer's new request falls in.

While a race of kind ``refund_policy`` is running (``docs/races.md``), a new request's buyer is
assigned to an arm by the race's current experiment (its adaptive experiment while racing, its
``.confirm`` experiment from the confirmation's first day) with the experiment engine's
deterministic hash, and the arm's policy (stored by content version) decides. Buyers the
experiment leaves out (traffic, layer) and requests outside the race's dates get no arm: the
refund service's active policy decides for them.

The refund service asks through the reader it defines
(:class:`tianping.refunds.race_policy.PolicyArms`); the app gives it :func:`arm_for`, so the
refund lifecycle never imports the races that re-weight it. This runs on every new request, so
the race lookup costs one small query (the ids, step counts and update times of racing or
confirming races) and the compiled assignment plan is cached per race until a step, a stop or
the confirmation changes it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tianping.experiments import service as experiments
from tianping.experiments.assignment import Layer, Plan, Snapshot, assign_index, compile_plan
from tianping.experiments.models import Experiment
from tianping.races.models import Race
from tianping.refunds.race_policy import RaceArm
from tianping.store.db import core_execute

_LIVE_PHASES = ("racing", "confirming")


@dataclass(frozen=True, slots=True)
class _LiveRace:
    key: tuple[Any, ...]
    race: str
    experiment: str
    starts: date | None
    plan: Plan | None  # None: not a policy race, or its experiment is not running
    versions: tuple[str, ...]


_cache: dict[tuple[str, int], _LiveRace] = {}
_lock = threading.Lock()


def arm_for(buyer_id: str, *, session: Session, now: datetime) -> tuple[str, RaceArm] | None:
    """The policy version and race arm that decide a new request of ``buyer_id`` now, or None
    when no running policy race takes the buyer."""
    for live in _live_races(session):
        if live.plan is None or live.starts is None or now.date() < live.starts:
            continue
        i = assign_index(live.plan, buyer_id)
        if i >= 0:
            arm = live.plan.experiment.variants[i].name
            return live.versions[i], RaceArm(live.race, live.experiment, arm)
    return None


def race_snapshot(row: Experiment) -> Snapshot:
    """The assignment snapshot of one experiment, as the SDK snapshot has it (a layer's salt is
    its name), so a race assigns here exactly as clients do."""
    config = experiments.spec_of(row).to_config()
    layers = (Layer(config.layer, config.layer),) if config.layer is not None else ()
    return Snapshot((config,), layers)


#: ``session.info`` key: the live races as read in the session's current transaction.
_MEMO = "tianping.live_policy_races"


def _live_races(session: Session) -> list[_LiveRace]:
    """The running races, read once per transaction (the API's batched writer decides many
    requests in one)."""
    txn = session.get_transaction()
    memo = session.info.get(_MEMO)
    if memo is not None and memo[0] is txn:
        return memo[1]
    out = _read_live_races(session)
    session.info[_MEMO] = (txn, out)
    return out


_LIVE = select(Race.id, Race.steps, Race.updated_at, Race.phase).where(Race.phase.in_(_LIVE_PHASES))


def _read_live_races(session: Session) -> list[_LiveRace]:
    db = session.get_bind().url
    out = []
    for race_id, steps, updated_at, phase in core_execute(session, _LIVE).all():
        key = (steps, updated_at, phase)
        live = _cache.get((db, race_id))
        if live is None or live.key != key:
            live = _load(session, race_id, key)
            with _lock:
                _cache[(db, race_id)] = live
        out.append(live)
    return out


def _load(session: Session, race_id: int, key: tuple[Any, ...]) -> _LiveRace:
    race = session.get(Race, race_id)
    confirming = race.phase == "confirming"
    name = race.confirm_experiment if confirming else race.experiment
    spec = race.spec
    if spec.get("kind") != "refund_policy":
        return _LiveRace(key, race.name, name, None, None, ())
    row = experiments.get_or_raise(name, session=session)
    if row.status != "running":
        return _LiveRace(key, race.name, name, None, None, ())
    plan = compile_plan(race_snapshot(row), name)
    versions = tuple(spec["policy_versions"][v.name] for v in plan.experiment.variants)
    starts = race.confirm_start if confirming else date.fromisoformat(spec["start_date"])
    return _LiveRace(key, race.name, name, starts, plan, versions)
