"""Experiment definitions: create, start, stop, ship, read, export and the SDK snapshot.

Every change is queued for the audit log (``experiment.created|started|stopped|drafted|
shipped``, subject ``experiment:NAME``). Never commits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import yaml
from sqlalchemy.orm import Session

from tianping import yamldoc
from tianping.audit import log as audit
from tianping.clock import Clock, SystemClock
from tianping.errors import Conflict, InvalidInput, NoData, NotFound
from tianping.experiments import repository
from tianping.experiments.assignment import Holdout, Layer, Snapshot, check_layer_ranges
from tianping.experiments.models import Experiment
from tianping.experiments.rule import DecisionRule
from tianping.experiments.schemas import ExperimentSpec, parse_spec, rule_spec_of

#: The audit action of each status an experiment is moved to.
_MOVED = {"draft": "experiment.drafted", "running": "experiment.started",
          "stopped": "experiment.stopped"}  # fmt: skip

_SPEC_COLUMNS = (
    "name",
    "hypothesis",
    "unit",
    "layer",
    "traffic",
    "forced",
    "status",
    "primary_metric",
    "secondary_metrics",
    "mde",
    "alpha",
    "power",
    "method",
    "correction",
    "alpha_split",
    "cuped",
    "cupac",
    "winsorize",
    "start_date",
    "end_date",
)


#: An experiment's weights over time: ``(from, weights)`` windows, oldest first, ``from`` None
#: for the first (weights in the experiment's variant order).
WeightSchedule = list[tuple[datetime | None, tuple[float, ...]]]


class WeightHistory(Protocol):
    """Who re-weights running experiments (a horse race), asked for one experiment's windows
    of weights; None when nothing re-weights it."""

    def __call__(self, experiment: str, *, session: Session) -> WeightSchedule | None:
        """``experiment``'s windows of weights, or None when nothing re-weights it."""


def create(spec: ExperimentSpec, *, session: Session, clock: Clock | None = None) -> Experiment:
    """Store a new experiment.

    Raises:
        Conflict: the name is taken, or it would overlap a running experiment of its layer.
    """
    if repository.get_by_name(spec.name, session=session) is not None:
        raise Conflict(f"experiment {spec.name!r} already exists", field="name")
    now = (clock or SystemClock()).now()
    row = Experiment(created_at=now, updated_at=now, **_columns(spec))
    if row.status != "draft":  # created already started: the rule it starts with is frozen
        row.rule_frozen_at = now
    if row.status == "running":
        _check_layer(row, session=session)
    session.add(row)
    session.flush()
    audit.later("experiment.created", subject=_subject(row.name), now=now, session=session,
                detail={"status": row.status, "variants": row.variants, "traffic": row.traffic,
                        "layer": row.layer})  # fmt: skip
    return row


def _subject(name: str) -> str:
    return f"experiment:{name}"


def get_or_raise(name: str, *, session: Session) -> Experiment:
    """The experiment called ``name``.

    Raises:
        NotFound: no experiment has that name.
    """
    row = repository.get_by_name(name, session=session)
    if row is None:
        raise NotFound(f"no experiment named {name!r}", field="name")
    return row


def list_all(*, session: Session, status: str | None = None) -> Sequence[Experiment]:
    """All experiments by name, optionally only those with ``status``."""
    return repository.list_experiments(session=session, status=status)


def set_status(
    name: str, status: str, *, session: Session, clock: Clock | None = None
) -> Experiment:
    """Move an experiment to ``draft``, ``running`` or ``stopped``.

    Raises:
        InvalidInput: unknown status.
        Conflict: starting it would overlap a running experiment of its layer, or it was
            shipped (a shipped experiment stays stopped).
    """
    if status not in ("draft", "running", "stopped"):
        raise InvalidInput(
            f"unknown status {status!r}; use draft, running or stopped", field="status"
        )
    row = get_or_raise(name, session=session)
    if row.shipped_variant is not None and status != "stopped":
        raise Conflict(
            f"experiment {name!r} was shipped ({row.shipped_variant}); it cannot run again",
            field="status",
        )
    if status == "running":
        _check_layer(row, session=session)
    before, row.status = row.status, status
    row.updated_at = (clock or SystemClock()).now()
    frozen = status == "running" and row.rule_frozen_at is None
    if frozen:
        row.rule = decision_rule_of(row).to_dict()
        row.rule_frozen_at = row.updated_at
    session.flush()
    if before != status:
        detail = {"from": before, "to": status}
        if frozen:
            detail["rule_version"] = decision_rule_of(row).version
        audit.later(_MOVED[status], subject=_subject(name), now=row.updated_at, session=session,
                    detail=detail)  # fmt: skip
    return row


