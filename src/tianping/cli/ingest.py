"""``tianping ingest TABLE FILE``: validated, all-or-nothing loading of event files."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add ``tianping ingest`` to the root command (called once at start-up for every command module)."""
    app.command("ingest")(ingest)


def ingest(
    ctx: typer.Context,
    table: str = typer.Argument(
        ..., help="orders | refunds | reviews | nps | activity | exposures"
    ),
    file: Path = typer.Argument(..., help="CSV (with header), Parquet or JSON Lines file."),
    tz: str = typer.Option("UTC", help="Time zone of timestamps without an offset (IANA name)."),
    rejects: Path | None = typer.Option(
        None, help="Load the valid rows and write the invalid ones here (CSV with a reason)."
    ),
    file_format: str | None = typer.Option(
        None, "--format", help="csv | parquet | jsonl (default: from the extension)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    memory_limit: str = typer.Option(
        "2GB",
        "--memory-limit",
        help="DuckDB's memory while ingesting (e.g. 1GB); staged rows beyond it spill to disk.",
    ),
) -> None:
    """Validate FILE against TABLE's schema and load it into the warehouse.

    Any invalid row means nothing is loaded (exit 1) unless --rejects is given. Rows whose key
    is already loaded with the same values are skipped, so re-ingesting a file changes nothing.
    """
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

    from tianping.cli.common import console, err_console, warehouse_of
    from tianping.warehouse.ingest import ingest_file

    stages = ["read", "validated", "deduplicated", "loaded"]
    with (
        warehouse_of(ctx, write=True) as wh,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} stages"),
            console=err_console,
            transient=True,
            disable=as_json,
        ) as bar,
    ):
        task = bar.add_task(f"ingesting {file.name} into {table}", total=len(stages))

        def step(stage: str, rows: int) -> None:
            bar.update(task, advance=1, description=f"{table}: {stage} {rows:,} rows")

        report = ingest_file(
            wh, table, file, tz=tz, rejects=rejects, file_format=file_format, progress=step,
            memory_limit=memory_limit,
        )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    console.print(
        f"{report.table}: read {report.read:,} = loaded {report.loaded:,} + rejected "
        f"{report.rejected:,} + duplicates skipped {report.duplicates:,}"
    )
    if report.ignored_columns:
        console.print(f"ignored columns not in the schema: {', '.join(report.ignored_columns)}")
    if report.rejects_path and report.rejected:
        console.print(f"invalid rows written to {report.rejects_path}")
