"""Races in the store and on the warehouse: create, step, stop, report (never commits).

A race owns one experiment of the experiment engine (same name): its variants are the
strategies and their weights are what assignment reads, so a step that rewrites them moves new
traffic. Each step reads the arms' sufficient statistics of the goal metric and guardrails with
the engine's one grouped warehouse query, runs the pure core, writes the new weights and
appends a :class:`~tianping.races.models.RaceStep`. When the adaptive phase stops, the
experiment is stopped and a confirmation experiment ``<name>.confirm`` (winner vs comparator,
equal fixed weights, its own salt) starts the next day on fresh exposures. Shipping a strategy
(:func:`ship`) ends the race: its experiment then serves that strategy to every unit.

Every change is queued for the audit log (``race.created|stepped|stopped|shipped``, subject
``race:NAME``), besides the experiment changes it makes through the experiment service.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from tianping.audit import log as audit
from tianping.clock import Clock, SystemClock
from tianping.errors import Conflict, InvalidInput, NotFound, UsageError
from tianping.experiments import analysis as an
from tianping.experiments import service as experiments
from tianping.experiments.schemas import parse_spec as parse_experiment
from tianping.experiments.unit_metrics import get_metric
from tianping.money import exponent_of
from tianping.races import repository
from tianping.races.allocation import moved_share, traffic_weights
from tianping.races.budget import budget_step
from tianping.races.models import Race, RaceStep
from tianping.races.race import Guardrail, StepResult, confirm, race_step
from tianping.races.schemas import RaceSpec, parse_spec
from tianping.races.sticky import CONFIRM_SUFFIX
from tianping.stats import ArmStats

#: Weight written for an eliminated arm: assignment needs a positive weight, and this one
#: rounds to zero buckets.
ELIMINATED_WEIGHT = 1e-9


# -- definitions --------------------------------------------------------------------------


def load_yaml(text: str, *, source: str = "race") -> RaceSpec:
    """Parse and validate a YAML race definition.

    Raises:
        InvalidInput: not YAML, or not a valid definition.
    """
    return parse_spec(experiments.read_yaml(text, source=source), source=source, text=text)


def dump_yaml(spec: RaceSpec) -> str:
    """The definition as YAML that :func:`load_yaml` reads back to an equal spec."""
    return experiments.spec_yaml(spec)


def spec_of(race: Race) -> RaceSpec:
    """The race's definition, parsed again from the JSON stored at creation."""
    return parse_spec(race.spec, source=f"race {race.name}")


