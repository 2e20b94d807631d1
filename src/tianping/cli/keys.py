"""``tianping keys``: create (the key is printed once), list and revoke API keys."""

from __future__ import annotations

import typer

keys_app = typer.Typer(no_args_is_help=True, help="API keys and their roles (docs/service.md).")


def register(app: typer.Typer) -> None:
    """Add the ``tianping keys …`` command group to the root command (called once at start-up)."""
    app.add_typer(keys_app, name="keys")


def _row(k) -> dict:
    return {
        "key_id": k.id, "name": k.name, "role": k.role, "merchant_id": k.merchant_id,
        "created_at": k.created_at, "revoked_at": k.revoked_at,
    }  # fmt: skip


@keys_app.command("create")
def create_(
    ctx: typer.Context,
    role: str = typer.Option(..., help="admin | operator | analyst | merchant | service"),
    merchant: str | None = typer.Option(None, "--merchant", help="The merchant a merchant key is."),
    name: str | None = typer.Option(None, help="Who holds the key (default ROLE-KEYID)."),
) -> None:
    """Create a key and print it once: only its SHA-256 is stored."""
    from tianping.auth import service
    from tianping.cli.common import store_session
    from tianping.clock import SystemClock

    with store_session(ctx) as s:
        row, key = service.create(
            role, session=s, now=SystemClock().now(), merchant_id=merchant, name=name
        )
        key_id, holder = row.id, row.name
    typer.echo(key)
    typer.echo(f"key {key_id} for {holder} ({role}); store it now, it is not shown again", err=True)


@keys_app.command("list")
def list_(
    ctx: typer.Context,
    active: bool = typer.Option(False, "--active", help="Only keys not revoked."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Every key's id, holder, role, merchant and dates (never the key)."""
    from tianping.auth import service
    from tianping.cli.common import check_format, render_rows, store_session

    check_format(fmt)
    with store_session(ctx, write=False) as s:
        rows = [_row(k) for k in service.list_keys(session=s, include_revoked=not active)]
    render_rows(
        rows,
        fmt,
        title="API keys",
        empty="no API keys yet: `tianping keys create --role admin --name NAME`",
    )


@keys_app.command("revoke")
def revoke_(ctx: typer.Context, key_id: str = typer.Argument(..., help="The key's id.")) -> None:
    """Revoke a key at once: requests with it are answered 401."""
    from tianping.auth import service
    from tianping.cli.common import store_session
    from tianping.clock import SystemClock

    with store_session(ctx) as s:
        service.revoke(key_id, session=s, now=SystemClock().now())
    typer.echo(f"revoked {key_id}")
