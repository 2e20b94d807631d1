"""``tianping race``: horse races (赛马) that move traffic and budget to the best strategy."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

race_app = typer.Typer(
    no_args_is_help=True,
    help="Horse races: create from YAML, step (read the warehouse, re-weight, eliminate, "
    "stop and confirm), show, report (table, JSON or HTML) and stop (docs/races.md).",
)

REPORT_FORMATS = ("table", "json", "csv", "html")


def register(app: typer.Typer) -> None:
    """Add the ``tianping race …`` command group to the root command (called once at start-up)."""
    app.add_typer(race_app, name="race")


@race_app.command("create")
def create(ctx: typer.Context, file: Path = typer.Argument(..., help="Definition (YAML).")) -> None:
    """Store a race defined in a YAML file and start its experiment with an even split."""
    from tianping.cli.common import console, store_session
    from tianping.errors import UsageError
    from tianping.races import service

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {file}: {exc}", field=str(file)) from None
    spec = service.load_yaml(text, source=str(file))
    with store_session(ctx) as session:
        if spec.kind == "refund_policy":
            from tianping.races import policy_race

            row = policy_race.create(spec, session=session, base=file.parent)
        else:
            row = service.create(spec, session=session)
        console.print(f"created race [bold]{row.name}[/] with {len(spec.strategies)} strategies")


@race_app.command("list")
def list_(
    ctx: typer.Context, fmt: str = typer.Option("table", "--format", help="table | json | csv")
) -> None:
    """List races and their phase."""
    from tianping.cli.common import check_format, render_rows, store_session
    from tianping.races import service

    check_format(fmt)
    with store_session(ctx, write=False) as session:
        rows = [
            {"name": r.name, "phase": r.phase, "goal": r.spec["goal_metric"], "steps": r.steps,
             "winner": r.winner, "decision": r.decision}
            for r in service.list_all(session=session)
        ]  # fmt: skip
    render_rows(
        rows,
        fmt,
        title="races",
        empty="no races yet: `tianping race create FILE.yaml` (docs/races.md)",
    )


@race_app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """Print a race's definition (YAML)."""
    from tianping.cli.common import store_session
    from tianping.races import service

    with store_session(ctx, write=False) as session:
        typer.echo(service.dump_yaml(service.spec_of(service.get_or_raise(name, session=session))))


@race_app.command("step")
def step(
    ctx: typer.Context,
    name: str,
    start: datetime | None = typer.Option(
        None, "--from", formats=["%Y-%m-%d"], help="Policy races: first day of past requests."
    ),
    end: datetime | None = typer.Option(
        None, "--to", formats=["%Y-%m-%d"], help="Policy races: last day, included."
    ),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Read the latest data, compute chances to be best, write the new weights.

    A policy race (kind refund_policy) replays the refund requests from --from to --to under
    its assignment instead of reading exposures.
    """
    from tianping.cli.common import dumps_json, store_session, warehouse_of
    from tianping.errors import UsageError
    from tianping.races import policy_race, service

    _check(fmt, ("table", "json", "csv"))
    if (start is None) != (end is None):
        raise UsageError("give both --from and --to, or neither", field="from")
    with store_session(ctx) as session:
        service.get_or_raise(name, session=session)  # an unknown name before a missing warehouse
        with warehouse_of(ctx) as wh:
            if start is None:
                row = service.step(name, session=session, warehouse=wh)
            else:
                row = policy_race.step(
                    name, start=start.date(), end=end.date(), session=session, warehouse=wh
                )
        data = service.report_data(name, session=session)
    if fmt == "json":
        typer.echo(dumps_json(data["steps"][-1]))
    elif fmt == "csv":
        from tianping.cli.common import render_rows
        from tianping.races import report as rr

        render_rows(rr.standings_rows(data), "csv")
    else:
        _print_step(data, row.number)


@race_app.command("report")
def report(
    ctx: typer.Context,
    name: str,
    fmt: str = typer.Option("table", "--format", help="table | json | csv | html"),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
) -> None:
    """Standings over time, allocation, regret, budget and the confirmation."""
    from tianping.cli.common import dumps_json, render_sections, store_session
    from tianping.races import report as rr
    from tianping.races import service

    _check(fmt, REPORT_FORMATS)
    with store_session(ctx, write=False) as session:
        data = service.report_data(name, session=session)
    if fmt == "table":
        _print_report(data)
        return
    if fmt == "csv":
        render_sections({"standings over time": rr.history_rows(data),
                         "standings": rr.standings_rows(data), "budget": rr.budget_rows(data),
                         "two-sided errors": rr.error_rows(data)},
                        "csv")  # fmt: skip
        return
    text = dumps_json(rr.report_json(data)) if fmt == "json" else rr.report_html(data)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


@race_app.command("stop")
def stop(ctx: typer.Context, name: str) -> None:
    """Stop a race by hand (and its running experiment)."""
    from tianping.cli.common import console, store_session
    from tianping.races import service

    with store_session(ctx) as session:
        service.stop(name, session=session)
    console.print(f"race [bold]{name}[/] is stopped")


def _check(fmt: str, allowed: tuple[str, ...]) -> None:
    from tianping.errors import UsageError

    if fmt not in allowed:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(allowed)}", field="format")


def _print_step(data: dict, number: int) -> None:
    from tianping.cli.common import console, render_rows
    from tianping.races import report as rr

    step = data["steps"][-1]
    console.print(f"race [bold]{data['race']['name']}[/] step {number} ({step['phase']})")
    if step["phase"] == "racing":
        render_rows(rr.standings_rows(data), "table", title=rr.BIASED)
    for reason in step["reasons"]:
        console.print(f"  {reason}")
    console.print(f"phase now: [bold]{data['race']['phase']}[/]")


def _print_report(data: dict) -> None:
    from tianping.cli.common import console, render_rows
    from tianping.races import report as rr

    race = data["race"]
    console.print(
        f"race [bold]{race['name']}[/] · goal {race['goal_metric']} · phase {race['phase']}"
        f" · {len(data['steps'])} steps"
    )
    if rr.standings_rows(data):
        render_rows(rr.history_rows(data), "table", title="standings over time")
        render_rows(rr.standings_rows(data), "table", title=rr.BIASED)
    if rr.budget_rows(data):
        render_rows(rr.budget_rows(data), "table", title="budget")
    if rr.error_rows(data):
        render_rows(rr.error_rows(data), "table", title=f"two-sided errors: {rr.ERRORS_NOTE}")
    v = rr.verdict(data)
    if v is not None:
        word = "ship" if v["ship"] else "do not ship"
        console.print(
            f"confirmation {v['winner']} vs {v['comparator']} (fresh units, unbiased): effect "
            f"{v['effect_size']:.6g} [{v['effect_size_ci_lower']:.6g}, "
            f"{v['effect_size_ci_upper']:.6g}], p = {v['pvalue']:.4g} → {word}"
            + ("" if v["final"] else " (interim)")
        )
    steps = [s for s in data["steps"] if s["phase"] == "racing"]
    if steps:
        console.print(
            f"cumulative regret estimate {steps[-1]['regret']:.6g} "
            f"(equal split: {steps[-1]['equal_split_regret']:.6g})"
        )
