"""An experiment's report from its arms' sufficient statistics (pure: calls tianping.stats).

Decision rules (``docs/experiments.md``):

- one scale decides: the **relative** effect (treatment / control − 1). Its p-value (delta
  method, as GrowthBook), its interval and every verdict below use it; the absolute p-value is
  reported beside it for reference. Where the relative effect is undefined (a control of 0)
  the absolute scale decides that comparison, and the report says so;
- p-values of the primary metric are adjusted across treatment arms with the experiment's
  correction (Holm by default); secondary metrics are adjusted across arms only;
- with an ``alpha_split`` (e.g. primary 0.8, secondary 0.2) each group of metrics is tested
  at its share of alpha (intervals at the matching level), and the secondary metrics are
  adjusted jointly across metrics and arms; guardrails keep the full alpha unless the split
  names them;
- with CUPED on, every mean, proportion and ratio metric is regression-adjusted for all the
  covariates the warehouse returned (CUPED++); quantile metrics are never adjusted;
- a guardrail is *hurt* when a treatment moves it in its bad direction with an unadjusted
  p-value below alpha (Bayesian: chance of being worse ≥ 1 − alpha); guardrails are not
  corrected, so the check errs on the side of caution, and a guardrail whose whole interval
  lies on the bad side is always hurt;
- a treatment *wins* when it improves the primary metric significantly (adjusted p below
  alpha; Bayesian: chance to be better ≥ 1 − alpha);
- the recommendation ships the winner with the largest relative lift, unless the sample
  ratio mismatches (SRM, p < 0.001) or one of its guardrails is hurt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tianping.errors import InvalidInput
from tianping.experiments import health as gates
from tianping.experiments.rule import (
    Baseline,
    Bound,
    DecisionRule,
    Gate,
    Verdict,
    decide,
    plan_rule,
)
from tianping.experiments.unit_metrics import get_metric
from tianping.report.figures import POINTS
from tianping.stats import (
    Analysis,
    AnalysisConfig,
    ArmStats,
    Comparison,
    SRMResult,
    adjust_across,
    analyze,
    analyze_slices,
    analyze_stratified,
    sample_size,
    srm_over_windows,
    srm_test,
)
from tianping.stats.multitest import split_alpha


@dataclass(frozen=True, slots=True)
class ReportPlan:
    """What the report analyses and how (taken from the experiment's definition)."""

    experiment: str
    variants: tuple[str, ...]
    weights: tuple[float, ...]
    primary: str
    secondary: tuple[str, ...] = ()
    guardrails: tuple[tuple[str, bool], ...] = ()
    method: str = "frequentist"
    alpha: float = 0.05
    correction: str = "holm"
    cuped: bool = True
    cupac: bool = False
    hypothesis: str = ""
    window: tuple[str, str] = ("", "")
    mde: float | None = None
    power: float = 0.8
    days: int = 0
    alpha_split: tuple[tuple[str, float], ...] = ()
    rule: DecisionRule | None = None

    def alpha_of(self, role: str) -> float:
        """The alpha a metric of ``role`` (primary, secondary, guardrail) is tested at."""
        if not self.alpha_split:
            return self.alpha
        shares = split_alpha(dict(self.alpha_split), self.alpha)
        return shares.get(_GROUPS.get(role, role), self.alpha)


#: The alpha_split group of each metric role.
_GROUPS = {"primary": "primary", "secondary": "secondary", "guardrail": "guardrails"}


@dataclass(frozen=True, slots=True)
class WeightWindow:
    """Units first exposed while one split was in force (a race writes a new one each step).

    Attributes:
        start: when the split came into force (None: from the experiment's start), UTC.
        weights: the split, one weight per variant (any positive scale).
        counts: units per variant whose first exposure fell in this window.
    """

    start: Any
    weights: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class HealthData:
    """What the health gates read besides the arms (from the warehouse).

    Attributes:
        by_day: first-exposure day (ISO) → units per arm.
        by_dimension: dimension → value → units per arm.
        novelty: ``(metric, per arm (n, Σy₁, Σy₂, Σ(y₁−y₂), Σ(y₁−y₂)²))`` over units with two
            whole weeks since their first exposure; None when not measured.
    """

    by_day: Mapping[str, Sequence[int]] = field(default_factory=dict)
    by_dimension: Mapping[str, Mapping[str, Sequence[int]]] = field(default_factory=dict)
    novelty: tuple[str, Sequence[Sequence[float]]] | None = None


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One metric's analysis (``analysis`` None with ``error`` when it cannot be analysed)."""

    metric: str
    role: str
    metric_type: str
    higher_is_better: bool
    analysis: Analysis | None
    error: str | None = None
    hurt: tuple[str, ...] = ()
    wins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the table, JSON and HTML renderings show."""

    plan: ReportPlan
    counts: tuple[int, ...]
    srm: SRMResult | None
    multiple_exposed: int
    metrics: tuple[MetricResult, ...]
    recommendation: str
    reasons: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    slices: Mapping[str, Any] = field(default_factory=dict)
    runtime: Mapping[str, Any] | None = None
    srm_windows: tuple[WeightWindow, ...] = ()
    cupac: Mapping[str, Any] = field(default_factory=dict)
    health: tuple[Gate, ...] = ()
    verdict: Verdict | None = None
    tests: tuple[Bound, ...] = ()
    rule_record: Mapping[str, Any] = field(default_factory=dict)
    rule_plan: Mapping[str, Any] | None = None
    interactions: tuple[Mapping[str, Any], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (see ``docs/experiments.md``)."""
        return report_dict(self)


#: The scale every verdict is taken on (where the comparison has a relative effect).
SCALE = "relative"


def scale_of(c: Comparison) -> str:
    """``relative``, or ``absolute`` when the comparison has no relative p-value."""
    return SCALE if c.rel_pvalue is not None else "absolute"


def decision_pvalue(c: Comparison, adjusted: bool) -> float:
    """The p-value a verdict on ``c`` uses: on :func:`scale_of`, adjusted or not."""
    if scale_of(c) == "relative":
        return c.rel_pvalue_adjusted if adjusted else c.rel_pvalue
    return c.pvalue_adjusted if adjusted else c.pvalue


def better(c: Comparison, higher_is_better: bool, method: str, alpha: float, adjusted: bool) -> int:
    """+1 significantly better, -1 significantly worse, 0 neither (on :func:`scale_of`)."""
    if method == "bayesian" and c.chance_to_win is not None:
        p_up = c.chance_to_win
        p_better = p_up if higher_is_better else 1.0 - p_up
        return 1 if p_better >= 1 - alpha else (-1 if p_better <= alpha else 0)
    if decision_pvalue(c, adjusted) >= alpha or c.effect_size == 0:
        return 0
    up = c.effect_size > 0
    return 1 if up == higher_is_better else -1


def adjustment_of(plan: ReportPlan, metric_type: str, arms: Sequence[Any]) -> dict[str, Any]:
    """The CUPED settings a metric gets: ``covariates="regression"`` when every arm carries
    covariate sums, single-covariate CUPED when only the pre-period sums are there, none for
    quantile metrics or with CUPED off."""
    if not plan.cuped or metric_type == "quantile":
        return {"cuped": False, "covariates": None}
    if all(getattr(a, "covariates", None) is not None for a in arms):
        return {"cuped": False, "covariates": "regression"}
    return {"cuped": all(getattr(a, "pre_sum", None) is not None for a in arms), "covariates": None}


def _analyse(plan: ReportPlan, metric: str, arms: Sequence[ArmStats], role: str) -> MetricResult:
    m = get_metric(metric)
    try:
        config = AnalysisConfig(
            metric_type=m.type,
            method=plan.method,
            alpha=plan.alpha_of(role),
            correction=plan.correction,
            **adjustment_of(plan, m.type, arms),
        )
        analysis = analyze(arms, config=config)
    except InvalidInput as exc:
        return MetricResult(metric, role, m.type, m.higher_is_better, None, exc.message)
    return MetricResult(metric, role, m.type, m.higher_is_better, analysis)


def _judged(plan: ReportPlan, r: MetricResult, higher_is_better: bool) -> MetricResult:
    if r.analysis is None:
        return r
    adjusted = r.role != "guardrail"
    alpha = r.analysis.config.alpha
    verdicts = {
        c.treatment: better(c, higher_is_better, plan.method, alpha, adjusted)
        for c in r.analysis.comparisons
    }
    return MetricResult(
        r.metric,
        r.role,
        r.metric_type,
        higher_is_better,
        r.analysis,
        hurt=tuple(t for t, v in verdicts.items() if v < 0 and r.role == "guardrail"),
        wins=tuple(t for t, v in verdicts.items() if v > 0),
    )


def build_report(
    plan: ReportPlan,
    stats: Mapping[str, Sequence[ArmStats]],
    counts: Sequence[int],
    *,
    multiple_exposed: int = 0,
    slices: Mapping[str, Mapping[str, Sequence[ArmStats]]] | None = None,
    slice_by: str | None = None,
    srm_windows: Sequence[WeightWindow] | None = None,
    cupac: Mapping[str, Any] | None = None,
    health: HealthData | None = None,
    rule_record: Mapping[str, Any] | None = None,
    interactions: Sequence[Mapping[str, Any]] | None = None,
) -> Report:
    """Analyse every metric, check SRM and guardrails, and recommend.

    Args:
        plan: metrics, arms and settings.
        stats: metric name → its arms' sufficient statistics (in ``plan.variants`` order).
        counts: units per arm for the SRM check.
        multiple_exposed: units seen in more than one arm (left out; warned about).
        slices: metric name → slice value → arms, for a sliced view of the primary metric.
        slice_by: the dimension of ``slices``.
        srm_windows: when the weights changed while units arrived (a race), the units of
            each window of weights: the sample-ratio check expects each window's units at
            that window's weights instead of all units at ``plan.weights``.
        cupac: with CUPAC, its models: outcome → ``r2`` (out of fold), ``training_units``,
            ``folds`` (shown as they are).
        health: day and dimension counts and the novelty sums for the health gates.
        rule_record: when the rule was frozen and how it changed since (shown as is).
        interactions: the interaction tests of the pairs this experiment is in
            (:meth:`tianping.experiments.interactions.PairTest.to_dict`); None when it
            overlaps no other experiment.

    With a decision rule in the plan the recommendation is the rule's verdict
    (:func:`tianping.experiments.rule.decide`); without one (summary files, old callers) the
    primary-metric rule above decides.
    """
    srm = _srm(plan, counts, srm_windows)
    results = [_analyse(plan, plan.primary, stats[plan.primary], "primary")]
    results += [
        _analyse(plan, m, stats[m], "secondary") for m in plan.secondary if m != plan.primary
    ]
    results += [_analyse(plan, m, stats[m], "guardrail") for m, _ in plan.guardrails]
    if plan.alpha_split:
        results = _secondaries_adjusted_jointly(plan, results)
    directions = dict(plan.guardrails)
    judged = tuple(_judged(plan, r, directions.get(r.metric, r.higher_is_better)) for r in results)
    recommendation, reasons = _recommend(plan, judged, srm)
    checks, verdict, tests, planned = (), None, (), None
    if plan.rule is not None:
        planned = _rule_plan(plan, judged)
        checks = _gates(plan, stats, counts, srm, multiple_exposed, health, planned)
        checks.append(_interaction_gate(interactions))
        tests = _rule_tests(plan, stats)
        verdict = decide(plan.rule, plan.variants[1:], *tests, checks)
        recommendation, reasons = verdict.recommendation, verdict.reasons
    warnings = _warnings(plan, srm, multiple_exposed, judged)
    sliced = _slices(plan, slices, slice_by) if slices else {}
    if sliced.get("warning"):
        warnings += (sliced["warning"],)
    return Report(
        plan,
        tuple(counts),
        srm,
        multiple_exposed,
        judged,
        recommendation,
        reasons,
        warnings,
        sliced,
        runtime_estimate(plan, judged[0], counts),
        tuple(srm_windows or ()),
        dict(cupac or {}),
        tuple(checks),
        verdict,
        tuple(tests[0]) + tuple(tests[1]) if tests else (),
        dict(rule_record or {}),
        planned,
        None if interactions is None else tuple(interactions),
    )


def _interaction_gate(tests: Sequence[Mapping[str, Any]] | None) -> Gate:
    """Flagged interactions with concurrent experiments (a warning: the effect measured here
    depends on another experiment's arm, so it may not hold once that one ships)."""
    if tests is None:
        return Gate("interactions", "n/a", "overlaps no other experiment")
    flagged = [t for t in tests if t["flagged"]]
    if not flagged:
        return Gate("interactions", "pass",
                    f"{len(tests)} overlapping pair test(s), none flagged (Benjamini-Hochberg)")  # fmt: skip
    shown = "; ".join(
        f"{t['first']}'s {t['metric']} depends on {t['second']}'s arm "
        f"(q = {t['qvalue']:.2g}, {t['units']:,} units in both)"
        for t in flagged
    )
    return Gate("interactions", "warn", shown, {"flagged": len(flagged)})


# -- the decision rule ----------------------------------------------------------------------


def _analysis_at(
    plan: ReportPlan, metric: str, arms: Sequence[ArmStats], alpha: float
) -> Analysis | None:
    """``metric`` analysed two-sided at ``alpha``, no correction (the rule's own tests)."""
    m = get_metric(metric)
    try:
        config = AnalysisConfig(
            metric_type=m.type, method=plan.method, alpha=min(alpha, 0.999), correction="none",
            **adjustment_of(plan, m.type, arms),
        )  # fmt: skip
        return analyze(arms, config=config)
    except InvalidInput:
        return None


def _bounds(
    plan: ReportPlan, metric: str, arms: Sequence[ArmStats], higher_is_better: bool,
    alpha: float, scale: str, threshold: float, role: str,
) -> list[Bound]:  # fmt: skip
    """One-sided ``1 − alpha`` bounds of the improvement (the effect in the metric's good
    direction) per treatment: the lower end of the two-sided ``1 − 2 alpha`` interval; and
    whether the metric is significantly worse (two-sided at ``alpha``)."""
    wide = _analysis_at(plan, metric, arms, 2 * alpha)
    narrow = _analysis_at(plan, metric, arms, alpha)
    if wide is None or narrow is None:
        return [Bound(metric, t, None, None, alpha, False, False, scale, threshold, role)
                for t in plan.variants[1:]]  # fmt: skip
    sign = 1.0 if higher_is_better else -1.0
    out = []
    for c, c2 in zip(wide.comparisons, narrow.comparisons, strict=True):
        relative = scale == "relative" and c.rel_effect_size is not None
        if relative:
            est, lo, hi = c.rel_effect_size, c.rel_effect_size_ci_lower, c.rel_effect_size_ci_upper
        else:
            factor = POINTS.get(metric, 1.0)
            est, lo, hi = (
                v * factor for v in (c.effect_size, c.effect_size_ci_lower, c.effect_size_ci_upper)
            )
        worst = lo if higher_is_better else hi
        bound = None if worst is None else sign * worst
        worse = better(c2, higher_is_better, plan.method, alpha, adjusted=False) < 0
        out.append(Bound(metric, c.treatment, sign * est, bound, alpha,
                         bound is not None and bound > threshold, worse,
                         "relative" if relative else "absolute", threshold, role))  # fmt: skip
    return out


def _rule_tests(
    plan: ReportPlan, stats: Mapping[str, Sequence[ArmStats]]
) -> tuple[list[Bound], list[Bound]]:
    """The success tests (one-sided, Bonferroni) and the guardrails' non-inferiority tests."""
    rule = plan.rule
    a_s = rule.success_alpha(len(plan.variants) - 1)
    success = [
        b
        for s in rule.success
        for b in _bounds(
            plan, s.metric, stats[s.metric], s.higher_is_better, a_s, "relative", 0.0, "success"
        )  # fmt: skip
    ]
    guard = [
        b
        for g in rule.guardrails
        for b in _bounds(
            plan,
            g.metric,
            stats[g.metric],
            g.higher_is_better,
            rule.alpha_guardrails,
            g.scale,
            -g.margin,
            "guardrail",
        )  # fmt: skip
    ]
    return success, guard


def _rule_plan(plan: ReportPlan, results: Sequence[MetricResult]) -> dict[str, Any] | None:
    """The units the whole rule needs, from the control arms' observed moments."""
    baselines = {
        r.metric: Baseline(r.metric, r.analysis.arms[0].mean, r.analysis.arms[0].variance ** 0.5)
        for r in results
        if r.analysis is not None
    }
    try:
        rp = plan_rule(plan.rule, baselines, plan.weights, display=POINTS)
    except ValueError as exc:
        return {"error": str(exc)}
    return {
        "units": rp.units,
        "tests_to_pass": rp.tests_to_pass,
        "binding": rp.binding.metric,
        "lines": [
            {
                "metric": x.metric,
                "role": x.role,
                "effect": x.effect,
                "scale": x.scale,
                "alpha": x.alpha,
                "power": x.power,
                "units": x.units,
            }
            for x in rp.lines
        ],  # fmt: skip
    }


def _gates(
    plan: ReportPlan,
    stats: Mapping[str, Sequence[ArmStats]],
    counts: Sequence[int],
    srm: SRMResult | None,
    multiple: int,
    data: HealthData | None,
    planned: Mapping[str, Any] | None,
) -> list[Gate]:
    """Every health gate, one line each, in a fixed order."""
    h = plan.rule.health
    data = data or HealthData()
    if srm is None:
        out = [Gate("SRM", "n/a", "no units yet")]
    elif srm.windows > 1:  # a race re-weighted it: expected units per window of weights
        status = "fail" if srm.pvalue < h.srm_alpha else "pass"
        out = [
            Gate(
                "SRM",
                status,
                f"against the weights in force over {srm.windows} windows: "
                f"p = {srm.pvalue:.3g} (fails below {h.srm_alpha:g})",
                {"pvalue": srm.pvalue},
            )
        ]
    else:
        out = [gates.srm_gate(counts, plan.weights, h)]
    if data.by_day and srm is not None and srm.windows <= 1:
        out.append(gates.srm_by_gate("day", data.by_day, plan.weights, h))
    for dim in h.dimensions:
        if dim in data.by_dimension and (srm is None or srm.windows <= 1):
            out.append(gates.srm_by_gate(dim, data.by_dimension[dim], plan.weights, h))
    out.append(gates.multiple_gate(multiple, counts, h))
    out.append(gates.imbalance_gate(_pre_period(stats), plan.variants, h))
    estimate = None if not planned or "units" not in planned else planned["units"]
    binding = None if estimate is None else planned["binding"]
    out.append(gates.sample_gate(int(sum(counts)), h.min_units, estimate, binding))
    if data.novelty is not None:
        metric, weeks = data.novelty
        out.append(gates.novelty_gate(metric, plan.variants, weeks, h))
    return out


def _pre_period(
    stats: Mapping[str, Sequence[ArmStats]],
) -> dict[str, list[tuple[int, float, float]]]:
    """Each pre-period covariate's ``(n, Σx, Σx²)`` per arm, from the arms' sums."""
    out: dict[str, list[tuple[int, float, float]]] = {}
    for metric, arms in stats.items():
        if not arms or not isinstance(arms[0], ArmStats):
            continue
        if all(a.covariates is not None for a in arms):
            for j, name in enumerate(arms[0].covariates.names):
                if not name.startswith("cupac_"):
                    out.setdefault(name, [(a.n, a.covariates.sum[j], a.covariates.cross[j][j])
                                          for a in arms])  # fmt: skip
        elif all(a.pre_sum is not None and a.pre_sum_sq is not None for a in arms):
            out.setdefault(f"pre_{metric}", [(a.n, a.pre_sum, a.pre_sum_sq) for a in arms])
    return out


def _secondaries_adjusted_jointly(
    plan: ReportPlan, results: list[MetricResult]
) -> list[MetricResult]:
    """With an alpha split the secondary metrics are one family: adjusted across metrics and
    arms together (at the secondary group's alpha, set in their configs)."""
    index = [i for i, r in enumerate(results) if r.role == "secondary" and r.analysis]
    adjusted = adjust_across([results[i].analysis for i in index], plan.correction)
    out = list(results)
    for i, a in zip(index, adjusted, strict=True):
        r = out[i]
        out[i] = MetricResult(r.metric, r.role, r.metric_type, r.higher_is_better, a, r.error)
    return out


def _srm(
    plan: ReportPlan, counts: Sequence[int], windows: Sequence[WeightWindow] | None
) -> SRMResult | None:
    if sum(counts) <= 0:
        return None
    if windows:
        return srm_over_windows([(w.counts, w.weights) for w in windows])
    return srm_test(list(counts), list(plan.weights))


def runtime_estimate(
    plan: ReportPlan, primary: MetricResult, counts: Sequence[int]
) -> dict[str, Any] | None:
    """Units and days needed to detect the planned relative MDE on the primary metric.

    Uses the control's observed mean and per-unit variance (for a ratio, the variance of its
    linearisation, so the mean-metric formula applies) and the observed traffic: units so
    far over the days so far. None without an MDE, data or days.
    """
    if plan.mde is None or primary.analysis is None or plan.days <= 0 or sum(counts) == 0:
        return None
    if primary.metric_type == "quantile":
        return None
    control = primary.analysis.arms[0]
    if control.mean == 0 or control.variance <= 0:
        return None
    kind = "proportion" if primary.metric_type == "proportion" else "mean"
    ratio = plan.weights[1] / plan.weights[0] if len(plan.weights) > 1 else 1.0
    daily = sum(counts) / plan.days
    try:
        need = sample_size(
            kind,
            control.mean,
            plan.mde,
            sd=None if kind == "proportion" else control.variance**0.5,
            relative=True,
            alpha=plan.alpha,
            power=plan.power,
            ratio=ratio,
            arms=len(plan.variants),
            daily_units=daily,
        )
    except InvalidInput:
        return None
    return {
        "metric": primary.metric,
        "rel_mde": plan.mde,
        "power": plan.power,
        "units_needed": need.n_total,
        "units_so_far": int(sum(counts)),
        "units_per_day": daily,
        "days_needed": need.days,
        "days_so_far": plan.days,
        "days_left": max(0, (need.days or 0) - plan.days),
    }


def _recommend(
    plan: ReportPlan, results: Sequence[MetricResult], srm: SRMResult | None
) -> tuple[str, tuple[str, ...]]:
    if srm is not None and srm.flagged:
        return "do not ship", (
            f"sample ratio mismatch (p = {srm.pvalue:.2g} < 0.001): the split is broken, the results cannot be trusted",
        )
    primary = results[0]
    if primary.analysis is None:
        return "no decision", (
            f"primary metric {primary.metric} cannot be analysed: {primary.error}",
        )
    hurt: dict[str, list[str]] = {}
    for r in results:
        for t in r.hurt:
            hurt.setdefault(t, []).append(r.metric)
    winners = [c for c in primary.analysis.comparisons if c.treatment in primary.wins]
    if not winners:
        return "do not ship", (f"no treatment significantly improved {primary.metric}",)
    clean = [c for c in winners if c.treatment not in hurt]
    blocked = tuple(
        f"{t} improved {primary.metric} but significantly hurt guardrail(s) {', '.join(hurt[t])}"
        for t in (c.treatment for c in winners)
        if t in hurt
    )
    if not clean:
        return "do not ship", blocked
    best = max(clean, key=lambda c: abs(c.rel_effect_size or 0.0))
    return f"ship {best.treatment}", (
        f"{best.treatment} improved {primary.metric}{_evidence(plan, best, adjusted=True)} "
        "with no guardrail hurt",
        *blocked,
    )


def _evidence(plan: ReportPlan, c: Comparison, *, adjusted: bool) -> str:
    """`` (+12.5%, relative p adj. = 0.0098)``: the effect and the p-value that decided."""
    if plan.method == "bayesian" and c.chance_to_win is not None:
        lift = "" if c.rel_effect_size is None else f"{c.rel_effect_size:+.2%}, "
        return f" ({lift}chance to win {c.chance_to_win:.1%})"
    p = decision_pvalue(c, adjusted)
    label = f"{scale_of(c)} p{' adj.' if adjusted else ''}"
    if scale_of(c) == "relative":
        return f" ({c.rel_effect_size:+.2%}, {label} = {p:.2g})"
    return f" ({c.effect_size:+.4g}, {label} = {p:.2g})"


def _warnings(
    plan: ReportPlan, srm: SRMResult | None, multiple: int, results: Sequence[MetricResult]
) -> tuple[str, ...]:
    out = []
    if srm is not None and srm.flagged:
        split = (
            "the planned split"
            if srm.windows == 1
            else (f"the splits in force over time ({srm.windows} windows of weights)")
        )
        out.append(f"SRM: unit counts do not match {split} (p = {srm.pvalue:.2g})")
    if multiple:
        out.append(f"{multiple} unit(s) were exposed to more than one variant and are left out")
    for r in results:
        if r.error:
            out.append(f"{r.metric}: not analysed ({r.error})")
        for t in r.hurt:
            c = next(c for c in r.analysis.comparisons if c.treatment == t)
            out.append(
                f"guardrail {r.metric} significantly worse in {t}"
                f"{_evidence(plan, c, adjusted=False)}"
            )
    return tuple(out)


#: Slice dimensions that partition the units (each unit in one slice): the strata of a
#: post-stratified estimate. Order-column slices (category, ...) split units' orders instead.
STRATA_DIMENSIONS = ("buyer_type",)


def _slices(
    plan: ReportPlan, slices: Mapping[str, Mapping[str, Sequence[ArmStats]]], slice_by: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {"by": slice_by, "metrics": {}, "warning": None}
    stratified: dict[str, Any] = {}
    for metric, per_slice in slices.items():
        m = get_metric(metric)
        cfg = AnalysisConfig(
            metric_type=m.type,
            method=plan.method,
            alpha=plan.alpha,
            cuped=plan.cuped and m.type != "quantile",
            correction=plan.correction,
        )
        try:
            rep = analyze_slices(dict(per_slice), config=cfg)
        except InvalidInput as exc:
            out["metrics"][metric] = {"error": exc.message}
            continue
        out["metrics"][metric] = {k: a.to_dict() for k, a in rep.analyses.items()}
        out["warning"] = out["warning"] or rep.warning
        if slice_by in STRATA_DIMENSIONS:
            stratified[metric] = _post_stratified(dict(per_slice), cfg)
    if stratified:
        out["post_stratified"] = stratified
    return out


def _post_stratified(strata: dict[str, Sequence[ArmStats]], cfg: AnalysisConfig) -> dict:
    try:
        return analyze_stratified(strata, config=cfg).to_dict()
    except InvalidInput as exc:
        return {"error": exc.message}


def cupac_note(report: Mapping[str, Any]) -> str | None:
    """One line on CUPAC's models for people (None without CUPAC): what each predicts, its
    out-of-fold R², and what it learned from. The CLI and the HTML report print it."""
    if not report.get("cupac"):
        return None
    models = report["cupac"].get("models") or {}
    if not models:
        return "CUPAC: too few units to fit its models; the regression ran without predictions"
    # a model no better than the mean scores a little below 0 out of fold: "0.0%", not "-0.0%"
    shown = {o: f"{m['r2']:.1%}".replace("-0.0%", "0.0%") for o, m in models.items()}
    parts = ", ".join(f"{o} (R² {r2})" for o, r2 in shown.items())
    first = next(iter(models.values()))
    return (
        f"CUPAC: cross-fitted predictions of {parts} join the covariates; learned from "
        f"{first['training_units']:,} units in {first['folds']} folds (R² out of fold)"
    )


SCALE_NOTE = (
    "Verdicts use the relative effect (treatment / control - 1): its p-value (delta method) "
    "and its interval; the absolute p-value is shown for reference. A comparison whose control "
    "is 0 has no relative effect and is decided on the absolute scale."
)


def _analysis_dict(m: MetricResult) -> dict[str, Any]:
    """The analysis as JSON, each comparison with the scale and p-value its verdict used."""
    out = m.analysis.to_dict()
    adjusted = m.role != "guardrail"
    for row, c in zip(out["comparisons"], m.analysis.comparisons, strict=True):
        row["scale"] = scale_of(c)
        row["decision_pvalue"] = decision_pvalue(c, adjusted)
    return out


def _arms(r: Report) -> list[dict[str, Any]]:
    """Each arm's units, planned weight and the units the sample-ratio check expected (for a
    race, the weights in force over time: ``planned_weight`` is then the expected share)."""
    p = r.plan
    expected = r.srm.expected if r.srm is not None else (None,) * len(p.variants)
    total = sum(r.counts)
    out = []
    for v, n, w, e in zip(p.variants, r.counts, p.weights, expected, strict=True):
        weight = e / total if r.srm_windows and e is not None and total else w
        out.append({"name": v, "units": n, "planned_weight": weight, "expected_units": e})
    return out


def report_dict(r: Report) -> dict[str, Any]:
    """The report as JSON-ready data, the one form every surface (CLI, dashboard, evidence) renders."""
    p = r.plan
    return {
        "experiment": p.experiment,
        "hypothesis": p.hypothesis,
        "window": {"start": p.window[0], "end": p.window[1]},
        "method": p.method,
        "alpha": p.alpha,
        "correction": p.correction,
        "cuped": p.cuped,
        "cupac": {"models": dict(r.cupac)} if p.cupac else None,
        "alpha_split": (
            {g: p.alpha_of(role) for role, g in _GROUPS.items() if g in dict(p.alpha_split)}
            if p.alpha_split
            else None
        ),
        "arms": _arms(r),
        "srm_pvalue": None if r.srm is None else r.srm.pvalue,
        "srm_flagged": bool(r.srm and r.srm.flagged),
        "srm_windows": [
            {
                "from": None if w.start is None else w.start.isoformat(),
                "weights": list(w.weights),
                "units": list(w.counts),
            }
            for w in r.srm_windows
        ],
        "multiple_exposed": r.multiple_exposed,
        "scale": SCALE,
        "scale_note": SCALE_NOTE,
        "recommendation": r.recommendation,
        "reasons": list(r.reasons),
        "warnings": list(r.warnings),
        "metrics": [
            {
                "metric": m.metric,
                "role": m.role,
                "metric_type": m.metric_type,
                "higher_is_better": m.higher_is_better,
                "error": m.error,
                "guardrail_hurt_in": list(m.hurt),
                "significant_improvement_in": list(m.wins),
                **({} if m.analysis is None else _analysis_dict(m)),
            }
            for m in r.metrics
        ],
        "slices": dict(r.slices),
        "runtime": None if r.runtime is None else dict(r.runtime),
        **rule_sections(r),
    }


def rule_sections(r: Report) -> dict[str, Any]:
    """The rule, its health gates, its tests and its verdict as JSON (empty without a rule)."""
    if r.plan.rule is None:
        return {}
    rule = r.plan.rule
    return {
        "rule": {**rule.to_dict(), "version": rule.version, **dict(r.rule_record)},
        "health": [
            {"gate": g.name, "status": g.status, "detail": g.detail, "data": dict(g.data)}
            for g in r.health
        ],
        "rule_tests": [
            {
                "metric": b.metric,
                "treatment": b.treatment,
                "role": b.role,
                "scale": b.scale,
                "improvement": b.estimate,
                "bound": b.bound,
                "threshold": b.threshold,
                "alpha": b.alpha,
                "passed": b.passed,
                "worse": b.worse,
            }
            for b in r.tests
        ],  # fmt: skip
        "rule_plan": None if r.rule_plan is None else dict(r.rule_plan),
        "interactions": None if r.interactions is None else [dict(t) for t in r.interactions],
        "verdict": {
            "verdict": r.verdict.verdict,
            "treatment": r.verdict.treatment,
            "reasons": list(r.verdict.reasons),
        },
    }
