"""Refund-policy races: the race machinery with refund policies as the strategies, stepped by
replaying past refund requests (store and warehouse side; never commits).

A race of ``kind: refund_policy`` has one arm per policy (a built-in name or a policy file),
kept in ``refund_policies`` under its content version when the race is created; the versions
are pinned in the stored definition (``policy_versions``). Its experiment holds the weights as
for any race. A step over a window of past requests (``--from``/``--to``):

1. reads every refund request of the window with its policy inputs
   (:func:`tianping.aftersales.replay.replay_inputs`);
2. assigns each request's buyer to an arm with the race's current weights, by the experiment
   engine's deterministic hash (the live refund service assigns the same way,
   :mod:`tianping.refunds.race_policy`); in the confirmation, buyers who had a request during
   the adaptive phase are left out, so it runs on fresh units;
3. decides each arm's requests under the arm's policy (the vectorised evaluator) and measures
   them (:mod:`tianping.aftersales.policy_metrics`, the buyer as unit), and counts each arm's
   two-sided errors (:mod:`tianping.aftersales.two_sided`: honest buyers refused, abusive
   claims paid), judged by the simulator's ground truth, else by the merchant appeals decided
   in the store; each step keeps its window's counts per arm (``errors``), which the race
   report sums;
4. adds the window's sufficient statistics to the phase's running totals and runs the race's
   step (posteriors, chance to be best, elimination, new weights, stop) or its confirmation.

Windows must follow each other (no request is counted twice); the running totals are kept in
each step's standings (``stats``), so no new table is needed.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from tianping.aftersales import policy_metrics as pm
from tianping.aftersales import replay, two_sided
from tianping.aftersales.policy import Policy, evaluate_batch, resolve_policy
from tianping.clock import Clock, SystemClock
from tianping.errors import Conflict, InvalidInput, UsageError
from tianping.experiments import service as experiments
from tianping.experiments.assignment import assign_batch
from tianping.money import exponent_of
from tianping.races import repository, service
from tianping.races.models import Race, RaceStep
from tianping.races.race import Guardrail, race_step
from tianping.races.refund_arms import race_snapshot
from tianping.races.schemas import RaceSpec
from tianping.refunds import policies
from tianping.refunds.service import appeal_outcomes
from tianping.stats import ArmStats


def create(
    spec: RaceSpec, *, session: Session, clock: Clock | None = None, base: Path | None = None
) -> Race:
    """Store every arm's policy by version, pin the versions in the definition, start the race.

    Args:
        spec: a definition of ``kind: refund_policy``.
        base: folder that relative policy file paths are read from (the YAML's).

    Raises:
        UsageError: not a policy race, or a policy file is missing.
        InvalidInput: a policy is invalid, the arms decide in different currencies, or a
            pinned version is not the policy's content.
        Conflict: another policy race is running (a buyer may be decided by one race only).
    """
    if spec.kind != "refund_policy":
        raise UsageError(f"race {spec.name!r} is not of kind refund_policy", field="kind")
    running = [r.name for r in repository.list_races(session=session) if _live_policy_race(r)]
    if running:
        raise Conflict(
            f"policy race {running[0]!r} is running; stop it before starting {spec.name!r} "
            "(each buyer is decided by at most one policy race)",
            field="name",
        )
    now = (clock or SystemClock()).now()
    versions = {}
    loaded = [(arm, _resolve(spec.policy_ref(arm), base)) for arm in spec.strategies]
    currencies = {p.currency for _, p in loaded}
    if len(currencies) > 1:
        raise InvalidInput(
            f"the policies decide in different currencies ({', '.join(sorted(currencies))})",
            field="policies",
        )
    for arm, policy in loaded:
        pinned = spec.policy_versions.get(arm)
        if pinned is not None and pinned != policy.version:
            raise InvalidInput(
                f"policy_versions: {arm}: the definition pins version {pinned[:12]}, but "
                f"{spec.policy_ref(arm)} now has version {policy.short_version}",
                field="policy_versions",
            )
        policies.store(policy, session=session, now=now)
        versions[arm] = policy.version
    return service.create(spec.model_copy(update={"policy_versions": versions}), session=session,
                          clock=clock)  # fmt: skip


def _resolve(ref: str, base: Path | None) -> Policy:
    if base is not None and not Path(ref).is_absolute() and (base / ref).is_file():
        ref = str(base / ref)
    return resolve_policy(ref)


def _live_policy_race(race: Race) -> bool:
    return race.phase in ("racing", "confirming") and race.spec.get("kind") == "refund_policy"


def step(
    name: str,
    *,
    start: date,
    end: date,
    session: Session,
    warehouse: Any,
    clock: Clock | None = None,
) -> RaceStep:
    """Replay the window's refund requests under the race's assignment and step the race.

    Raises:
        NotFound: no such race.
        Conflict: the race is decided or stopped.
        UsageError: not a policy race; the window is empty, overlaps an earlier step's or
            starts before the race (or its confirmation) does.
        InvalidInput: a goal or guardrail metric needs the abuse ground truth and the
            warehouse has none.
    """
    clock = clock or SystemClock()
    race = service.get_or_raise(name, session=session, lock=True)
    service.check_steppable(race)
    spec = service.spec_of(race)
    if spec.kind != "refund_policy":
        raise UsageError(
            f"race {name!r} races experiment strategies; step it without --from/--to", field="name"
        )
    previous = repository.last_step(race.id, session=session)
    _check_window(race, spec, previous, start, end)
    confirming = race.phase == "confirming"
    arms = (race.comparator, race.winner) if confirming else spec.rules().arms
    experiment = race.confirm_experiment if confirming else race.experiment
    inputs = replay.replay_inputs(warehouse, start=start, end=end)
    assigned = _assign(experiment, inputs.buyer_ids, session=session)
    if confirming:
        seen = replay.requesting_buyers(warehouse, **_adaptive_days(race, session))
        assigned[np.isin(np.asarray(inputs.buyer_ids, dtype=str), seen)] = -1
    truth = _truth(inputs, session=session)
    window, errors = _measure(
        spec, arms, inputs, assigned, truth, session=session, scale=warehouse.scale
    )
    same_phase = previous is not None and previous.phase == race.phase
    totals = _add(window, previous.standings if same_phase else None, arms)
    make = _confirmation_step if confirming else _adaptive_step
    row = make(race, spec, totals, window, previous, end, session=session, clock=clock)
    row.standings = [s | {"errors": errors[s["arm"]]} for s in row.standings]
    row.window_start, row.window_end = start, end
    return service.record_step(race, row, session=session)


def _check_window(race: Race, spec: RaceSpec, previous, start: date, end: date) -> None:
    if end < start:
        raise UsageError(f"the window ends ({end}) before it starts ({start})", field="to")
    first = race.confirm_start if race.phase == "confirming" else spec.start_date
    what = "confirmation" if race.phase == "confirming" else "race"
    if start < first:
        raise UsageError(
            f"race {race.name!r}: the {what} starts on {first}; the window starts {start}",
            field="from",
        )
    if previous is not None and start <= previous.window_end:
        raise UsageError(
            f"race {race.name!r}: the window {start}..{end} overlaps step {previous.number}'s "
            f"({previous.window_start}..{previous.window_end}); step over consecutive windows",
            field="from",
        )


def _assign(experiment: str, buyer_ids: np.ndarray, *, session: Session) -> np.ndarray:
    row = experiments.get_or_raise(experiment, session=session)
    ids = np.asarray(buyer_ids, dtype=str)
    return assign_batch(race_snapshot(row), experiment, ids).astype(np.int64)


def _adaptive_days(race: Race, session: Session) -> dict[str, date]:
    racing = [s for s in repository.steps_of(race.id, session=session) if s.phase == "racing"]
    return {"start": racing[0].window_start, "end": racing[-1].window_end}


def _truth(inputs: replay.ReplayInputs, *, session: Session) -> two_sided.Truth:
    """The ground truth where the warehouse has it, else the store's decided merchant appeals."""
    if inputs.abusive is not None:
        return two_sided.Truth.from_abusive(inputs.abusive)
    return two_sided.Truth.from_appeals(inputs.refund_ids, appeal_outcomes(session=session))


def measure(
    spec: RaceSpec,
    arms: tuple[str, ...],
    inputs: replay.ReplayInputs,
    assigned: np.ndarray,
    *,
    session: Session,
    scale: int | None = None,
) -> dict[str, list[ArmStats]]:
    """Each metric's per-arm statistics when arm ``i``'s policy decides the requests assigned
    to ``i`` (-1: in no arm)."""
    return _measure(spec, arms, inputs, assigned, None, session=session, scale=scale)[0]


def _measure(
    spec: RaceSpec,
    arms: tuple[str, ...],
    inputs: replay.ReplayInputs,
    assigned: np.ndarray,
    truth: two_sided.Truth | None,
    *,
    session: Session,
    scale: int | None = None,
) -> tuple[dict[str, list[ArmStats]], dict[str, dict[str, object]]]:
    """:func:`measure`, and each arm's two-sided error counts (with the arm's currency)."""
    metrics = service._metrics(spec)
    errors: dict[str, dict[str, object]] = {}
    values = {m: np.zeros(len(inputs.refund_ids)) for m in metrics}
    for i, arm in enumerate(arms):
        policy = policies.by_version(spec.policy_versions[arm], session=session)
        if scale is not None and exponent_of(policy.currency) != scale:
            raise UsageError(
                f"policy {policy.name} decides in {policy.currency}, whose minor unit is not "
                "the warehouse's",
                field="policies",
            )
        rows = np.flatnonzero(assigned == i)
        columns = pm.take_columns(inputs.columns, rows) | {"currency": policy.currency}
        batch = evaluate_batch(policy, columns)
        abusive = None if inputs.abusive is None else inputs.abusive[rows]
        got = pm.request_values(
            batch, abusive, metrics, handling_cost_minor=spec.handling_cost_minor
        )
        for m in metrics:
            values[m][rows] = got[m]
        known = None if truth is None else truth.take(rows)
        asked = columns["amount_minor"]
        errors[arm] = two_sided.counts(batch, asked, known) | {"currency": policy.currency}
    stats = {m: pm.arm_stats(values[m], inputs.buyer_ids, assigned, arms) for m in metrics}
    return stats, errors


def _add(window: dict[str, list[ArmStats]], standings, arms) -> dict[str, list[ArmStats]]:
    before = {s["arm"]: s.get("stats", {}) for s in standings or []}
    out = {}
    for m, stats in window.items():
        out[m] = [
            pm.merge(s, pm.from_dict(a, before[a][m])) if m in before.get(a, {}) else s
            for a, s in zip(arms, stats, strict=True)
        ]
    return out


def _stats_of(totals: dict[str, list[ArmStats]], window, i: int) -> dict[str, Any]:
    return {
        "stats": {m: pm.to_dict(v[i]) for m, v in totals.items()},
        "new_units": window[next(iter(window))][i].n,
    }


def _adaptive_step(race, spec, totals, window, previous, end, *, session, clock) -> RaceStep:
    rules = spec.rules()
    number = race.steps + 1
    goal = totals[spec.goal_metric]
    guards = [
        Guardrail(m, *spec.metric(m), totals[m]) for m in spec.guardrails if m != spec.goal_metric
    ]
    rng = np.random.default_rng([spec.seed, number])
    result = race_step(
        rules, goal, active=[a in race.active for a in rules.arms], guardrails=guards, rng=rng
    )
    regret, equal = service._regret(previous, result)
    moved = service._write_weights(race, result, session=session, clock=clock)
    race.active = [s.arm for s in result.standings if s.active]
    if result.stop:  # the adaptive phase ends with this window; fresh units from the next day
        service._start_confirmation(race, spec, result, end, session=session, clock=clock)
    standings = [
        service._clean(asdict(s)) | _stats_of(totals, window, i)
        for i, s in enumerate(result.standings)
    ]
    return RaceStep(
        race_id=race.id, number=number, phase="racing", taken_at=clock.now(), seed=spec.seed,
        leader=result.leader, stop=result.stop, standings=standings,
        guardrails=[service._clean(asdict(g)) for g in result.guardrails],
        reasons=list(result.reasons), budget=None, confirmation=None, regret=regret,
        equal_split_regret=equal, moved_share=moved,
    )  # fmt: skip


def _confirmation_step(race, spec, totals, window, previous, end, *, session, clock) -> RaceStep:
    goal = totals[spec.goal_metric]
    guards = {
        m: (*spec.metric(m), totals[m][0], totals[m][1])
        for m in spec.guardrails
        if m != spec.goal_metric
    }
    verdict, reasons = service.judge(spec, goal, guards)
    ready, reasons = service.settle_confirmation(
        race, spec, goal, verdict, reasons, session=session, clock=clock
    )
    standings = [
        s | _stats_of(totals, window, i)
        for i, s in enumerate(service._confirm_standings(goal, verdict))
    ]
    return RaceStep(
        race_id=race.id, number=race.steps + 1, phase="confirming", taken_at=clock.now(),
        seed=spec.seed, leader=race.winner, stop=ready, standings=standings,
        guardrails=[] if verdict is None else [service._clean(asdict(g)) for g in verdict.guardrails],
        reasons=reasons, budget=None,
        confirmation=None if verdict is None else service._verdict_dict(verdict, ready),
        regret=previous.regret if previous else 0.0,
        equal_split_regret=previous.equal_split_regret if previous else 0.0, moved_share=0.0,
    )  # fmt: skip
