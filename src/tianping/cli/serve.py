"""``tianping serve``: the JSON API under uvicorn, on the embedded defaults unless told otherwise."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, min=1, max=64, help="Worker processes."),
    tick_seconds: float = typer.Option(
        60.0, min=0, help="How often SLA timers are checked (0: never; run them elsewhere)."
    ),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
) -> None:
    """Serve the refund, red-packet and ledger API (OpenAPI at /docs) on the store of --store."""
    import os

    import uvicorn

    from tianping.cli.common import settings_of

    settings = settings_of(ctx)
    # Workers rebuild the app from the environment, so hand them these settings there.
    os.environ.update(
        {
            "TIANPING_HOME": str(settings.home),
            "TIANPING_STORE": settings.store,
            "TIANPING_WAREHOUSE": settings.warehouse,
            "TIANPING_TICK_SECONDS": str(tick_seconds),
        }
    )
    typer.echo(f"tianping API on http://{host}:{port} (store {settings.store})", err=True)
    uvicorn.run(
        "tianping.api.app:from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )
