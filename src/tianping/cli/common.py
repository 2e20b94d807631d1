"""What every command shares: settings, connections, consoles and output formats."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tianping.errors import TianpingError, UsageError
from tianping.settings import Settings

console = Console()
err_console = Console(stderr=True)

FORMATS = ("table", "json", "csv")


def print_error(exc: TianpingError) -> None:
    """One line on stderr: ``error: <message>``."""
    err_console.print(Text("error: ", style="bold red") + Text(exc.message), soft_wrap=True)


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the root command built."""
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        raise UsageError("settings were not initialised")
    return root.obj


@contextmanager
def warehouse_of(ctx: typer.Context) -> Iterator[Any]:
    """Open the warehouse for the duration of a command."""
    from tianping.warehouse import connect

    wh = connect(settings_of(ctx))
    try:
        yield wh
    finally:
        wh.close()


@contextmanager
def store_session(ctx: typer.Context, *, actor: str | None = None) -> Iterator[Any]:
    """A store session in one transaction: committed on success, rolled back on error.

    Its changes are audited as made by ``actor``, else :func:`cli_actor`.
    """
    from tianping.governance.audit import acting_as
    from tianping.store import session_scope

    with session_scope(settings_of(ctx).store) as session:
        acting_as(session, actor or cli_actor())
        yield session


def cli_actor() -> str:
    """Who runs the command: ``TIANPING_ACTOR``, else ``cli:<login name>``."""
    import getpass
    import os

    named = os.environ.get("TIANPING_ACTOR", "").strip()
    if named:
        return named[:200]
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in a bare container
        return "cli"


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", field="format")
    return fmt


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def render_rows(rows: Sequence[dict[str, Any]], fmt: str, *, title: str | None = None) -> None:
    """Print rows (dicts with the same keys) as a Rich table, JSON or CSV on stdout."""
    check_format(fmt)
    if fmt == "json":
        typer.echo(dumps_json(list(rows)))
        return
    columns = list(rows[0]) if rows else []
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if v is None else _plain(v) for k, v in r.items()})
        typer.echo(buf.getvalue(), nl=False)
        return
    if len(columns) > 8 and 0 < len(rows) <= 8:
        rows, columns = _transpose(rows, columns)
    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(c, justify="right" if rows and _is_number(rows[0][c]) else "left")
    for r in rows:
        table.add_row(*("—" if r[c] is None else str(_plain(r[c])) for c in columns))
    console.print(table)


def _transpose(rows: Sequence[dict[str, Any]], columns: list[str]):
    """Wide, short results read better with one line per field."""
    head = columns[0]
    names = [str(_plain(r[head])) for r in rows]
    out = [{head: c, **{n: r[c] for n, r in zip(names, rows, strict=True)}} for c in columns[1:]]
    return out, [head, *names]


def dumps_json(obj: Any) -> str:
    """JSON with Decimals written as exact numbers (``12.30`` stays ``12.30``) and dates as ISO."""
    exact: dict[str, str] = {}

    def default(o: Any) -> Any:
        if isinstance(o, Decimal):
            token = f"__decimal_{len(exact)}__"
            exact[token] = format(o, "f")
            return token
        if hasattr(o, "isoformat"):
            return o.isoformat()
        return str(o)

    text = json.dumps(obj, default=default, indent=2, ensure_ascii=False)
    for token, number in exact.items():
        text = text.replace(f'"{token}"', number, 1)
    return text


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)