def decision_rule_of(row: Experiment) -> DecisionRule:
    """The rule a stored experiment decides by (its definition's, for rows stored before
    experiments carried one)."""
    if row.rule:
        return DecisionRule.from_dict(row.rule)
    return spec_of(row).decision_rule()


def change_rule(
    name: str,
    rule: Any,
    *,
    reason: str,
    session: Session,
    clock: Clock | None = None,
    source: str = "rule",
) -> Experiment:
    """Replace an experiment's decision rule with ``rule`` (the YAML ``rule:`` mapping).

    Before the first start this is an ordinary edit. After it the rule is frozen: a change
    needs a reason, is kept in ``rule_changes`` (shown on every report) and audited as
    ``experiment.rule_changed`` with both versions.

    Raises:
        NotFound: no such experiment.
        InvalidInput: the rule is invalid, or a frozen rule is changed without a reason.
        Conflict: the experiment was shipped.
    """
    row = get_or_raise(name, session=session)
    if row.shipped_variant is not None:
        raise Conflict(f"experiment {name!r} was shipped; its rule is history", field="rule")
    reason = (reason or "").strip()
    if row.rule_frozen_at is not None and not reason:
        raise InvalidInput(
            f"the rule of {name!r} was frozen when it started "
            f"({row.rule_frozen_at:%Y-%m-%d %H:%M} UTC); give the reason for changing it",
            field="reason",
        )
    data = spec_of(row).model_dump(mode="json")
    data.pop("guardrails")  # the new rule's guardrails (or the old ones) decide
    data["rule"] = rule
    if not (isinstance(rule, dict) and rule.get("guardrails") is not None):
        data["guardrails"] = row.guardrails
    spec = parse_spec(data, source=source)
    before, after = decision_rule_of(row), spec.decision_rule()
    now = (clock or SystemClock()).now()
    row.rule, row.updated_at = after.to_dict(), now
    row.guardrails = [g.model_dump() for g in spec.guardrails]
    action = "experiment.rule_set"
    if row.rule_frozen_at is not None:
        action = "experiment.rule_changed"
        row.rule_changes = [*(row.rule_changes or []), {
            "at": now.isoformat(), "reason": reason, "before": before.version,
            "after": after.version,
        }]  # fmt: skip
    session.flush()
    audit.later(action, subject=_subject(name), now=now, session=session,
                detail={"before": before.version, "after": after.version,
                        "reason": reason or None})  # fmt: skip
    return row


def rule_record(row: Experiment) -> dict[str, Any]:
    """When the rule was frozen and each change since (what the reports show)."""
    return {
        "frozen_at": None if row.rule_frozen_at is None else row.rule_frozen_at.isoformat(),
        "changes": list(row.rule_changes or []),
    }


def ship(
    name: str,
    variant: str,
    *,
    session: Session,
    clock: Clock | None = None,
    decision_id: int | None = None,
) -> Experiment:
    """Ship ``variant``: stop the experiment and serve that variant to every unit from now on.

    The experiment's row is locked first, so two ships of one experiment cannot both pass.
    Its analysis stays readable: the window ends on the ship day (an earlier end date is
    kept), and the shipped experiment reports no more exposures.

    Raises:
        NotFound: no such experiment.
        InvalidInput: it has no such variant.
        Conflict: it is a draft (it never ran) or was already shipped.
    """
    row = repository.get_by_name(name, session=session, lock=True)
    if row is None:
        raise NotFound(f"no experiment named {name!r}", field="name")
    check_shippable(row, variant)
    now = (clock or SystemClock()).now()
    before = row.status
    row.status, row.shipped_variant, row.shipped_at, row.updated_at = "stopped", variant, now, now
    row.end_date = _end_on_ship(row, now)
    session.flush()
    audit.later("experiment.shipped", subject=_subject(name), now=now, session=session,
                detail={"variant": variant, "from": before, "end_date": row.end_date,
                        "decision": decision_id})  # fmt: skip
    return row


