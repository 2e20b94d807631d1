"""What every command shares: settings, connections, consoles and output formats."""

from __future__ import annotations

import csv
import io
import json
import re
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
def warehouse_of(ctx: typer.Context, *, write: bool = False) -> Iterator[Any]:
    """Open the warehouse for the duration of a command.

    A command that only reads (``write`` False) never creates a warehouse: on a home without
    one it stops with a :class:`~tianping.errors.NoData` naming what fills it.
    """
    from tianping.warehouse import connect

    settings = settings_of(ctx)
    settings.check_warehouse(write=write)
    wh = connect(settings, write=write)
    try:
        yield wh
    finally:
        wh.close()


@contextmanager
def optional_warehouse(ctx: typer.Context) -> Iterator[Any]:
    """The warehouse if the home has one, else None (never creates one)."""
    from tianping.errors import NoData

    try:
        settings_of(ctx).check_warehouse(write=False)
    except NoData:
        yield None
        return
    with warehouse_of(ctx) as wh:
        yield wh


@contextmanager
def store_session(
    ctx: typer.Context, *, actor: str | None = None, write: bool = True
) -> Iterator[Any]:
    """A store session in one transaction: committed on success, rolled back on error.

    Its changes are audited as made by ``actor``, else :func:`cli_actor`. A command that only
    reads (``write`` False) never creates a store: on a home without one it stops with a
    :class:`~tianping.errors.NoData`.
    """
    from tianping.audit.log import acting_as
    from tianping.store import session_scope

    settings = settings_of(ctx)
    settings.check_store(write=write)
    with session_scope(settings.store) as session:
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
    """``fmt`` when it is one of :data:`FORMATS`, else a :class:`UsageError` listing them."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", field="format")
    return fmt


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def render_rows(
    rows: Sequence[dict[str, Any]],
    fmt: str,
    *,
    title: str | None = None,
    empty: str | None = None,
    columns: Sequence[str] | None = None,
) -> None:
    """Print rows (dicts with the same keys) as a table, JSON or CSV on stdout.

    Every command that prints a table goes through here, so all of them read the same:

    - ``table`` on a terminal: as many columns as fit its width, the first column repeated
      in each further block of columns (nothing is cut to "M0…"); wide and short results
      (more than 8 columns, at most 8 rows) are turned to one line per field first;
    - ``table`` when stdout is not a terminal (a pipe, a file): plain aligned text, no box
      drawing, no colour, no cell ever cut;
    - ``json``: a list of objects; ``csv``: a header (``columns``, else the first row's keys)
      and one line per row.

    With no rows, a table prints ``empty`` (what is missing and how to fill it) as one line on
    stderr, so a pipe receives nothing.
    """
    check_format(fmt)
    if fmt == "json":
        typer.echo(dumps_json(list(rows)))
        return
    columns = list(columns or (rows[0] if rows else []))
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        if columns:
            writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if v is None else _plain(v) for k, v in r.items()})
        typer.echo(buf.getvalue(), nl=False)
        return
    if not rows:
        err_console.print(Text(empty or f"no {title or 'rows'} to show"), soft_wrap=True)
        return
    if len(columns) > 8 and len(rows) <= 8 and len({str(r[columns[0]]) for r in rows}) == len(rows):
        rows, columns = _transpose(rows, columns)
    print_table(rows, columns, title=title)


def render_sections(sections: dict[str, Sequence[dict[str, Any]]], fmt: str) -> None:
    """Several tables as one answer: titled tables; JSON ``{title: rows}``; one CSV whose first
    column ``section`` names each row's table (the union of the tables' columns after it)."""
    check_format(fmt)
    if fmt == "json":
        typer.echo(dumps_json({k: list(v) for k, v in sections.items()}))
        return
    if fmt == "csv":
        columns = ["section"]
        for rows in sections.values():
            columns += [c for r in rows[:1] for c in r if c not in columns]
        flat = [{"section": title, **r} for title, rows in sections.items() for r in rows]
        render_rows(flat, "csv", columns=columns)
        return
    for title, rows in sections.items():
        render_rows(rows, "table", title=title, empty=f"{title}: none")


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, title=None) -> None:
    """Rows as a Rich table that fits the terminal, or plain text when stdout is not one."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    numeric = [bool(rows) and all(_is_number(r.get(c)) or r.get(c) is None for r in rows)
               for c in columns]  # fmt: skip
    if not console.is_terminal:
        typer.echo(plain_table(columns, cells, numeric, title=title))
        return
    keys = next((i for i, num in enumerate(numeric) if num), len(columns))  # leading labels
    for n, group in enumerate(column_groups(columns, cells, console.width, min(keys, 2))):
        table = Table(title=title if n == 0 else None, title_justify="left")
        for i in group:
            table.add_column(columns[i], justify="right" if numeric[i] else "left",
                             overflow="fold")  # fmt: skip
        for row in cells:
            table.add_row(*(row[i] for i in group))
        console.print(table)


def column_groups(
    columns: Sequence[str], cells: Sequence[Sequence[str]], width: int, keys: int = 1
) -> list[list[int]]:
    """Split column indices into blocks whose Rich table fits ``width``; every block after the
    first starts again with the first ``keys`` columns, so each row can still be told apart.

    >>> column_groups(["id", "a", "b"], [["x", "1" * 30, "2" * 30]], 80)
    [[0, 1, 2]]
    >>> column_groups(["id", "a", "b"], [["x", "1" * 30, "2" * 30]], 50)
    [[0, 1], [0, 2]]
    """
    natural = [max([len(str(c)), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    keys = max(1, min(keys, len(columns) - 1)) if len(columns) > 1 else 1
    head = list(range(keys))
    base = 1 + sum(natural[i] + 3 for i in head)
    groups, current, used = [], list(head), base
    for i in range(keys, len(columns)):
        need = natural[i] + 3
        if used + need > width and len(current) > keys:
            groups.append(current)
            current, used = list(head), base
        current.append(i)
        used += need
    groups.append(current)
    return groups


def plain_table(
    columns: Sequence[str], cells: Sequence[Sequence[str]], numeric: Sequence[bool], *, title=None
) -> str:
    """Aligned text without box drawing (for pipes and files): two spaces between columns.

    >>> print(plain_table(["a", "n"], [["x", "1"], ["yy", "10"]], [False, True]))
    a    n
    x    1
    yy  10
    """
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]

    def line(values):
        out = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(out).rstrip()

    text = [line(columns), *(line(row) for row in cells)]
    return "\n".join(([title] if title else []) + text)


def _cell(value: Any) -> str:
    return "—" if value is None else str(_plain(value))


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
    if isinstance(value, str):  # figures already formatted for people: 1,234.50, 8.8%, ¥3
        return bool(_FIGURE.match(value))
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


_FIGURE = re.compile(r"^[-+−]?¥?[\d,]+(\.\d+)?%?$")
