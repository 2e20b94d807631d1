"""Evidence by reference: read a report from its owning domain now, to be frozen.

A reference is ``kind:name``:

- ``metric:NAME`` or ``metric:NAME@GRAIN`` — the metric's history (warehouse);
- ``experiment:NAME`` — the experiment's analysis report (store + warehouse);
- ``race:NAME`` — the horse race's report (store);
- ``goal:NAME`` — the KPI goal with every revision (store);
- ``policy-replay:POLICY@START..END`` — the refund policy replayed over past requests (warehouse).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from tianping.errors import InvalidInput, UsageError
from tianping.inputs import BLANKS

KINDS = ("metric", "experiment", "race", "goal", "policy-replay")
MAX_REF = 480


def split_ref(ref: str) -> tuple[str, str]:
    """``"race:promo"`` → ``("race", "promo")``.

    Raises:
        InvalidInput: no known kind or an empty name.
    """
    kind, sep, name = ref.partition(":")
    if len(ref) > MAX_REF:
        raise InvalidInput(
            f"evidence reference is longer than {MAX_REF} characters", field="evidence"
        )
    # ASCII blanks only, as the documented pattern (inputs.reference_pattern) says: a name of
    # other white space (U+00A0) is a name like any other, and is looked up.
    name = name.strip(BLANKS)
    if not sep or kind not in KINDS or not name:
        raise InvalidInput(
            f"evidence {ref!r} is not KIND:NAME with KIND one of {', '.join(KINDS)}",
            field="evidence",
        )
    return kind, name


def capture(ref: str, *, session: Session, warehouse: Any = None) -> tuple[str, Any]:
    """The evidence ``ref`` points to, read now: ``(kind, data)``.

    Raises:
        InvalidInput: a malformed reference.
        UsageError: the evidence needs the warehouse and none was given.
        NotFound: the experiment, race or goal does not exist.
    """
    kind, name = split_ref(ref)
    reader = _READERS[kind]
    if kind in ("metric", "experiment", "policy-replay") and warehouse is None:
        raise UsageError(
            f"evidence {ref} is read from the warehouse, which is not open here", field="evidence"
        )
    return kind, reader(name, session, warehouse)


def _metric(name: str, session: Session, wh: Any) -> dict[str, Any]:
    from tianping.goals.service import metric_history
    from tianping.metrics.periods import check_grain
    from tianping.metrics.service import METRICS

    metric, _, grain = name.partition("@")
    if metric not in METRICS:
        raise InvalidInput(
            f"unknown metric {metric!r}; metrics: {', '.join(METRICS)}", field="evidence"
        )
    grain = check_grain(grain or "month")
    history = metric_history(wh, metric, grain)
    return {"metric": metric, "grain": grain, "history": [[p, v] for p, v in history]}


def _experiment(name: str, session: Session, wh: Any) -> dict[str, Any]:
    from tianping.experiments.report import report_dict
    from tianping.experiments.service import analyze_experiment
    from tianping.races.service import weight_schedule

    return report_dict(
        analyze_experiment(name, session=session, warehouse=wh, weight_history=weight_schedule)
    )


def _race(name: str, session: Session, wh: Any) -> dict[str, Any]:
    from tianping.races.service import report_data

    return report_data(name, session=session)


def _goal(name: str, session: Session, wh: Any) -> dict[str, Any]:
    from tianping.goals.service import get_goal

    goal = get_goal(name, session=session)
    fields = ("number", "metric", "grain", "target", "deadline", "reason", "baseline",
              "baseline_period", "author", "created_at")  # fmt: skip
    return {
        "goal": goal.name,
        "revisions": [{f: getattr(r, f) for f in fields} for r in goal.revisions],
    }


def _policy_replay(name: str, session: Session, wh: Any) -> dict[str, Any]:
    from tianping.aftersales.policy import resolve_policy
    from tianping.aftersales.replay import replay, report_sections
    from tianping.refunds.service import appeal_outcomes

    ref, at, window = name.rpartition("@")
    start, dots, end = window.partition("..")
    if not at or not dots:
        raise InvalidInput(
            f"policy-replay evidence {name!r} is not POLICY@START..END", field="evidence"
        )
    policy = resolve_policy(ref)
    appeals = None if session is None else appeal_outcomes(session=session)
    report = replay(wh, policy, start=_day(start), end=_day(end), appeals=appeals)
    return {"policy": policy.name, "version": policy.version, "sections": report_sections(report)}


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date (YYYY-MM-DD)", field="evidence") from None


_READERS: dict[str, Callable[[str, Session, Any], dict[str, Any]]] = {
    "metric": _metric,
    "experiment": _experiment,
    "race": _race,
    "goal": _goal,
    "policy-replay": _policy_replay,
}