def check_shippable(row: Experiment, variant: str) -> None:
    """Refuse to ship a variant the experiment lacks, a draft, or a shipped experiment.

    Raises:
        NotFound: no such variant.
        Conflict: a draft or already shipped.
    """
    variants = [v["name"] for v in row.variants]
    if variant not in variants:
        raise NotFound(
            f"experiment {row.name!r} has no variant {variant!r}; variants: {', '.join(variants)}",
            field="variant",
        )
    if row.shipped_variant is not None:
        raise Conflict(
            f"experiment {row.name!r} was already shipped ({row.shipped_variant}) at "
            f"{row.shipped_at:%Y-%m-%d %H:%M} UTC",
            field="name",
        )
    if row.status == "draft":
        raise Conflict(f"experiment {row.name!r} is a draft: it never ran", field="status")


def _end_on_ship(row: Experiment, now: datetime):
    day = now.astimezone(UTC).date()
    if row.start_date is None or day < row.start_date:
        return row.end_date
    return day if row.end_date is None else min(row.end_date, day)


def spec_of(row: Experiment) -> ExperimentSpec:
    """The definition of a stored experiment."""
    data: dict[str, Any] = {c: getattr(row, c) for c in _SPEC_COLUMNS}
    data.update(
        salt=row.salt,
        layer_buckets=(row.layer_start, row.layer_end),
        variants=row.variants,
        guardrails=row.guardrails,
        rule=rule_spec_of(DecisionRule.from_dict(row.rule)) if row.rule else None,
    )
    return ExperimentSpec.model_validate(data)


def snapshot(*, session: Session, holdout: Holdout | None = None) -> Snapshot:
    """The SDK snapshot of every running and every shipped experiment (a layer's salt is its
    name); a shipped one serves its shipped variant to every unit outside the holdout."""
    configs = [config_of(row) for row in repository.served(session=session)]
    layers = sorted({c.layer for c in configs if c.layer is not None})
    return Snapshot(tuple(configs), tuple(Layer(name, name) for name in layers), holdout)


def config_of(row: Experiment):
    """The assignment config of a stored experiment (with its shipped variant, if any)."""
    return replace(spec_of(row).to_config(), shipped=row.shipped_variant)


def read_yaml(text: str, *, source: str) -> Any:
    """The YAML document in ``text``; InvalidInput naming ``source:LINE`` when it is not YAML."""
    return yamldoc.read(text, source=source, strict=True)


def spec_yaml(spec: Any) -> str:
    """A definition (experiment or race spec) as YAML that its parser reads back equal."""
    data = spec.model_dump(mode="json")
    data["layer_buckets"] = list(spec.layer_buckets)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def load_yaml(text: str, *, source: str = "experiment") -> ExperimentSpec:
    """Parse and validate a YAML definition.

    Raises:
        InvalidInput: not YAML, or not a valid definition.
    """
    return parse_spec(read_yaml(text, source=source), source=source, text=text)


def dump_yaml(spec: ExperimentSpec) -> str:
    """The definition as YAML that :func:`load_yaml` reads back to an equal spec."""
    return spec_yaml(spec)


def _columns(spec: ExperimentSpec) -> dict[str, Any]:
    data = {c: getattr(spec, c) for c in _SPEC_COLUMNS}
    data.update(
        salt=spec.salt or spec.name,
        layer_start=spec.layer_buckets[0],
        layer_end=spec.layer_buckets[1],
        variants=[v.model_dump() for v in spec.variants],
        guardrails=[g.model_dump() for g in spec.guardrails],
        rule=spec.decision_rule().to_dict(),
        rule_changes=[],
    )
    return data


def _check_layer(row: Experiment, *, session: Session) -> None:
    if row.layer is None:
        return
    others = [
        r for r in repository.running_in_layer(row.layer, session=session) if r.name != row.name
    ]
    try:
        check_layer_ranges([spec_of(r).to_config() for r in [*others, row]])
    except InvalidInput as exc:
        raise Conflict(exc.message, field="layer_buckets") from None


def analysis_window(spec: ExperimentSpec, *, clock: Clock | None = None):
    """``[start_date, end_date]`` of the experiment; a missing end date means today (UTC).

    Raises:
        InvalidInput: the experiment has no start date.
    """
    from tianping.experiments.analysis import AnalysisWindow

    if spec.start_date is None:
        raise InvalidInput(
            f"experiment {spec.name!r} has no start_date to analyse from", field="start_date"
        )
    end = spec.end_date or (clock or SystemClock()).now().date()
    return AnalysisWindow.from_dates(spec.start_date, end)


