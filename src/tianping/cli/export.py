"""``tianping export``: copy operational state from the store into the warehouse."""

from __future__ import annotations

import typer

export_app = typer.Typer(no_args_is_help=True, help="Copy store state into the warehouse.")


def register(app: typer.Typer) -> None:
    """Add the ``tianping export …`` command group to the root command (called once at start-up)."""
    app.add_typer(export_app, name="export")


@export_app.command("refunds")
def refunds(ctx: typer.Context) -> None:
    """Append settled refund requests (refunded, closed, rejected, cancelled) to ``refunds``.

    Each request is written once; running again adds only what settled since.
    """
    from tianping.cli.common import console, store_session, warehouse_of
    from tianping.refunds.export import export_refunds

    with store_session(ctx) as session, warehouse_of(ctx, write=True) as wh:
        report = export_refunds(session=session, wh=wh)
    console.print(
        f"exported {report.written} refund request(s) to the warehouse's refunds table "
        f"({report.settled - report.written} already there)"
    )
