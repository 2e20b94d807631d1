"""The race's rules: one step of the adaptive phase, elimination, stopping, and the
confirmation on fresh units that gives the unbiased effect (pure).

Phases: ``racing`` → ``confirming`` → ``decided`` (or ``stopped`` by hand). A step in the
``racing`` phase:

1. builds each active arm's posterior of the goal metric and draws a seeded Monte Carlo matrix;
2. computes each arm's chance to be best and expected loss;
3. eliminates challengers (never the control) whose chance to be best is below
   ``eliminate_below`` once they have ``min_units`` units;
4. stops when the leader's chance to be best reaches ``best_threshold``, every active arm has
   ``min_units`` units, and no guardrail of the leader is significantly hurt against the
   comparator (the control, or the runner-up when there is no control or the control leads);
5. otherwise sets the next traffic split from Thompson (or top-two Thompson) probabilities,
   within the control's fixed share and the per-arm floor and cap.

The adaptive estimates are biased (the winner is the arm that happened to look best), so
the ship decision comes from :func:`confirm`: a fixed-weight comparison of the winner and the
comparator on fresh units, analysed with :func:`tianping.stats.compare`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tianping.errors import InvalidInput
from tianping.races.allocation import traffic_weights
from tianping.races.posterior import check_metric_type, posteriors
from tianping.races.thompson import (
    DEFAULT_DRAWS,
    chance_to_be_best,
    draw_matrix,
    expected_loss,
    top_two_probabilities,
)
from tianping.stats import AnalysisConfig, ArmStats, Comparison, compare

PHASES = ("racing", "confirming", "decided", "stopped")
ALLOCATIONS = ("thompson", "top_two")


@dataclass(frozen=True, slots=True)
class RaceRules:
    """How a race runs (see ``docs/races.md`` for every field).

    Attributes:
        arms: the strategies, 2 to 20, in assignment order.
        metric_type: the goal metric's shape: ``proportion``, ``mean`` or ``ratio``.
        higher_is_better: direction of the goal metric.
        control: the control arm (fixed share, never eliminated), or None.
        control_share: the control's fixed share of traffic.
        min_share: every active challenger's minimum share of all traffic.
        max_share: every challenger's maximum share of all traffic.
        best_threshold: chance to be best that ends the adaptive phase.
        eliminate_below: chance to be best under which a challenger is eliminated.
        min_units: units an arm needs before it may be eliminated or the race may stop.
        allocation: ``thompson`` or ``top_two``.
        top_two_beta: the leader's share in top-two Thompson sampling.
        draws: Monte Carlo draws per step.
        alpha: significance of guardrail checks and of the confirmation.
        confirm_against: ``control`` or ``runner_up``.
    """

    arms: tuple[str, ...]
    metric_type: str
    higher_is_better: bool = True
    control: str | None = None
    control_share: float = 0.0
    min_share: float = 0.0
    max_share: float = 1.0
    best_threshold: float = 0.95
    eliminate_below: float = 0.01
    min_units: int = 100
    allocation: str = "thompson"
    top_two_beta: float = 0.5
    draws: int = DEFAULT_DRAWS
    alpha: float = 0.05
    confirm_against: str = "runner_up"

    def __post_init__(self) -> None:
        _check_rules(self)

    @property
    def control_index(self) -> int | None:
        """The control arm's position in :attr:`arms`, or None for a race without a control."""
        return None if self.control is None else self.arms.index(self.control)


