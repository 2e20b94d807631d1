"""``tianping sources``: check a sources file against the tables it maps, before anything runs."""

from __future__ import annotations

import json

import typer

sources_app = typer.Typer(
    no_args_is_help=True, help="Your own tables, read in place through a sources file."
)


def register(app: typer.Typer) -> None:
    """Add the ``tianping sources …`` command group to the root command (called once at start-up)."""
    app.add_typer(sources_app, name="sources")


@sources_app.command("check")
def check(
    ctx: typer.Context,
    sample: int = typer.Option(
        10_000, min=0, max=10_000_000, help="Rows per table checked by ingest's value rules."
    ),
    fmt: str = typer.Option("table", "--format", help="table | json"),
) -> None:
    """Check every mapped table: columns and types, then the whole table (missing required
    values, negative amounts, other currencies, repeated keys), then a random sample of rows by
    the same rules as ``tianping ingest``. Problems are listed as ``table.column: what is wrong``
    and the command exits 1."""
    from rich.table import Table

    from tianping.cli.common import check_format, console, settings_of, warehouse_of
    from tianping.errors import UsageError
    from tianping.warehouse.check import check_sources

    check_format(fmt)
    settings = settings_of(ctx)
    if not settings.sources:
        raise UsageError(
            "no sources file: give --sources FILE (or TIANPING_SOURCES, or `sources` in "
            "tianping.toml); docs/data.md shows one",
            field="sources",
        )
    with warehouse_of(ctx) as wh:
        result = check_sources(wh, sample=sample, currency=settings.currency)
    if fmt == "json":
        typer.echo(
            json.dumps(
                {
                    "sources": result.sources,
                    "ok": result.ok,
                    "tables": [
                        {
                            "table": t.name,
                            "origin": t.origin,
                            "rows": t.rows,
                            "sampled": t.sampled,
                            "problems": [str(p) for p in t.problems],
                        }
                        for t in result.tables
                    ],
                },
                indent=2,
            )
        )
    else:
        table = Table(title=f"sources: {result.sources}")
        for name in ("table", "read from", "rows", "sampled", "problems"):
            table.add_column(
                name, justify="right" if name in ("rows", "sampled", "problems") else "left"
            )
        for t in result.tables:
            table.add_row(t.name, t.origin, f"{t.rows:,}", f"{t.sampled:,}", str(len(t.problems)))
        console.print(table)
        for p in result.problems:
            console.print(str(p), markup=False, highlight=False)
        if result.ok:
            console.print("every mapped table fits: reports read them in place")
    if not result.ok:
        raise typer.Exit(1)
