"""Size an experiment for its whole decision rule from the warehouse's recent history.

The baseline of every metric the rule tests is read as an experiment would compute it: the
buyers active in the baseline window (four weeks up to the last order by default), each
from its first activity (:func:`tianping.experiments.aa.active_units`), one grouped query.
The expected traffic is how many new buyers that window brought day by day, times the
experiment's share of them (traffic × its layer range).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tianping.errors import InvalidInput, UsageError
from tianping.experiments import analysis as an
from tianping.experiments.aa import active_units, default_window
from tianping.experiments.assignment import BUCKETS
from tianping.experiments.rule import Baseline, DecisionRule, RulePlan, plan_rule
from tianping.experiments.schemas import ExperimentSpec
from tianping.experiments.unit_metrics import get_metric
from tianping.report.figures import POINTS
from tianping.stats import arm_moments


@dataclass(frozen=True, slots=True)
class ExperimentPlan:
    """The rule's sample, the baselines it used and how long the traffic takes to bring it."""

    experiment: str
    rule_version: str
    plan: RulePlan
    baselines: dict[str, Baseline]
    window: tuple[str, str]
    share: float
    daily_units: float
    days: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``tianping experiment plan --format json``)."""
        return {
            "experiment": self.experiment,
            "rule_version": self.rule_version,
            "units": self.plan.units,
            "tests_to_pass": self.plan.tests_to_pass,
            "power": self.plan.power,
            "binding": self.plan.binding.metric,
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
                for x in self.plan.lines
            ],  # fmt: skip
            "baselines": {m: {"mean": b.mean, "sd": b.sd} for m, b in self.baselines.items()},
            "baseline_window": {"start": self.window[0], "end": self.window[1]},
            "traffic_share": self.share,
            "units_per_day": self.daily_units,
            "days": self.days,
        }


def rule_metrics(rule: DecisionRule) -> tuple[str, ...]:
    """The metrics the rule tests, each once."""
    names = [s.metric for s in rule.success] + [g.metric for g in rule.guardrails]
    return tuple(dict.fromkeys(names))


def baselines(wh: Any, metrics: tuple[str, ...], window: an.AnalysisWindow) -> dict[str, Baseline]:
    """Each metric's per-unit mean and standard deviation over the active buyers of
    ``window`` (one grouped query).

    Raises:
        InvalidInput: a quantile metric (sized from events, not units) is among them.
        UsageError: no active buyer in the window.
    """
    for m in metrics:
        if get_metric(m).type == "quantile":
            raise InvalidInput(
                f"{m} is a quantile of orders; the plan sizes per-unit metrics only",
                field="rule",
            )
    q = an.Query("__plan__", window, metrics, cuped=False)
    rows = an.unit_table(wh, q, units=active_units(wh, window))
    records = wh.execute(an._grouped(q, rows)).to_dict("records")
    if not records or not records[0].get("n"):
        raise UsageError("no active buyers in the baseline window to size the plan from",
                         field="window")  # fmt: skip
    agg = an.ArmAggregates(
        tuple({k.replace("__x__", "*"): an._number(v) for k, v in r.items()} for r in records),
        {},
    )
    out = {}
    for m in metrics:
        arm = an.arm_stats(agg, m, ("all",), cuped=False)[0]
        mom = arm_moments(arm, get_metric(m).type)
        out[m] = Baseline(m, mom.mean, max(mom.variance, 0.0) ** 0.5)
    return out


def new_units_by_day(wh: Any, window: an.AnalysisWindow) -> list[int]:
    """Buyers first active on each day of ``window`` (day 0 first)."""
    units = active_units(wh, window)
    day = units.first_exposed.date()
    frame = wh.execute(units.group_by(day=day).agg(n=units.count()))
    first = window.start.date()
    days = (window.end - window.start).days
    out = [0] * days
    for r in frame.to_dict("records"):
        d = r["day"]
        d = d.date() if isinstance(d, datetime) else d
        i = (d - first).days
        if 0 <= i < days:
            out[i] += int(r["n"])
    return out


def days_to_reach(units: int, new_by_day: list[int], share: float) -> int | None:
    """Days until the cumulative new buyers × ``share`` reach ``units``; past the window's
    end at the rate of its last week. None when no buyer arrives."""
    total = 0.0
    for i, n in enumerate(new_by_day):
        total += n * share
        if total >= units:
            return i + 1
    rate = sum(new_by_day[-7:]) / max(1, len(new_by_day[-7:])) * share
    if rate <= 0:
        return None
    return len(new_by_day) + math.ceil((units - total) / rate)


def plan_experiment(
    spec: ExperimentSpec,
    rule: DecisionRule,
    wh: Any,
    *,
    first: date | None = None,
    last: date | None = None,
    daily_units: float | None = None,
) -> ExperimentPlan:
    """Size ``spec`` for ``rule`` on the warehouse's history.

    Args:
        spec: the experiment (its arms' weights, traffic and layer range give its share).
        rule: its decision rule.
        wh: the warehouse.
        first: first day of the baseline window (default: 27 days before ``last``).
        last: last day (default: the last order day).
        daily_units: expected units per day, instead of the history's new buyers.

    Raises:
        InvalidInput: a quantile metric in the rule, a zero baseline on a relative scale,
            or a non-positive ``daily_units``.
        UsageError: no orders or no active buyers to take a baseline from.
    """
    if daily_units is not None and not daily_units > 0:
        raise InvalidInput("--daily-units must be a positive number", field="daily_units")
    first, last = default_window(wh, first, last)
    window = an.AnalysisWindow.from_dates(first, last)
    base = baselines(wh, rule_metrics(rule), window)
    try:
        sized = plan_rule(rule, base, spec.to_config().weights, display=POINTS)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="rule") from None
    share = spec.traffic * (spec.layer_buckets[1] - spec.layer_buckets[0]) / BUCKETS
    if daily_units is not None:
        days = math.ceil(sized.units / daily_units)
        rate = daily_units
    else:
        new = new_units_by_day(wh, window)
        days = days_to_reach(sized.units, new, share)
        rate = sum(new) / len(new) * share if new else 0.0
    return ExperimentPlan(spec.name, rule.version, sized, base, (first.isoformat(), last.isoformat()),
                          share, rate, days)  # fmt: skip
