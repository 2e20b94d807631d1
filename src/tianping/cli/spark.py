"""``tianping spark connect-server``: one long-running Spark driver for every command."""

from __future__ import annotations

import typer

spark_app = typer.Typer(no_args_is_help=True, help="Spark without a driver start per command.")


def register(app: typer.Typer) -> None:
    """Add the ``tianping spark …`` command group to the root command (called once at start-up)."""
    app.add_typer(spark_app, name="spark")


@spark_app.command("connect-server")
def connect_server(
    master: str = typer.Option("local[*]", help="Where the work runs: local[N] or a master URL."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every one)."),
    port: int = typer.Option(15002, min=1, max=65535, help="gRPC port."),
    conf: list[str] = typer.Option(
        [], "--conf", help="More Spark settings for the server, KEY=VALUE (repeatable)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the command, do not run it."),
) -> None:
    """Run a Spark Connect server in the foreground (Ctrl-C stops it). Commands then use it
    with ``--warehouse sc://HOST:PORT``: each pays a connection (about a second), not the ~15 s
    start of a Spark driver. The home's data folder must be at the same path for the server."""
    import os
    import shlex

    from tianping.errors import UsageError
    from tianping.warehouse.sparkconnect import server_command

    pairs = {}
    for item in conf:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--conf {item!r}: expected KEY=VALUE", field="conf")
        pairs[key.strip()] = value
    cmd = server_command(master, host=host, port=port, conf=pairs)
    if dry_run:
        typer.echo(shlex.join(cmd))
        return
    typer.echo(f"Spark Connect server on sc://{host}:{port} (master {master}); Ctrl-C stops it")
    os.execv(cmd[0], cmd)