def _days_observed(window, clock: Clock) -> int:
    """Days of the window that have passed (partial days count as one)."""
    now = clock.now().astimezone(UTC).replace(tzinfo=None)
    elapsed = (min(window.end, now) - window.start).total_seconds()
    return max(0, math.ceil(elapsed / 86400))


def _need_exposures(spec: ExperimentSpec, window, agg) -> None:
    """Stop with one line when nobody was exposed in the window: there is nothing to analyse."""
    if not any(r.get("n") for r in agg.rows):
        last = (window.end - timedelta(microseconds=1)).date()
        raise NoData(
            f"experiment {spec.name!r} has no exposures from {window.start.date()} to {last}: "
            "nothing to analyse yet (load them with `tianping ingest exposures FILE`, or "
            "`tianping exposures load` for those the API received)",
            field="exposures",
        )


def analyze_experiment(
    name: str,
    *,
    session: Session,
    warehouse: Any,
    slice_by: str | None = None,
    clock: Clock | None = None,
    weight_history: WeightHistory | None = None,
):
    """Analyse a stored experiment on the warehouse: one grouped query, then the statistics.

    Args:
        name: the experiment.
        session: the store session (read only).
        warehouse: a :class:`tianping.warehouse.Warehouse`.
        slice_by: also analyse the primary metric per value of this dimension
            (``buyer_type`` or an orders column such as ``category``).
        clock: gives "today" when the experiment has no end date.
        weight_history: who re-weights experiments while they run, asked for this one's
            windows of weights (the horse races: ``tianping.races.service.weight_schedule``);
            the sample-ratio check then expects each window's units at that window's
            weights. None: the split is the one the experiment's definition fixes. Every
            surface (CLI, dashboard, notebook, decisions' evidence, demo) passes the races'.

    Returns:
        A :class:`tianping.experiments.report.Report`.
    """
    from dataclasses import replace

    from tianping.experiments import analysis as an
    from tianping.experiments.report import ReportPlan, build_report

    row = get_or_raise(name, session=session)
    spec = spec_of(row)
    clock = clock or SystemClock()
    window = analysis_window(spec, clock=clock)
    query = an.Query(
        name, window, spec.metrics, cuped=spec.cuped, winsorize=spec.winsorize, cupac=spec.cupac
    )
    agg = an.fetch_aggregates(warehouse, query)
    _need_exposures(spec, window, agg)
    variants = tuple(v.name for v in spec.variants)
    stats = {m: an.arm_stats(agg, m, variants, cuped=spec.cuped) for m in spec.metrics}
    slices = None
    if slice_by is not None:
        sliced = an.fetch_aggregates(
            warehouse, replace(query, metrics=(spec.primary_metric,), slice_by=slice_by)
        )
        slices = {
            spec.primary_metric: {
                s: an.arm_stats(
                    sliced, spec.primary_metric, variants, cuped=spec.cuped, slice_value=s
                )
                for s in an.slices_of(sliced)
            }
        }
    plan = ReportPlan(
        experiment=spec.name,
        variants=variants,
        weights=spec.to_config().weights,
        primary=spec.primary_metric,
        secondary=tuple(spec.secondary_metrics),
        guardrails=tuple((g.metric, bool(g.higher_is_better)) for g in spec.guardrails),
        method=spec.method,
        alpha=spec.alpha,
        correction=spec.correction,
        alpha_split=tuple((spec.alpha_split or {}).items()),
        cuped=spec.cuped,
        cupac=spec.cupac,
        hypothesis=spec.hypothesis,
        window=(
            window.start.date().isoformat(),
            (window.end.date() - timedelta(days=1)).isoformat(),
        ),
        mde=spec.mde,
        power=spec.power,
        days=_days_observed(window, clock),
        rule=decision_rule_of(row),
    )
    counts = an.observed_counts(agg, variants)
    return build_report(
        plan,
        stats,
        counts,
        multiple_exposed=an.multiple_exposed(agg),
        cupac=an.cupac_summary(agg),
        slices=slices,
        slice_by=slice_by,
        srm_windows=_srm_windows(
            name, query, variants, weight_history, session=session, warehouse=warehouse
        ),
        health=health_data(warehouse, query, plan.rule, spec.primary_metric, variants),
        rule_record=rule_record(row),
        interactions=_interactions_of(name, session=session, warehouse=warehouse, clock=clock),
    )


def _followed(metric: str) -> str:
    """The per-unit metric an interaction test follows: the metric, or GMV per unit for a
    ratio or quantile metric."""
    from tianping.experiments.unit_metrics import METRICS

    return "gmv" if METRICS[metric].type in ("ratio", "quantile") else metric


def _interactions_of(name: str, *, session: Session, warehouse: Any, clock: Clock):
    """The interaction tests of the pairs ``name`` is in (the false-discovery control is over
    every pair, so every pair is tested); None when it overlaps no other experiment."""
    from tianping.experiments.interactions import involving

    tests = interactions(session=session, warehouse=warehouse, clock=clock)
    mine = involving(tests, name)
    return mine or None


def health_data(warehouse: Any, query, rule: DecisionRule, metric: str, variants):
    """The warehouse's part of the health gates: units by first-exposure day and by each
    declared dimension, and the novelty sums of ``metric`` (a few small grouped queries)."""
    from tianping.experiments import analysis as an
    from tianping.experiments.report import HealthData

    return HealthData(
        by_day=an.exposure_counts(warehouse, query, "day", variants),
        by_dimension={
            d: an.exposure_counts(warehouse, query, d, variants) for d in rule.health.dimensions
        },
        novelty=an.novelty_sums(warehouse, query, metric, variants),
    )


def _srm_windows(
    name: str, query, variants, weight_history: WeightHistory | None, *, session: Session,
    warehouse: Any,
):  # fmt: skip
    """The units of each window of weights, when a race re-weighted the experiment while it
    ran (the sample-ratio check then expects each window's units at that window's weights);
    None for a fixed split."""
    from tianping.experiments import analysis as an
    from tianping.experiments.report import WeightWindow

    schedule = None if weight_history is None else weight_history(name, session=session)
    if schedule is None or len(schedule) < 2:
        return None
    starts = [t.astimezone(UTC).replace(tzinfo=None) for t, _ in schedule[1:]]
    counts = an.window_counts(warehouse, query, starts, variants)
    return tuple(
        WeightWindow(start, weights, tuple(c))
        for (start, weights), c in zip(schedule, counts, strict=True)
    )


def plan(
    name: str,
    *,
    session: Session,
    warehouse: Any,
    first=None,
    last=None,
    daily_units: float | None = None,
):
    """Size a stored experiment for its whole decision rule
    (:func:`tianping.experiments.planning.plan_experiment`)."""
    from tianping.experiments.planning import plan_experiment

    row = get_or_raise(name, session=session)
    return plan_experiment(spec_of(row), decision_rule_of(row), warehouse, first=first,
                           last=last, daily_units=daily_units)  # fmt: skip


def interactions(
    *, session: Session, warehouse: Any, fdr: float = 0.05, clock: Clock | None = None
):
    """Every pair of experiments that overlap in time and units, each one's primary metric
    tested for an interaction with the other's arm (once when both follow the same metric:
    the test is then symmetric); Benjamini–Hochberg across all of them
    (:mod:`tianping.experiments.interactions`).

    Raises:
        InvalidInput: ``fdr`` not in (0, 1).
    """
    from tianping.experiments import analysis as an
    from tianping.experiments.interactions import Cell, pair_test, screen

    if not 0 < fdr < 1:
        raise InvalidInput("fdr must be between 0 and 1, e.g. 0.05", field="fdr")
    clock = clock or SystemClock()
    specs = [spec_of(r) for r in repository.list_experiments(session=session)]
    specs = [s for s in specs if s.start_date is not None and s.status != "draft"]
    windows = {s.name: analysis_window(s, clock=clock) for s in specs}
    tests = []
    for a in specs:
        for b in specs:
            wa, wb = windows[a.name], windows[b.name]
            if a.name == b.name or wa.end <= wb.start or wb.end <= wa.start:
                continue
            metric, other = _followed(a.primary_metric), _followed(b.primary_metric)
            if metric == other and b.name < a.name:
                continue  # the same outcome: the difference in differences is symmetric
            query = an.Query(a.name, wa, (metric,), cuped=False)
            cells = [Cell(*c) for c in an.interaction_cells(warehouse, query, b.name, metric)]
            if sum(c.n for c in cells) < 2:
                continue
            arms_a = [v.name for v in a.variants]
            arms_b = [v.name for v in b.variants]
            t = pair_test(a.name, b.name, metric, cells, arms_a, arms_b)
            if t is not None:
                tests.append(t)
    return screen(tests, fdr)
