"""``tianping ledger check``: audit the double-entry ledger and the orders' refunded cash."""

from __future__ import annotations

import typer

ledger_app = typer.Typer(no_args_is_help=True, help="The double-entry ledger.")


def register(app: typer.Typer) -> None:
    """Add the ``tianping ledger …`` command group to the root command (called once at start-up)."""
    app.add_typer(ledger_app, name="ledger")


@ledger_app.command("check")
def check(
    ctx: typer.Context,
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Every transfer sums to zero, no order is over-refunded, no restricted account is negative.

    Also: no red packet is paid out as cash, and each order's refunded cash matches its ledger.
    Exits 1 listing every violation; prints a one-line summary when all rules hold.
    """
    from tianping.cli.common import check_format, console, render_rows, store_session
    from tianping.refunds.reconcile import audit, ledger_summary

    check_format(fmt)
    with store_session(ctx, write=False) as session:
        found = audit(session=session)
        summary = ledger_summary(session=session)
    if not found:
        console.print(
            f"ok: {summary['transfers']} transfers, {summary['entries']} entries, "
            f"{summary['orders']} orders: balanced, none over-refunded, no restricted "
            "account negative",
            soft_wrap=True,
        )
        return
    rows = [{"check": v.check, "subject": v.subject, "detail": v.detail} for v in found]
    render_rows(rows, fmt, title=f"{len(found)} ledger violation(s)")
    raise typer.Exit(1)
