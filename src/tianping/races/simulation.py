"""Seeded simulated races straight from the pure core (pure: numpy only).

Arm outcomes are drawn with NumPy from known truths, so a race's choices can be scored
against the truth: did it name the best arm, how much traffic did it waste (regret) compared
with an equal split, and does the confirmation's interval cover the true effect.

- ``bernoulli``: each unit converts with the arm's probability; ``sum`` ~ Binomial(n, p);
- ``normal``: each unit's value is Normal(mean, sd); the sum and the sum of squares are drawn
  exactly from the sample mean (Normal) and the sample variance (scaled chi-square).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tianping.errors import InvalidInput
from tianping.races.allocation import traffic_weights
from tianping.races.race import Confirmation, RaceRules, StepResult, confirm, race_step
from tianping.stats import ArmStats

OUTCOMES = ("bernoulli", "normal")


@dataclass(frozen=True, slots=True)
class SimulatedRace:
    """The outcome of one simulated race.

    Attributes:
        stopped: the adaptive phase ended within the horizon.
        winner: the leader when it stopped (None when it did not).
        comparator: what the winner was confirmed against.
        steps: adaptive steps taken.
        units: units each arm received in the adaptive phase.
        regret: true cumulative regret of the adaptive phase (sum of units times the gap to
            the best arm's true value).
        equal_split_regret: the regret of splitting the same traffic equally.
        confirmation: the confirmation's verdict (None when it did not stop).
        true_effect: the winner's true effect over the comparator.
        history: every step's result.
    """

    stopped: bool
    winner: str | None
    comparator: str | None
    steps: int
    units: tuple[int, ...]
    regret: float
    equal_split_regret: float
    confirmation: Confirmation | None
    true_effect: float | None
    history: tuple[StepResult, ...]


class _Arms:
    """Running sufficient statistics of simulated arms."""

    def __init__(self, k: int):
        self.n = np.zeros(k, dtype=np.int64)
        self.s = np.zeros(k)
        self.ss = np.zeros(k)

    def add(self, counts, outcome: str, truth, sd: float, rng: np.random.Generator) -> None:
        s, ss = draw_sums(counts, outcome, truth, sd, rng)
        self.n += counts
        self.s += s
        self.ss += ss

    def stats(self, names: Sequence[str]) -> list[ArmStats]:
        return [
            ArmStats(name, int(n), float(s), float(ss))
            for name, n, s, ss in zip(names, self.n, self.s, self.ss, strict=True)
        ]


def draw_sums(counts, outcome: str, truth, sd: float, rng: np.random.Generator):
    """Sums and sums of squares of ``counts[k]`` fresh unit outcomes of each arm."""
    counts = np.asarray(counts, dtype=np.int64)
    truth = np.asarray(truth, dtype=float)
    if outcome == "bernoulli":
        s = rng.binomial(counts, truth).astype(float)
        return s, s.copy()
    if outcome != "normal":
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}", field="outcome")
    n = np.maximum(counts, 1)
    mean = rng.normal(truth, sd / np.sqrt(n))
    var_sum = sd * sd * rng.chisquare(np.maximum(counts - 1, 1))
    var_sum = np.where(counts > 1, var_sum, 0.0)
    s = np.where(counts > 0, counts * mean, 0.0)
    ss = np.where(counts > 0, var_sum + counts * mean * mean, 0.0)
    return s, ss


def simulate_race(
    rules: RaceRules,
    truth: Sequence[float],
    *,
    units_per_step: int,
    max_steps: int,
    rng: np.random.Generator,
    outcome: str = "bernoulli",
    sd: float = 1.0,
    confirm_units: int = 0,
) -> SimulatedRace:
    """Run one race on simulated traffic, then (if it stopped) its confirmation.

    Args:
        rules: the race (``metric_type`` must match ``outcome``: proportion or mean).
        truth: each arm's true conversion rate or mean.
        units_per_step: new units between two steps (split by the current weights).
        max_steps: the horizon; a race that has not stopped by then names no winner.
        rng: the one seeded generator (arm outcomes and Monte Carlo draws).
        outcome: ``bernoulli`` or ``normal``.
        sd: the unit-level standard deviation of ``normal`` outcomes.
        confirm_units: units per arm in the confirmation (0: no confirmation).
    """
    truth = np.asarray(truth, dtype=float)
    if len(truth) != len(rules.arms):
        raise InvalidInput("one true value per arm is needed", field="truth")
    k = len(truth)
    arms, on = _Arms(k), np.ones(k, dtype=bool)
    weights = traffic_weights(
        np.ones(k),
        on,
        control=rules.control_index,
        control_share=rules.control_share,
        min_share=rules.min_share,
        max_share=rules.max_share,
    )
    history: list[StepResult] = []
    for _ in range(max_steps):
        arms.add(rng.multinomial(units_per_step, weights), outcome, truth, sd, rng)
        result = race_step(rules, arms.stats(rules.arms), active=on, rng=rng)
        history.append(result)
        on = np.array([s.active for s in result.standings])
        weights = np.array([s.weight for s in result.standings])
        if result.stop:
            break
    return _finish(rules, truth, arms, history, rng, outcome, sd, confirm_units)


def _finish(rules, truth, arms: _Arms, history, rng, outcome, sd, confirm_units) -> SimulatedRace:
    best = truth.max() if rules.higher_is_better else truth.min()
    gaps = np.abs(best - truth)
    regret = float((arms.n * gaps).sum())
    equal = float(arms.n.sum() * gaps.mean())
    last = history[-1]
    if not last.stop:
        return SimulatedRace(
            False,
            None,
            None,
            len(history),
            tuple(int(x) for x in arms.n),
            regret,
            equal,
            None,
            None,
            tuple(history),
        )
    w, c = rules.arms.index(last.leader), rules.arms.index(last.comparator)
    verdict = None
    if confirm_units > 0:
        fresh = _Arms(2)
        fresh.add(np.array([confirm_units, confirm_units]), outcome, truth[[c, w]], sd, rng)
        comp, win = fresh.stats((last.comparator, last.leader))
        verdict = confirm(
            win,
            comp,
            metric_type=rules.metric_type,
            higher_is_better=rules.higher_is_better,
            alpha=rules.alpha,
        )
    return SimulatedRace(
        True,
        last.leader,
        last.comparator,
        len(history),
        tuple(int(x) for x in arms.n),
        regret,
        equal,
        verdict,
        float(truth[w] - truth[c]),
        tuple(history),
    )
