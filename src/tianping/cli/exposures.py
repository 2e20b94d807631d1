"""``tianping exposures load``: copy the exposures queued by the API into the warehouse."""

from __future__ import annotations

import typer

exposures_app = typer.Typer(
    no_args_is_help=True, help="Exposures reported through POST /v1/exposures (docs/service.md)."
)


def register(app: typer.Typer) -> None:
    """Add the ``tianping exposures …`` command group to the root command (called once at start-up)."""
    app.add_typer(exposures_app, name="exposures")


@exposures_app.command("load")
def load(
    ctx: typer.Context,
    after_id: int = typer.Option(0, min=0, help="Only queue rows with a larger id."),
) -> None:
    """Load the queue into the warehouse's exposures table (rows already there are skipped)."""
    import json
    import tempfile
    from pathlib import Path

    from tianping.assignments import service
    from tianping.cli.common import store_session, warehouse_of
    from tianping.warehouse.ingest import ingest_file

    with store_session(ctx) as s:
        rows = service.queued(session=s, after_id=after_id)
    if not rows:
        typer.echo("no queued exposures")
        return
    with tempfile.TemporaryDirectory() as tmp, warehouse_of(ctx, write=True) as wh:
        path = Path(tmp) / "exposures.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        report = ingest_file(wh, "exposures", path)
    typer.echo(f"{report.loaded} exposures loaded, {report.duplicates} already there")