def _check_rules(r: RaceRules) -> None:
    if not 2 <= len(r.arms) <= 20:
        raise InvalidInput(f"a race needs 2 to 20 strategies, got {len(r.arms)}", field="arms")
    if len(set(r.arms)) != len(r.arms):
        raise InvalidInput("strategy names must be unique", field="arms")
    check_metric_type(r.metric_type)
    if r.control is not None and r.control not in r.arms:
        raise InvalidInput(f"control {r.control!r} is not one of the strategies", field="control")
    if not 0 <= r.control_share < 1 or (r.control is None and r.control_share):
        raise InvalidInput(
            "control_share must be in [0, 1) and needs a control", field="control_share"
        )
    if r.control is not None and r.control_share == 0:
        raise InvalidInput("a control needs a control_share > 0", field="control_share")
    challengers = len(r.arms) - (r.control is not None)
    if not 0 <= r.min_share <= r.max_share <= 1 or r.min_share * challengers > 1 - r.control_share:
        raise InvalidInput(
            "need 0 <= min_share <= max_share <= 1 and challengers' floors within the traffic "
            "left after the control",
            field="min_share",
        )
    if r.max_share * challengers < 1 - r.control_share - 1e-12:
        raise InvalidInput("max_share is too small to place all traffic", field="max_share")
    for name in ("best_threshold", "eliminate_below", "alpha"):
        if not 0 < getattr(r, name) < 1:
            raise InvalidInput(f"{name} must be in (0, 1)", field=name)
    if r.eliminate_below >= r.best_threshold:
        raise InvalidInput("eliminate_below must be below best_threshold", field="eliminate_below")
    if r.allocation not in ALLOCATIONS:
        raise InvalidInput(
            f"allocation must be one of {', '.join(ALLOCATIONS)}", field="allocation"
        )
    if r.confirm_against not in ("control", "runner_up"):
        raise InvalidInput("confirm_against must be control or runner_up", field="confirm_against")
    if r.confirm_against == "control" and r.control is None:
        raise InvalidInput("confirm_against: control needs a control arm", field="confirm_against")
    if r.min_units < 0 or r.draws < 100:
        raise InvalidInput("min_units must be >= 0 and draws >= 100", field="draws")


@dataclass(frozen=True, slots=True)
class Standing:
    """One arm after a step."""

    arm: str
    n: int
    estimate: float
    sd: float
    p_best: float
    expected_loss: float
    weight: float
    active: bool


@dataclass(frozen=True, slots=True)
class GuardrailCheck:
    """A guardrail metric of the leader against the comparator.

    In the confirmation a guardrail with a margin is also tested for non-inferiority, as an
    experiment's decision rule tests it (:mod:`tianping.experiments.rule`): ``bound`` is the
    one-sided ``1 − alpha`` worst case of the winner's change in the metric's good direction
    (relative, or absolute in displayed units), ``non_inferior`` whether it stays within
    ``margin``.
    """

    metric: str
    effect_size: float
    pvalue: float
    hurt: bool
    bound: float | None = None
    margin: float | None = None
    scale: str | None = None
    non_inferior: bool | None = None


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one adaptive step decided.

    Attributes:
        standings: one per arm, in race order.
        leader: the active arm most likely best.
        stop: the adaptive phase ends (move to confirmation with ``leader`` vs ``comparator``).
        comparator: what the leader is confirmed against.
        eliminated: arms eliminated in this step.
        guardrails: the leader's guardrail checks.
        reasons: why it stopped or went on, for people.
    """

    standings: tuple[Standing, ...]
    leader: str
    stop: bool
    comparator: str
    eliminated: tuple[str, ...]
    guardrails: tuple[GuardrailCheck, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def weights(self) -> dict[str, float]:
        """The step's new weight per arm."""
        return {s.arm: s.weight for s in self.standings}

    @property
    def p_best(self) -> dict[str, float]:
        """Each arm's posterior chance of being the best."""
        return {s.arm: s.p_best for s in self.standings}


@dataclass(frozen=True, slots=True)
class Guardrail:
    """A guardrail metric's arm statistics (race order) and how to read it."""

    metric: str
    metric_type: str
    higher_is_better: bool
    arms: Sequence[ArmStats] = field(default_factory=tuple)


def race_step(
    rules: RaceRules,
    arms: Sequence[ArmStats],
    *,
    active: Sequence[bool] | None = None,
    guardrails: Sequence[Guardrail] = (),
    rng: np.random.Generator,
) -> StepResult:
    """One adaptive step: chance to be best, elimination, stopping and the next weights.

    Args:
        rules: the race.
        arms: the goal metric's sufficient statistics, one per arm in ``rules.arms`` order.
        active: which arms are still racing (all at the start).
        guardrails: guardrail metrics to protect.
        rng: the seeded generator of the Monte Carlo draws.
    """
    _check_arms(rules, arms)
    on = np.ones(len(arms), dtype=bool) if active is None else np.array(active, dtype=bool)
    if rules.control is not None:
        on[rules.control_index] = True
    idx = np.flatnonzero(on)
    posts = posteriors(arms, rules.metric_type)
    samples = draw_matrix([posts[i] for i in idx], rules.draws, rng)
    p_sub = chance_to_be_best(samples, higher_is_better=rules.higher_is_better)
    loss_sub = expected_loss(samples, higher_is_better=rules.higher_is_better)
    p_best, loss = np.zeros(len(arms)), np.full(len(arms), np.nan)
    p_best[idx], loss[idx] = p_sub, loss_sub
    dropped = _eliminate(rules, arms, on, p_best)
    on[dropped] = False
    leader = int(np.argmax(np.where(on, p_best, -1.0)))
    comparator = _comparator(rules, p_best, on, leader)
    checks = _guardrails(rules, guardrails, leader, comparator)
    stop, reasons = _stopping(rules, arms, on, p_best, leader, checks)
    weights = _weights(rules, p_best, on)
    standings = tuple(
        Standing(
            arm=name,
            n=arms[i].n,
            estimate=posts[i].mean,
            sd=posts[i].sd,
            p_best=float(p_best[i]),
            expected_loss=float(loss[i]),
            weight=float(weights[i]),
            active=bool(on[i]),
        )
        for i, name in enumerate(rules.arms)
    )
    return StepResult(
        standings,
        rules.arms[leader],
        stop,
        rules.arms[comparator],
        tuple(rules.arms[i] for i in dropped),
        checks,
        reasons,
    )


