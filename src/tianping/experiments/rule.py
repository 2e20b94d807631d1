"""An experiment's pre-registered decision rule, its verdict and its sample size (pure).

The rule is declared before the experiment starts and frozen when it starts
(docs/experiments.md, "Decision rules"). It ships a treatment only when

- at least one **success metric** improves: a one-sided test in the metric's good direction
  at ``alpha_success / (success metrics × treatments)`` (Bonferroni), on the relative scale;
- **every guardrail is shown non-inferior**: the one-sided ``1 − alpha_guardrails`` bound on
  the bad side lies within the guardrail's margin (relative, or absolute in the units the
  report shows). All guardrails must pass, so no correction is needed for their false
  "non-inferior" verdicts (an intersection–union test); a guardrail that is merely
  underpowered fails this test instead of passing;
- no guardrail and no success metric is significantly worse (two-sided, unadjusted);
- every **health gate** passes (otherwise: *investigate*), and the planned sample is reached
  (otherwise: *keep running*).

Power for the rule as a whole (Spotify's "risk-aware" sizing): with ``K = 1 + guardrails``
tests that must all pass, each is sized for power ``1 − β/K``, so the rule ships a true
improvement of the minimum effect, with every guardrail unchanged, with probability
≥ ``1 − β`` (Bonferroni on β).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from scipy import stats

VERDICTS = ("ship", "do not ship", "keep running", "investigate")
SCALES = ("relative", "absolute")


@dataclass(frozen=True, slots=True)
class SuccessMetric:
    """A metric whose improvement the experiment is run for.

    Attributes:
        metric: its name.
        higher_is_better: its good direction.
        min_effect: the smallest relative improvement worth shipping (e.g. 0.02 = +2 %);
            the plan sizes the test to find it.
    """

    metric: str
    higher_is_better: bool
    min_effect: float


@dataclass(frozen=True, slots=True)
class GuardrailRule:
    """A metric that must be shown not worse than ``margin``.

    Attributes:
        metric: its name.
        higher_is_better: its good direction.
        margin: how much worse is still acceptable (≥ 0): a share of the control's value
            with ``scale="relative"`` (0.05 = 5 % worse), else in the metric's displayed units
            (NPS in points).
        scale: ``relative`` or ``absolute``.
    """

    metric: str
    higher_is_better: bool
    margin: float
    scale: str = "relative"


@dataclass(frozen=True, slots=True)
class HealthRule:
    """When the data cannot be trusted (each gate is one report line).

    Attributes:
        srm_alpha: sample-ratio checks (overall, by day, by dimension) flag below this.
        dimensions: unit attributes the sample ratio is also checked by (``buyer_type``,
            ``channel``: the unit's last order channel before its first exposure).
        max_multiple_exposed: largest share of units seen in more than one arm.
        imbalance_alpha: a pre-period covariate differing between arms below this
            (Bonferroni over covariates and treatments) fails.
        novelty_alpha: the effect in the first week after exposure differing from the later
            one below this is flagged (a warning: it does not block).
        min_units: the sample the plan sized before the start (every arm together); None:
            the report sizes the rule from the control's observed moments instead.
    """

    srm_alpha: float = 0.001
    dimensions: tuple[str, ...] = ()
    max_multiple_exposed: float = 0.01
    imbalance_alpha: float = 0.001
    novelty_alpha: float = 0.01
    min_units: int | None = None


@dataclass(frozen=True, slots=True)
class DecisionRule:
    """Success metrics, guardrails with margins, health gates and the alpha of each part."""

    success: tuple[SuccessMetric, ...]
    guardrails: tuple[GuardrailRule, ...] = ()
    health: HealthRule = field(default_factory=HealthRule)
    alpha_success: float = 0.05
    alpha_guardrails: float = 0.05
    power: float = 0.8

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the store keeps and the report shows)."""
        out = asdict(self)
        out["health"]["dimensions"] = list(self.health.dimensions)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionRule:
        """The rule :meth:`to_dict` wrote."""
        health = dict(data.get("health") or {})
        health["dimensions"] = tuple(health.get("dimensions") or ())
        return cls(
            success=tuple(SuccessMetric(**s) for s in data["success"]),
            guardrails=tuple(GuardrailRule(**g) for g in data.get("guardrails") or ()),
            health=HealthRule(**health),
            alpha_success=data.get("alpha_success", 0.05),
            alpha_guardrails=data.get("alpha_guardrails", 0.05),
            power=data.get("power", 0.8),
        )

    @property
    def version(self) -> str:
        """A hash of the rule's content (12 hex digits): names the rule a report used."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def success_alpha(self, treatments: int) -> float:
        """The one-sided alpha of each success test (Bonferroni over metrics and treatments)."""
        return self.alpha_success / (len(self.success) * max(1, treatments))

    @property
    def tests_to_pass(self) -> int:
        """Tests that must all pass to ship: one success metric and every guardrail."""
        return 1 + len(self.guardrails)


# -- the verdict -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bound:
    """One rule test of one treatment on one metric.

    Attributes:
        metric: the metric.
        treatment: the arm.
        estimate: the effect on the test's scale (relative, or absolute in displayed units).
        bound: the one-sided bound on the bad side (success: the lower bound in the good
            direction's terms, i.e. the least improvement; guardrail: the worst case).
        alpha: the one-sided level of the bound.
        passed: success improved / guardrail non-inferior.
        worse: significantly worse (two-sided, unadjusted): blocks a ship.
        scale: ``relative`` or ``absolute``.
        threshold: what the bound is compared with (0, or minus the margin).
        role: ``success`` or ``guardrail``.
    """

    metric: str
    treatment: str
    estimate: float | None
    bound: float | None
    alpha: float
    passed: bool
    worse: bool
    scale: str = "relative"
    threshold: float = 0.0
    role: str = "success"


@dataclass(frozen=True, slots=True)
class Gate:
    """One health gate's line: ``status`` is ``pass``, ``fail``, ``warn`` or ``n/a``."""

    name: str
    status: str
    detail: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the rule says and why.

    Attributes:
        verdict: one of :data:`VERDICTS`.
        treatment: the arm to ship (``ship`` only).
        reasons: every reason, in the order they decided.
    """

    verdict: str
    treatment: str | None
    reasons: tuple[str, ...]

    @property
    def recommendation(self) -> str:
        """``ship B`` or the verdict."""
        return f"ship {self.treatment}" if self.verdict == "ship" else self.verdict


def _fmt(value: float | None, scale: str) -> str:
    if value is None:
        return "—"
    return f"{value:+.2%}" if scale == "relative" else f"{value:+.4g}"


def decide(
    rule: DecisionRule,
    treatments: Sequence[str],
    success: Sequence[Bound],
    guardrails: Sequence[Bound],
    gates: Sequence[Gate],
) -> Verdict:
    """The verdict from the rule's tests and the health gates.

    Order: a failed gate → *investigate*; a treatment that improves a success metric, shows
    every guardrail non-inferior and is worse on nothing → *ship* (the largest success
    estimate) once the planned sample is reached, else *keep running*; every treatment
    significantly worse somewhere → *do not ship*; sample not reached → *keep running*;
    otherwise *do not ship*.
    """
    failed = [g for g in gates if g.status == "fail"]
    if failed:
        return Verdict("investigate", None, tuple(f"{g.name}: {g.detail}" for g in failed))
    reached = all(g.status != "warn" for g in gates if g.name == "sample size")
    reasons: list[str] = []
    candidates: list[tuple[float, str]] = []
    blocked: set[str] = set()
    for t in treatments:
        won = [b for b in success if b.treatment == t and b.passed]
        worse = [b for b in (*success, *guardrails) if b.treatment == t and b.worse]
        not_shown = [b for b in guardrails if b.treatment == t and not b.passed and not b.worse]
        for b in worse:
            reasons.append(f"{t}: {b.metric} significantly worse ({_fmt(b.estimate, b.scale)})")
        if worse:
            blocked.add(t)
        if not won:
            best = max(
                (b for b in success if b.treatment == t),
                key=lambda b: b.bound if b.bound is not None else -math.inf,
                default=None,
            )
            shown = (
                ""
                if best is None
                else (
                    f" ({best.metric} {_fmt(best.estimate, best.scale)}, one-sided bound "
                    f"{_fmt(best.bound, best.scale)} at alpha {best.alpha:.3g})"
                )
            )
            reasons.append(f"{t}: no success metric shown improved{shown}")
        for b in not_shown:
            reasons.append(
                f"{t}: guardrail {b.metric} not shown non-inferior (worst case "
                f"{_fmt(b.bound, b.scale)} beyond the margin {_fmt(b.threshold, b.scale)})"
            )
        if won and not worse and not not_shown:
            top = max(won, key=lambda b: b.estimate or 0.0)
            candidates.append((top.estimate or 0.0, t))
            reasons.append(
                f"{t}: {top.metric} improved {_fmt(top.estimate, top.scale)} (one-sided bound "
                f"{_fmt(top.bound, top.scale)} > 0 at alpha {top.alpha:.3g}) and every "
                "guardrail is non-inferior within its margin"
            )
    if candidates:
        _, best_t = max(candidates)
        if reached:
            return Verdict("ship", best_t, tuple(reasons))
        return Verdict(
            "keep running", None,
            ("the rule would ship " + best_t + ", but the planned sample is not reached: "
             "deciding early raises the false-ship rate", *reasons),
        )  # fmt: skip
    if treatments and blocked == set(treatments):
        return Verdict("do not ship", None, tuple(reasons))
    if not reached:
        return Verdict("keep running", None, ("the planned sample is not reached yet", *reasons))
    return Verdict("do not ship", None, tuple(reasons))


# -- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Baseline:
    """A metric's per-unit mean and standard deviation before the experiment.

    For a ratio ``sd`` is that of its linearisation, so ``sd / mean`` is its coefficient of
    variation as for a mean.
    """

    metric: str
    mean: float
    sd: float


@dataclass(frozen=True, slots=True)
class PlanLine:
    """Units one test of the rule needs (all arms together)."""

    metric: str
    role: str
    effect: float
    scale: str
    alpha: float
    power: float
    units: int


@dataclass(frozen=True, slots=True)
class RulePlan:
    """The sample the whole rule needs: the largest of its tests'."""

    units: int
    lines: tuple[PlanLine, ...]
    tests_to_pass: int
    power: float

    @property
    def binding(self) -> PlanLine:
        """The test that sets the size."""
        return max(self.lines, key=lambda line: line.units)


#: An arm with at most this share of the traffic is taken to receive none (races write 1e-9
#: for an eliminated strategy).
NO_TRAFFIC = 1e-6


def plan_rule(
    rule: DecisionRule,
    baselines: Mapping[str, Baseline],
    weights: Sequence[float],
    *,
    display: Mapping[str, float] | None = None,
) -> RulePlan:
    """Units (every arm together) for the rule to ship a true improvement of each success
    metric's ``min_effect`` with probability ≥ ``power`` while every guardrail is unchanged.

    Normal approximation of the relative effect's delta-method variance,
    ``(1+δ)² cv² (1/n_t + 1/n_c)``; each of the ``K`` tests at power ``1 − β/K``; the
    smallest arm against the control decides.

    Args:
        rule: the decision rule.
        baselines: metric → its baseline moments.
        weights: the arms' weights, control first.
        display: metric → factor from stored to displayed units (NPS: 100), for absolute
            margins.

    Raises:
        ValueError: a metric without a baseline, a zero mean on a relative scale, a
            non-positive effect or margin, or a control (or every treatment) that receives no
            traffic.
    """
    k = rule.tests_to_pass
    beta = (1 - rule.power) / k
    z_b = stats.norm.ppf(1 - beta)
    total = float(sum(weights))
    shares = [w / total for w in weights]
    # An arm that receives no traffic (a race's eliminated strategy, a paused arm) gains no
    # units whatever the size, so it cannot set it; the control must receive traffic.
    if shares[0] <= NO_TRAFFIC:
        raise ValueError("the control receives no traffic, so no test of the rule can gain units")
    live = [s for s in shares[1:] if s > NO_TRAFFIC]
    if not live:
        raise ValueError("no treatment arm receives traffic")
    arm_factor = max(1 / shares[0] + 1 / s for s in live)
    z_s = stats.norm.ppf(1 - rule.success_alpha(len(weights) - 1))
    z_g = stats.norm.ppf(1 - rule.alpha_guardrails)
    lines = []
    for s in rule.success:
        cv = _cv(baselines, s.metric)
        if s.min_effect <= 0:
            raise ValueError(f"{s.metric}: min_effect must be positive")
        n = ((z_s + z_b) * (1 + s.min_effect) * cv / s.min_effect) ** 2 * arm_factor
        lines.append(PlanLine(s.metric, "success", s.min_effect, "relative",
                              rule.success_alpha(len(weights) - 1), 1 - beta, math.ceil(n)))  # fmt: skip
    for g in rule.guardrails:
        if g.margin <= 0:
            raise ValueError(f"guardrail {g.metric}: a margin of 0 can never be shown")
        if g.scale == "relative":
            spread = _cv(baselines, g.metric)
        else:
            spread = _base(baselines, g.metric).sd * (display or {}).get(g.metric, 1.0)
        n = ((z_g + z_b) * spread / g.margin) ** 2 * arm_factor
        lines.append(PlanLine(g.metric, "guardrail", g.margin, g.scale,
                              rule.alpha_guardrails, 1 - beta, math.ceil(n)))  # fmt: skip
    return RulePlan(max(line.units for line in lines), tuple(lines), k, rule.power)


def _base(baselines: Mapping[str, Baseline], metric: str) -> Baseline:
    if metric not in baselines:
        raise ValueError(f"no baseline for {metric}")
    return baselines[metric]


def _cv(baselines: Mapping[str, Baseline], metric: str) -> float:
    b = _base(baselines, metric)
    if b.mean == 0:
        raise ValueError(f"{metric} has a baseline of 0: a relative effect is undefined")
    return abs(b.sd / b.mean)
