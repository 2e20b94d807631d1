"""``tianping simulate``: a marketplace with known ground truth, straight into the warehouse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add ``tianping simulate`` to the root command (called once at start-up for every command module)."""
    app.command("simulate")(simulate)


def simulate(
    ctx: typer.Context,
    buyers: int = typer.Option(20_000, help="Number of buyers."),
    merchants: int | None = typer.Option(None, help="Number of merchants (default buyers/20)."),
    days: int = typer.Option(90, help="Days to simulate."),
    seed: int = typer.Option(0, help="Seed: the same seed gives the same data, byte for byte."),
    start: str = typer.Option("2024-04-01", help="First day (ISO date, UTC days)."),
    scenario: str = typer.Option(
        "default", help="Shipped scenario (default | baseline | rings) or a scenario YAML file."
    ),
    out: Path | None = typer.Option(None, help="Also write Parquet files (and the truth) here."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv: rows per table."),
    rebuild: bool = typer.Option(
        False, "--rebuild", help="Replace event data the warehouse already holds (else refused)."
    ),
) -> None:
    """Simulate buyers, merchants, orders, refunds, reviews, NPS, activity and experiments.

    Writes the six event tables and the ground-truth tables (sim_*) in the warehouse and the
    scenario's truth to <home>/ground_truth/truth.json. A warehouse that already holds event
    data (ingested or simulated) is left alone unless --rebuild is given. See
    docs/simulator.md.
    """
    from tianping.cli.common import check_format, console, render_rows, settings_of, warehouse_of
    from tianping.simulate.service import (
        load_scenario,
        refuse_existing_events,
        run_simulation,
        start_date,
    )

    check_format(fmt)
    home = settings_of(ctx).home
    quiet = as_json or fmt != "table"
    with warehouse_of(ctx, write=True) as wh, simulation_progress(disable=quiet) as progress:
        if not rebuild:
            refuse_existing_events(wh, where=home, command="simulate")
        result = run_simulation(
            wh, buyers=buyers, merchants=merchants, days=days, seed=seed,
            start=start_date(start), scenario=load_scenario(scenario), out=out,
            truth_dir=home / "ground_truth", progress=progress,
        )  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"rows": result.rows, "seconds": result.seconds}, indent=2))
        return
    render_rows([{"table": k, "rows": v} for k, v in result.rows.items()], fmt)
    if fmt == "table":
        console.print(f"simulated in {result.seconds:.1f} s; truth in {home / 'ground_truth'}")


@contextmanager
def simulation_progress(*, disable: bool = False) -> Iterator:
    """A Rich progress bar over simulated buyers; yields the callback the service calls."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tianping.cli.common import err_console

    columns = (
        TextColumn("simulating buyers"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True, disable=disable) as bar:
        task = bar.add_task("simulate", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance
