"""``tianping experiment``: definitions, SDK snapshot, analysis and A/A checks."""

from __future__ import annotations

from pathlib import Path

import typer

experiment_app = typer.Typer(
    no_args_is_help=True,
    help="Experiments: create from YAML, list, show, export, start/stop, snapshot for SDKs, "
    "analyze from the warehouse, and A/A checks (docs/experiments.md).",
)


def register(app: typer.Typer) -> None:
    app.add_typer(experiment_app, name="experiment")


def _read(path: Path) -> str:
    from tianping.errors import UsageError

    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}", field=str(path)) from None


@experiment_app.command("create")
def create(ctx: typer.Context, file: Path = typer.Argument(..., help="Definition (YAML).")) -> None:
    """Store an experiment defined in a YAML file."""
    from tianping.cli.common import console, store_session
    from tianping.experiments import service

    spec = service.load_yaml(_read(file), source=str(file))
    with store_session(ctx) as session:
        row = service.create(spec, session=session)
        console.print(f"created experiment [bold]{row.name}[/] ({row.status})")


@experiment_app.command("list")
def list_(
    ctx: typer.Context,
    status: str | None = typer.Option(None, help="draft | running | stopped"),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """List experiments."""
    from tianping.cli.common import check_format, render_rows, store_session
    from tianping.experiments import service

    check_format(fmt)
    with store_session(ctx) as session:
        rows = [_summary(r) for r in service.list_all(session=session, status=status)]
    render_rows(rows, fmt, title="experiments")


def _summary(row) -> dict:
    return {
        "name": row.name,
        "status": row.status,
        "primary_metric": row.primary_metric,
        "variants": ", ".join(v["name"] for v in row.variants),
        "traffic": row.traffic,
        "layer": row.layer,
        "start_date": row.start_date,
        "end_date": row.end_date,
    }


@experiment_app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """Print an experiment's definition (YAML)."""
    export(ctx, name, None)


@experiment_app.command("export")
def export(
    ctx: typer.Context,
    name: str,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write here instead of stdout."
    ),
) -> None:
    """Export an experiment as YAML that `create` reads back."""
    from tianping.cli.common import store_session
    from tianping.experiments import service

    with store_session(ctx) as session:
        text = service.dump_yaml(service.spec_of(service.get_or_raise(name, session=session)))
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@experiment_app.command("start")
def start(ctx: typer.Context, name: str) -> None:
    """Set an experiment running (checks its layer range against running experiments)."""
    _set_status(ctx, name, "running")


@experiment_app.command("stop")
def stop(ctx: typer.Context, name: str) -> None:
    """Stop an experiment."""
    _set_status(ctx, name, "stopped")


def _set_status(ctx: typer.Context, name: str, status: str) -> None:
    from tianping.cli.common import console, store_session
    from tianping.experiments import service

    with store_session(ctx) as session:
        service.set_status(name, status, session=session)
    console.print(f"experiment [bold]{name}[/] is {status}")


@experiment_app.command("snapshot")
def snapshot(
    ctx: typer.Context,
    holdout: float = typer.Option(0.0, help="Global holdout fraction, e.g. 0.05."),
    holdout_salt: str = typer.Option("global-holdout", help="Salt of the holdout draw."),
) -> None:
    """Print the JSON snapshot of running experiments that `tianping.Client` assigns from."""
    from tianping.cli.common import store_session
    from tianping.experiments import service
    from tianping.experiments.assignment import Holdout

    hold = Holdout(holdout_salt, holdout) if holdout > 0 else None
    with store_session(ctx) as session:
        snap = service.snapshot(session=session, holdout=hold)
    typer.echo(snap.to_json())
