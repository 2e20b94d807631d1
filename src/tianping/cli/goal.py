"""``tianping goal``: KPI goals whose every revision is kept."""

from __future__ import annotations

import typer

goal_app = typer.Typer(no_args_is_help=True, help="KPI goals: set, revise, status, history.")


def register(app: typer.Typer) -> None:
    """Add the ``tianping goal …`` command group to the root command (called once at start-up)."""
    app.add_typer(goal_app, name="goal")


@goal_app.command("set")
def set_(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Goal name, e.g. double-dac-fy2025."),
    metric: str = typer.Option(..., help="A metric of `tianping metrics`, e.g. dac."),
    target: float = typer.Option(..., help="Target value of the metric (per --grain period)."),
    by: str = typer.Option(..., "--by", help="Deadline (YYYY-MM-DD)."),
    reason: str = typer.Option(..., help="Why the goal is set or changed (kept forever)."),
    grain: str = typer.Option("month", help="Period the metric is measured over."),
    author: str = typer.Option("", help="Who sets it (default: --actor)."),
    actor: str | None = typer.Option(
        None, "--actor", envvar="TIANPING_ACTOR", help="Who acts (env TIANPING_ACTOR)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Revise a set goal without a decision (needs --actor; audited)."
    ),
) -> None:
    """Set a new goal. Revising a set goal needs an approved goal_change decision
    (`tianping decision propose --kind goal_change`), or --force, which the audit log and the
    goal's history both record."""
    from tianping.cli.common import console, optional_warehouse, store_session
    from tianping.cli.metrics import parse_day
    from tianping.errors import UsageError
    from tianping.goals.service import set_goal

    if force and not (actor and actor.strip()):
        raise UsageError("--force needs --actor (or TIANPING_ACTOR): who forces the change")
    with store_session(ctx, actor=actor) as session, optional_warehouse(ctx) as wh:
        rev = set_goal(
            name,
            metric=metric,
            target=target,
            deadline=parse_day(by, "--by"),
            reason=reason,
            grain=grain,
            author=author or actor or "",
            session=session,
            wh=wh,
            forced_by=actor if force else None,
        )
    verb = "set" if rev.number == 1 else f"revised (revision {rev.number})"
    base = "no baseline yet" if rev.baseline is None else f"baseline {rev.baseline:,.2f}"
    console.print(f"goal {name} {verb}: {metric} → {target:,.2f} by {rev.deadline}; {base}")


@goal_app.command("status")
def status_(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="One goal (default: all)."),
    as_of: str | None = typer.Option(None, "--as-of", help="Day to judge (default: last data)."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Actual vs the path to target, a forecast, and how many times each goal was changed."""
    from tianping.cli.common import render_rows, settings_of, store_session, warehouse_of
    from tianping.cli.metrics import parse_day
    from tianping.goals.service import get_goal, goal_status, list_goals
    from tianping.metrics.calendar import load_calendar

    calendar = load_calendar(settings_of(ctx).calendar)
    with store_session(ctx, write=False) as session, warehouse_of(ctx) as wh:
        goals = [get_goal(name, session=session)] if name else list_goals(session=session)
        reports = [goal_status(g, wh, parse_day(as_of, "--as-of"), calendar) for g in goals]
        rows = [_status_row(r) for r in reports]
    render_rows(rows, fmt, title="KPI goals",
                empty="no goals set yet: `tianping goal set NAME --metric M --target T --by DATE`")  # fmt: skip


def _status_row(r) -> dict:
    s, rev = r.status, r.goal.current
    return {
        "goal": r.goal.name,
        "metric": rev.metric,
        "target": s.target,
        "deadline": rev.deadline,
        "as_of": s.as_of,
        "actual": _r(s.actual),
        "expected_now": _r(s.expected),
        "forecast": _r(s.forecast),
        "on_track": s.on_track,
        "calendar": "; ".join(
            [f"{k} {v:+,.4g}" for k, v in s.calendar_effects]
            + [f"{k} not seen yet" for k in s.unseen_events]
        )
        or None,  # fmt: skip
        "progress": _r(s.progress),
        "times_changed": r.changes,
    }


def _r(v):
    return None if v is None else round(v, 4)


@goal_app.command("history")
def history(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Every revision of a goal: when, who, what changed and why."""
    from tianping.cli.common import render_rows, store_session
    from tianping.goals.service import get_goal

    with store_session(ctx, write=False) as session:
        goal = get_goal(name, session=session)
        rows = [
            {
                "revision": v.number,
                "at": v.created_at,
                "author": v.author,
                "metric": v.metric,
                "target": v.target,
                "deadline": v.deadline,
                "baseline": v.baseline,
                "reason": v.reason,
            }
            for v in goal.revisions
        ]
    render_rows(rows, fmt, title=f"goal {name}: {len(rows) - 1} change(s)")