def create(spec: RaceSpec, *, session: Session, clock: Clock | None = None) -> Race:
    """Store a race and start its experiment with the initial split.

    Raises:
        Conflict: the race or an experiment of that name exists, or the layer range is taken.
    """
    if repository.get_by_name(spec.name, session=session) is not None:
        raise Conflict(f"race {spec.name!r} already exists", field="name")
    now = (clock or SystemClock()).now()
    weights = initial_weights(spec)
    experiments.create(
        _experiment_spec(spec, spec.name, spec.strategies, weights), session=session, clock=clock
    )
    data = spec.model_dump(mode="json")
    row = Race(
        name=spec.name,
        spec=data,
        spec_hash=_hash(data),
        experiment=spec.name,
        phase="racing",
        active=list(spec.strategies),
        steps=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    audit.later("race.created", subject=_subject(spec.name), now=now, session=session,
                detail={"spec_hash": row.spec_hash, "strategies": list(spec.strategies)})  # fmt: skip
    return row


def initial_weights(spec: RaceSpec) -> np.ndarray:
    """The split a race starts with: its control's share, the rest equal (within the bounds)."""
    rules = spec.rules()
    return traffic_weights(
        np.ones(len(rules.arms)),
        np.ones(len(rules.arms), dtype=bool),
        control=rules.control_index,
        control_share=rules.control_share,
        min_share=rules.min_share,
        max_share=rules.max_share,
    )


def weight_schedule(
    experiment: str, *, session: Session
) -> list[tuple[datetime | None, tuple[float, ...]]] | None:
    """The weights a race's adaptive experiment had over time, or None if no race re-weights it.

    One ``(from, weights)`` per window, oldest first: the race's initial split from the start
    (``from`` None), then the split each adaptive step wrote, from the moment it was taken.
    Weights are in the experiment's variant order (the race's strategies); an eliminated arm
    has :data:`ELIMINATED_WEIGHT`. The confirmation experiment keeps fixed weights: None.
    """
    race = repository.owning(experiment, session=session)
    if race is None or race.experiment != experiment:
        return None
    spec = spec_of(race)
    out: list[tuple[datetime | None, tuple[float, ...]]] = [
        (None, tuple(float(w) if w > 0 else ELIMINATED_WEIGHT for w in initial_weights(spec)))
    ]
    for row in repository.steps_of(race.id, session=session):
        if row.phase != "racing":
            continue
        weight = {s["arm"]: s["weight"] for s in row.standings}
        out.append((row.taken_at, tuple(
            max(float(weight.get(a) or 0.0), 0.0) or ELIMINATED_WEIGHT for a in spec.strategies
        )))  # fmt: skip
    return out


def _subject(name: str) -> str:
    return f"race:{name}"


def _experiment_spec(spec: RaceSpec, name: str, arms: Sequence[str], weights, *, start=None):
    experiment_kind = spec.kind == "experiment"
    return parse_experiment(
        {
            "name": name,
            "hypothesis": spec.hypothesis or f"horse race {spec.name}",
            "salt": name,
            "layer": spec.layer,
            "layer_buckets": list(spec.layer_buckets),
            "traffic": spec.traffic,
            "variants": [
                {"name": a, "weight": float(w) if w > 0 else ELIMINATED_WEIGHT}
                for a, w in zip(arms, weights, strict=True)
            ],
            "status": "running",
            # A policy race's metrics come from the replay, not from the engine's exposures.
            "primary_metric": spec.goal_metric if experiment_kind else "refund_rate",
            "guardrails": [g for g in spec.guardrails if g != spec.goal_metric]
            if experiment_kind
            else [],
            "alpha": spec.alpha,
            "method": "frequentist",
            "cuped": False,
            "start_date": (start or spec.start_date).isoformat(),
        },
        source=f"race {spec.name}",
    )


def _hash(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def get_or_raise(name: str, *, session: Session, lock: bool = False) -> Race:
    """The race called ``name``.

    Raises:
        NotFound: no race has that name.
    """
    row = repository.get_by_name(name, session=session, lock=lock)
    if row is None:
        raise NotFound(f"no race named {name!r}", field="name")
    return row


def list_all(*, session: Session) -> Sequence[Race]:
    """Every race, by name."""
    return repository.list_races(session=session)


def stop(name: str, *, session: Session, clock: Clock | None = None) -> Race:
    """Stop a race by hand (its running experiment is stopped too)."""
    race = get_or_raise(name, session=session, lock=True)
    if race.phase in ("decided", "stopped"):
        raise Conflict(f"race {name!r} is already {race.phase}", field="name")
    before = _halt(race, session=session, clock=clock)
    session.flush()
    audit.later("race.stopped", subject=_subject(name), now=race.updated_at, session=session,
                detail={"from": before, "steps": race.steps})  # fmt: skip
    return race


def _halt(race: Race, *, session: Session, clock: Clock | None) -> str:
    """Stop the race's running experiment and the race; returns the phase it was in."""
    before = race.phase
    current = race.confirm_experiment if race.phase == "confirming" else race.experiment
    experiments.set_status(current, "stopped", session=session, clock=clock)
    race.phase = "stopped"
    race.updated_at = (clock or SystemClock()).now()
    return before


def ship(
    name: str,
    variant: str | None = None,
    *,
    session: Session,
    clock: Clock | None = None,
    decision_id: int | None = None,
) -> Race:
    """Ship a strategy (default: the race's winner): the race stops where it is, and its
    experiment (the race's name) serves that strategy to every unit from now on.

    A decided race keeps its phase (and its confirmation's verdict); a racing or confirming one
    is stopped first.

    Raises:
        NotFound: no such race.
        InvalidInput: no winner yet and no variant named, or no such strategy.
        Conflict: the race was already shipped.
    """
    race = get_or_raise(name, session=session, lock=True)
    variant = check_shippable(race, variant)
    before = race.phase
    if race.phase in ("racing", "confirming"):
        _halt(race, session=session, clock=clock)
    shipped = experiments.ship(race.experiment, variant, session=session, clock=clock,
                               decision_id=decision_id)  # fmt: skip
    race.shipped_variant, race.shipped_at = variant, shipped.shipped_at
    race.updated_at = shipped.shipped_at
    session.flush()
    spec = spec_of(race)
    if spec.kind == "refund_policy":
        # A policy race's strategies are refund policies: shipping one makes it decide every
        # new request from now on (the refund service owns which policy is active).
        from tianping.refunds import policies

        policy = policies.by_version(spec.policy_versions[variant], session=session)
        policies.activate_policy(policy, session=session, now=shipped.shipped_at, by=f"race:{name}")
    audit.later("race.shipped", subject=_subject(name), now=shipped.shipped_at, session=session,
                detail={"variant": variant, "winner": race.winner, "from": before,
                        "decision": decision_id})  # fmt: skip
    return race


def check_shippable(race: Race, variant: str | None) -> str:
    """The strategy to ship (default the winner), or why it cannot be shipped.

    Raises:
        Conflict: the race was already shipped, or has no winner yet and no variant is named.
        NotFound: no such strategy.
    """
    if race.shipped_variant is not None:
        raise Conflict(
            f"race {race.name!r} was already shipped ({race.shipped_variant}) at "
            f"{race.shipped_at:%Y-%m-%d %H:%M} UTC",
            field="name",
        )
    variant = variant or race.winner
    if not variant:
        raise Conflict(f"race {race.name!r} has no winner yet; name the variant", field="variant")
    strategies = list(race.spec["strategies"])
    if variant not in strategies:
        raise NotFound(
            f"race {race.name!r} has no strategy {variant!r}; strategies: {', '.join(strategies)}",
            field="variant",
        )
    return variant


# -- stepping -----------------------------------------------------------------------------


def step(name: str, *, session: Session, warehouse: Any, clock: Clock | None = None) -> RaceStep:
    """Read the latest data, decide, write the new weights and record the step.

    Raises:
        NotFound: no such race.
        Conflict: the race is decided or stopped, or its confirmation has not started yet.
    """
    clock = clock or SystemClock()
    race = get_or_raise(name, session=session, lock=True)
    check_steppable(race)
    spec = spec_of(race)
    if spec.kind == "refund_policy":
        raise UsageError(
            f"race {name!r} races refund policies: step it over a window of past requests "
            "(--from and --to)",
            field="name",
        )
    today = clock.now().date()
    if race.phase == "racing":
        row = _adaptive_step(race, spec, today, session=session, warehouse=warehouse, clock=clock)
    else:
        row = _confirmation_step(
            race, spec, today, session=session, warehouse=warehouse, clock=clock
        )
    return record_step(race, row, session=session)


def record_step(race: Race, row: RaceStep, *, session: Session) -> RaceStep:
    """Append a step and move the race's step count and time."""
    race.steps = row.number
    race.updated_at = row.taken_at
    session.add(row)
    session.flush()
    audit.later("race.stepped", subject=_subject(race.name), now=row.taken_at, session=session,
                detail={"number": row.number, "phase": row.phase, "leader": row.leader,
                        "stop": row.stop, "now": race.phase, "moved_share": row.moved_share})  # fmt: skip
    return row


def check_steppable(race: Race) -> None:
    """Raises Conflict when the race is decided or stopped."""
    if race.phase in ("decided", "stopped"):
        raise Conflict(f"race {race.name!r} is {race.phase}; nothing to step", field="name")


def _metrics(spec: RaceSpec) -> tuple[str, ...]:
    return tuple(dict.fromkeys([spec.goal_metric, *spec.guardrails]))


def _read(warehouse, experiment: str, first: date, last: date, spec: RaceSpec):
    window = an.AnalysisWindow.from_dates(first, last)
    query = an.Query(experiment, window, _metrics(spec), cuped=False)
    return an.fetch_aggregates(warehouse, query)


def _guardrails(agg, spec: RaceSpec, arms: Sequence[str]) -> list[Guardrail]:
    out = []
    for m in spec.guardrails:
        if m == spec.goal_metric:
            continue
        d = get_metric(m)
        out.append(
            Guardrail(m, d.type, d.higher_is_better, an.arm_stats(agg, m, arms, cuped=False))
        )
    return out


def _adaptive_step(
    race: Race, spec: RaceSpec, today: date, *, session, warehouse, clock
) -> RaceStep:
    rules = spec.rules()
    arms = rules.arms
    agg = _read(warehouse, race.experiment, spec.start_date, today, spec)
    goal = an.arm_stats(agg, spec.goal_metric, arms, cuped=False)
    number = race.steps + 1
    rng = np.random.default_rng([spec.seed, number])
    result = race_step(
        rules,
        goal,
        active=[a in race.active for a in arms],
        guardrails=_guardrails(agg, spec, arms),
        rng=rng,
    )
    previous = repository.last_step(race.id, session=session)
    regret, equal = _regret(previous, result)
    budget = _budget(spec, previous, goal, result, rng)
    moved = _write_weights(race, result, session=session, clock=clock)
    race.active = [s.arm for s in result.standings if s.active]
    if result.stop:
        _start_confirmation(race, spec, result, today, session=session, clock=clock)
    return RaceStep(
        race_id=race.id,
        number=number,
        phase="racing",
        taken_at=clock.now(),
        window_start=spec.start_date,
        window_end=today,
        seed=spec.seed,
        leader=result.leader,
        stop=result.stop,
        standings=[_clean(asdict(s)) for s in result.standings],
        guardrails=[_clean(asdict(g)) for g in result.guardrails],
        reasons=list(result.reasons),
        budget=budget,
        confirmation=None,
        regret=regret,
        equal_split_regret=equal,
        moved_share=moved,
    )


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe: NaN (an eliminated arm's estimate) becomes None."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in d.items()}


def _regret(previous: RaceStep | None, result: StepResult) -> tuple[float, float]:
    """Cumulative regret estimate: new units of each arm times its expected loss per unit;
    and the same for an equal split of those units over the arms still evaluated."""
    before = {s["arm"]: s["n"] for s in previous.standings} if previous else {}
    new = np.array([max(s.n - before.get(s.arm, 0), 0) for s in result.standings], dtype=float)
    loss = np.array([s.expected_loss for s in result.standings], dtype=float)
    known = np.isfinite(loss)
    step_regret = float((new[known] * loss[known]).sum())
    equal = float(new.sum() * loss[known].mean()) if known.any() else 0.0
    prev_r = previous.regret if previous else 0.0
    prev_e = previous.equal_split_regret if previous else 0.0
    return prev_r + step_regret, prev_e + equal


def _budget(spec: RaceSpec, previous: RaceStep | None, goal, result: StepResult, rng):
    if spec.budget is None:
        return None
    spent = (
        {b["arm"]: b["spend_minor"] + b["allocated_minor"] for b in (previous.budget or [])}
        if previous
        else {}
    )
    lines = budget_step(
        goal,
        [spent.get(a.name, 0) for a in goal],
        total_minor=spec.budget.period_minor,
        active=[s.active for s in result.standings],
        rng=rng,
        floor_minor=spec.budget.floor_minor,
        cap_minor=spec.budget.cap_minor,
        exponent=exponent_of(spec.budget.currency),
        draws=spec.draws,
    )
    return [asdict(line) for line in lines]


def _write_weights(race: Race, result: StepResult, *, session, clock) -> float:
    """Put the new split where assignment reads it; returns the share of buckets that move."""
    row = experiments.get_or_raise(race.experiment, session=session)
    old = [v["weight"] for v in row.variants]
    new = [max(s.weight, 0.0) for s in result.standings]
    row.variants = [
        {"name": s.arm, "weight": w if w > 0 else ELIMINATED_WEIGHT}
        for s, w in zip(result.standings, new, strict=True)
    ]
    row.updated_at = clock.now()
    return moved_share(old, [w if w > 0 else ELIMINATED_WEIGHT for w in new])


def _start_confirmation(
    race: Race, spec: RaceSpec, result: StepResult, today: date, *, session, clock
) -> None:
    """Stop the adaptive experiment on ``today`` and confirm on fresh units from the day after."""
    experiments.set_status(race.experiment, "stopped", session=session, clock=clock)
    adaptive = experiments.get_or_raise(race.experiment, session=session)
    adaptive.end_date = today
    start = today + timedelta(days=1)
    name = f"{spec.name}{CONFIRM_SUFFIX}"
    arms = [result.comparator, result.leader]
    experiments.create(
        _experiment_spec(spec, name, arms, [1.0, 1.0], start=start), session=session, clock=clock
    )
    race.phase = "confirming"
    race.winner, race.comparator = result.leader, result.comparator
    race.confirm_experiment, race.confirm_start = name, start


def settle_confirmation(
    race: Race, spec: RaceSpec, goal, verdict, reasons: list[str], *, session, clock
) -> tuple[bool, list[str]]:
    """Decide a confirming race once its verdict is ready; whether it was, and the reasons.

    Ready means every arm has ``confirm_units`` units, or (sequential confirmation) the
    comparison is already significant. Deciding stops the confirmation experiment.
    """
    n_min = min(a.n for a in goal)
    ready = verdict is not None and (
        n_min >= spec.confirm_units
        or (spec.confirm_method == "sequential" and verdict.comparison.pvalue < spec.alpha)
    )
    if not ready:
        return False, [f"confirmation has {n_min} of {spec.confirm_units} units per arm", *reasons]
    race.phase, race.decision = "decided", "ship" if verdict.ship else "no_ship"
    experiments.set_status(race.confirm_experiment, "stopped", session=session, clock=clock)
    return True, reasons


def _confirmation_step(
    race: Race, spec: RaceSpec, today: date, *, session, warehouse, clock
) -> RaceStep:
    if today < race.confirm_start:
        raise Conflict(
            f"race {race.name!r}: the confirmation collects fresh units from "
            f"{race.confirm_start}; step again once it has data",
            field="name",
        )
    arms = (race.comparator, race.winner)
    agg = _read(warehouse, race.confirm_experiment, race.confirm_start, today, spec)
    goal = an.arm_stats(agg, spec.goal_metric, arms, cuped=False)
    verdict, reasons = _judge(spec, goal, agg, arms)
    ready, reasons = settle_confirmation(
        race, spec, goal, verdict, reasons, session=session, clock=clock
    )
    return RaceStep(
        race_id=race.id,
        number=race.steps + 1,
        phase="confirming",
        taken_at=clock.now(),
        window_start=race.confirm_start,
        window_end=today,
        seed=spec.seed,
        leader=race.winner,
        stop=ready,
        standings=_confirm_standings(goal, verdict),
        guardrails=[] if verdict is None else [_clean(asdict(g)) for g in verdict.guardrails],
        reasons=reasons,
        budget=None,
        confirmation=None if verdict is None else _verdict_dict(verdict, ready),
        regret=_last(race, session, "regret"),
        equal_split_regret=_last(race, session, "equal_split_regret"),
        moved_share=0.0,
    )


def _judge(spec: RaceSpec, goal: list[ArmStats], agg, arms):
    guards = {}
    for g in _guardrails(agg, spec, arms):
        guards[g.metric] = (g.metric_type, g.higher_is_better, g.arms[0], g.arms[1])
    return judge(spec, goal, guards)


def judge(spec: RaceSpec, goal: Sequence[ArmStats], guards: dict[str, Any]):
    """The confirmation's verdict on (comparator, winner) statistics, or None and why not yet."""
    if min(a.n for a in goal) < 2:
        return None, ["too few units in the confirmation to compare yet"]
    metric_type, higher_is_better = spec.metric(spec.goal_metric)
    try:
        verdict = confirm(
            goal[1],
            goal[0],
            metric_type=metric_type,
            higher_is_better=higher_is_better,
            alpha=spec.alpha,
            method=spec.confirm_method,
            guardrails=guards,
            margins=spec.margins(),
        )
    except InvalidInput as exc:
        return None, [f"cannot compare yet: {exc.message}"]
    return verdict, list(verdict.reasons)


def _confirm_standings(goal: list[ArmStats], verdict) -> list[dict[str, Any]]:
    means = {}
    if verdict is not None:
        c = verdict.comparison
        means = {c.control: c.control_mean, c.treatment: c.treatment_mean}
    return [{"arm": a.name, "n": a.n, "estimate": means.get(a.name)} for a in goal]


def _verdict_dict(verdict, final: bool) -> dict[str, Any]:
    c = verdict.comparison
    return {
        "winner": verdict.winner,
        "comparator": verdict.comparator,
        "effect_size": c.effect_size,
        "effect_size_ci_lower": c.effect_size_ci_lower,
        "effect_size_ci_upper": c.effect_size_ci_upper,
        "rel_effect_size": c.rel_effect_size,
        "pvalue": c.pvalue,
        "ship": verdict.ship,
        "final": final,
        "guardrails": [
            {
                "metric": g.metric,
                "hurt": g.hurt,
                "bound": g.bound,
                "margin": g.margin,
                "scale": g.scale,
                "non_inferior": g.non_inferior,
            }
            for g in verdict.guardrails
        ],  # fmt: skip
        "reasons": list(verdict.reasons),
    }


def _last(race: Race, session: Session, field: str) -> float:
    previous = repository.last_step(race.id, session=session)
    return getattr(previous, field) if previous is not None else 0.0


# -- reading ------------------------------------------------------------------------------


def report_data(name: str, *, session: Session) -> dict[str, Any]:
    """Everything the race report shows, as plain JSON-ready data."""
    race = get_or_raise(name, session=session)
    steps = repository.steps_of(race.id, session=session)
    return {
        "race": {
            "name": race.name,
            "phase": race.phase,
            "kind": race.spec.get("kind", "experiment"),
            "goal_metric": race.spec["goal_metric"],
            "strategies": race.spec["strategies"],
            "control": race.spec.get("control"),
            "active": race.active,
            "winner": race.winner,
            "comparator": race.comparator,
            "decision": race.decision,
            "experiment": race.experiment,
            "confirm_experiment": race.confirm_experiment,
            "confirm_start": race.confirm_start,
            "shipped_variant": race.shipped_variant,
            "shipped_at": race.shipped_at,
            "spec_hash": race.spec_hash,
            "budget": race.spec.get("budget"),
        },
        "rule": rule_of(spec_of(race)),
        "steps": [_step_dict(s) for s in steps],
    }


def rule_of(spec: RaceSpec) -> dict[str, Any]:
    """How the race decides, as its report states it: the adaptive phase's stop and
    elimination thresholds, then the confirmation's test and each guardrail's margin."""
    guardrails = []
    for metric, (margin, scale) in spec.margins().items():
        _type, higher = spec.metric(metric)
        guardrails.append({"metric": metric, "margin": margin, "scale": scale,
                           "higher_is_better": higher})  # fmt: skip
    return {
        "best_threshold": spec.best_threshold,
        "eliminate_below": spec.eliminate_below,
        "min_units": spec.min_units,
        "confirm_against": spec.confirm_against,
        "confirm_method": spec.confirm_method,
        "confirm_units": spec.confirm_units,
        "alpha": spec.alpha,
        "guardrails": guardrails,
    }


def _step_dict(s: RaceStep) -> dict[str, Any]:
    return {
        "number": s.number,
        "phase": s.phase,
        "taken_at": s.taken_at,
        "window": [s.window_start, s.window_end],
        "leader": s.leader,
        "stop": s.stop,
        "standings": s.standings,
        "guardrails": s.guardrails,
        "reasons": s.reasons,
        "budget": s.budget,
        "confirmation": s.confirmation,
        "regret": s.regret,
        "equal_split_regret": s.equal_split_regret,
        "moved_share": s.moved_share,
    }
