"""``tianping serve``: the JSON API under uvicorn, on the embedded defaults unless told otherwise."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``tianping serve`` to the root command (called once at start-up for every command module)."""
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
    from pathlib import Path

    import uvicorn

    from tianping.cli.common import settings_of

    settings = settings_of(ctx)
    _check_store(settings)
    _check_sources(settings)
    _check_calendar(settings)
    check_port(host, port)
    # Workers rebuild the app from the environment, so hand them these settings there.
    os.environ.update(
        {
            "TIANPING_HOME": str(settings.home),
            "TIANPING_STORE": settings.store,
            "TIANPING_WAREHOUSE": settings.warehouse,
            **(
                {"TIANPING_SOURCES": str(Path(settings.sources).resolve())}
                if settings.sources
                else {}
            ),
            **(
                {"TIANPING_CALENDAR": str(Path(settings.calendar).resolve())}
                if settings.calendar
                else {}
            ),
            "TIANPING_TICK_SECONDS": str(tick_seconds),
        }
    )
    typer.echo(f"tianping API on http://{host}:{port} (store {settings.store})", err=True)
    uvicorn.run(
        "tianping.server.app:from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )


def _check_sources(settings) -> None:
    """Map the sources once, so a broken mapping is listed before the server starts (not on
    every dashboard page)."""
    if not settings.sources:
        return
    from tianping.warehouse import connect

    connect(settings).close()


def _check_calendar(settings) -> None:
    """Read the calendar once, so a broken file is one line before the server starts."""
    from tianping.metrics.calendar import load_calendar

    load_calendar(settings.calendar)


def _check_store(settings) -> None:
    """Open the store once, so a bad --store is one line before anything starts."""
    from tianping.store import init_schema, make_engine

    settings.check_store(write=True)
    engine = make_engine(settings.store)
    try:
        init_schema(engine)
    finally:
        engine.dispose()


def check_port(host: str, port: int) -> None:
    """Fail before the banner when nothing can listen on ``host:port`` (another server has
    it, or the address is not this machine's); uvicorn would say so only after starting.

    Raises:
        UsageError: naming the address and the reason.
    """
    import socket

    from tianping.errors import UsageError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UsageError(f"--host {host!r}: {exc.strerror}", field="host") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} (is another server "
                "running there? choose another --port)",
                field="port",
            ) from None