def _check_arms(rules: RaceRules, arms: Sequence[ArmStats]) -> None:
    if len(arms) != len(rules.arms):
        raise InvalidInput(
            f"expected statistics of {len(rules.arms)} arms, got {len(arms)}", field="arms"
        )


def _eliminate(rules: RaceRules, arms, on: np.ndarray, p_best: np.ndarray) -> list[int]:
    out = []
    for i in np.flatnonzero(on):
        if i == rules.control_index or arms[i].n < rules.min_units:
            continue
        if p_best[i] < rules.eliminate_below:
            out.append(int(i))
    keep = [i for i in np.flatnonzero(on) if i not in out]
    if not keep:  # never eliminate everyone: the best of them stays
        out.remove(int(np.argmax(np.where(on, p_best, -1.0))))
    return out


def _comparator(rules: RaceRules, p_best, on, leader: int) -> int:
    c = rules.control_index
    if rules.confirm_against == "control" and c is not None and c != leader:
        return c
    # The runner-up: the active arm most likely best after the leader (then eliminated ones).
    ranked = sorted(
        ((bool(on[i]), p_best[i], -i) for i in range(len(p_best)) if i != leader), reverse=True
    )
    return -int(ranked[0][2])


def _guardrails(rules, guardrails: Sequence[Guardrail], leader: int, comp: int):
    out = []
    for g in guardrails:
        try:
            c = compare(
                g.arms[comp], g.arms[leader], AnalysisConfig(g.metric_type, alpha=rules.alpha)
            )
        except InvalidInput:
            continue  # too little data on this guardrail to judge yet
        worse = c.effect_size < 0 if g.higher_is_better else c.effect_size > 0
        out.append(
            GuardrailCheck(g.metric, c.effect_size, c.pvalue, worse and c.pvalue < rules.alpha)
        )
    return tuple(out)


def _stopping(rules, arms, on, p_best, leader: int, checks) -> tuple[bool, tuple[str, ...]]:
    name = rules.arms[leader]
    reasons = []
    short = [rules.arms[i] for i in np.flatnonzero(on) if arms[i].n < rules.min_units]
    if short:
        reasons.append(f"waiting for {rules.min_units} units in {', '.join(short)}")
    if p_best[leader] < rules.best_threshold:
        reasons.append(
            f"leader {name} is best with chance {p_best[leader]:.3f} < {rules.best_threshold}"
        )
    hurt = [c.metric for c in checks if c.hurt]
    if hurt:
        reasons.append(f"leader {name} significantly hurts guardrail {', '.join(hurt)}")
    if reasons:
        return False, tuple(reasons)
    return True, (
        f"{name} is best with chance {p_best[leader]:.3f} >= {rules.best_threshold} "
        "and hurts no guardrail: confirm on fresh units",
    )


