"""``tianping audit``: read the append-only audit log, filtered, and verify its hash chain."""

from __future__ import annotations

from datetime import datetime

import typer


def register(app: typer.Typer) -> None:
    """Add ``tianping audit`` to the root command (called once at start-up for every command module)."""
    app.command("audit")(audit)


def audit(
    ctx: typer.Context,
    actor: str | None = typer.Option(None, help="Only this actor."),
    action: str | None = typer.Option(None, help="Only actions starting with this, e.g. decision."),
    subject: str | None = typer.Option(None, help="Only this subject, e.g. decision:12."),
    key_id: str | None = typer.Option(None, "--key-id", help="Only changes made with this key."),
    since: str | None = typer.Option(None, help="From this UTC time (ISO 8601, inclusive)."),
    until: str | None = typer.Option(None, help="Before this UTC time (ISO 8601, exclusive)."),
    limit: int = typer.Option(100, min=1, max=100_000, help="At most this many, oldest first."),
    offset: int = typer.Option(0, min=0, help="Skip this many."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Check the whole hash chain instead; exit 1 if anything was altered.",
    ),
) -> None:
    """Who changed what, when, and with which key; ``--verify`` detects edited rows."""
    from tianping.audit import log as log
    from tianping.cli.common import check_format, render_rows, store_session

    check_format(fmt)
    with store_session(ctx, write=False) as session:
        if verify:
            _verify(log.verify(session=session))
            return
        where = log.AuditFilter(
            actor, action, subject, key_id, _at(since, "--since"), _at(until, "--until")
        )
        rows = [
            log.entry_dict(e)
            for e in log.entries(session=session, where=where, limit=limit, offset=offset)
        ]
    if fmt != "json":
        rows = [{**r, "detail": _short(r["detail"]), "hash": r["hash"][:12]} for r in rows]
    render_rows(rows, fmt, title="audit log", empty="no audit entries match")


def _verify(v) -> None:
    from tianping.cli.common import console, err_console

    if v.ok:
        console.print(f"audit log intact: {v.entries} entries, head {v.head}")
        return
    for p in v.problems:
        err_console.print(f"entry {p.seq}: {p.reason}")
    err_console.print(f"audit log altered: {len(v.problems)} problem(s) in {v.entries} entries")
    raise typer.Exit(1)


def _at(value: str | None, option: str) -> datetime | None:
    from tianping.clock import ensure_utc
    from tianping.errors import UsageError

    if value is None:
        return None
    try:
        return ensure_utc(datetime.fromisoformat(value))
    except ValueError:
        raise UsageError(f"{option} {value!r} is not an ISO 8601 time", field=option) from None


def _short(detail) -> str:
    from tianping.audit.canonical import dumps

    text = dumps(detail)
    return text if len(text) <= 80 else text[:77] + "..."