def _weights(rules: RaceRules, p_best: np.ndarray, on: np.ndarray) -> np.ndarray:
    alloc = p_best * on
    if rules.allocation == "top_two" and alloc.sum() > 0:
        alloc = np.where(on, top_two_probabilities(alloc / alloc.sum(), rules.top_two_beta), 0.0)
    return traffic_weights(
        alloc,
        on,
        control=rules.control_index,
        control_share=rules.control_share,
        min_share=rules.min_share,
        max_share=rules.max_share,
    )


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The confirmation's verdict: the unbiased effect of the winner over the comparator.

    Attributes:
        winner: the adaptive phase's leader.
        comparator: the control or the runner-up.
        comparison: the fixed-horizon (or sequential) comparison on fresh units.
        guardrails: the winner's guardrails on the same units.
        ship: ship the winner: it is significantly better and hurts no guardrail.
        reasons: for people.
    """

    winner: str
    comparator: str
    comparison: Comparison
    guardrails: tuple[GuardrailCheck, ...]
    ship: bool
    reasons: tuple[str, ...]


def confirm(
    winner: ArmStats,
    comparator: ArmStats,
    *,
    metric_type: str,
    higher_is_better: bool = True,
    alpha: float = 0.05,
    method: str = "frequentist",
    guardrails: Mapping[str, tuple[str, bool, ArmStats, ArmStats]] | None = None,
    margins: Mapping[str, tuple[float, str]] | None = None,
) -> Confirmation:
    """Judge the confirmation: ``winner`` against ``comparator`` on fresh units.

    Args:
        winner: the winner's goal-metric statistics in the confirmation.
        comparator: the comparator's.
        metric_type: the goal metric's shape.
        higher_is_better: direction of the goal metric.
        alpha: two-sided significance.
        method: ``frequentist`` (fixed horizon) or ``sequential`` (always valid).
        guardrails: metric → (metric_type, higher_is_better, comparator stats, winner stats).
        margins: metric → (margin, ``relative`` | ``absolute``): the guardrail must also be
            shown non-inferior within it (the experiments' decision rule); a guardrail
            without one is only checked for harm.
    """
    config = AnalysisConfig(metric_type, method=method, alpha=alpha)
    c = compare(comparator, winner, config)
    better = c.effect_size > 0 if higher_is_better else c.effect_size < 0
    checks = []
    for metric, (mtype, hib, comp_g, win_g) in (guardrails or {}).items():
        g = compare(comp_g, win_g, AnalysisConfig(mtype, alpha=alpha))
        worse = g.effect_size < 0 if hib else g.effect_size > 0
        check = GuardrailCheck(metric, g.effect_size, g.pvalue, worse and g.pvalue < alpha)
        if metric in (margins or {}):
            check = _non_inferior(check, mtype, hib, comp_g, win_g, alpha, *margins[metric])
        checks.append(check)
    reasons = [
        f"{winner.name} vs {comparator.name}: effect {c.effect_size:.6g} "
        f"[{c.effect_size_ci_lower:.6g}, {c.effect_size_ci_upper:.6g}], p = {c.pvalue:.4g}"
    ]
    significant = c.pvalue < alpha and better
    if not significant:
        reasons.append(f"not significantly better at alpha {alpha}: do not ship {winner.name}")
    hurt = [g.metric for g in checks if g.hurt]
    if hurt:
        reasons.append(f"hurts guardrail {', '.join(hurt)}: do not ship {winner.name}")
    unproven = [g for g in checks if g.non_inferior is False and not g.hurt]
    for g in unproven:
        shown = f"{g.bound:+.2%}" if g.scale == "relative" else f"{g.bound:+.4g}"
        limit = f"{g.margin:.2%}" if g.scale == "relative" else f"{g.margin:.4g}"
        reasons.append(f"guardrail {g.metric} not shown non-inferior (worst case {shown}, "
                       f"margin {limit}): do not ship {winner.name}")  # fmt: skip
    ship = significant and not hurt and not unproven
    if ship:
        reasons.append(f"ship {winner.name}")
    return Confirmation(winner.name, comparator.name, c, tuple(checks), ship, tuple(reasons))


def _non_inferior(check: GuardrailCheck, metric_type: str, higher_is_better: bool,
                  comparator: ArmStats, winner: ArmStats, alpha: float, margin: float,
                  scale: str) -> GuardrailCheck:  # fmt: skip
    """The check with its non-inferiority test: the one-sided ``1 − alpha`` bound (the end
    of the two-sided ``1 − 2 alpha`` interval) against minus the margin."""
    from dataclasses import replace

    from tianping.report.figures import POINTS

    wide = compare(comparator, winner, AnalysisConfig(metric_type, alpha=min(2 * alpha, 0.999)))
    if scale == "relative" and wide.rel_effect_size is not None:
        lo, hi = wide.rel_effect_size_ci_lower, wide.rel_effect_size_ci_upper
    else:
        scale, factor = "absolute", POINTS.get(check.metric, 1.0)
        lo, hi = wide.effect_size_ci_lower * factor, wide.effect_size_ci_upper * factor
    bound = lo if higher_is_better else -hi
    return replace(check, bound=bound, margin=margin, scale=scale, non_inferior=bound > -margin)
