"""Entry point of the ``tianping`` command.

Each module in :mod:`tianping.cli` (other than this one and ``common``) defines
``register(app)`` and adds its commands; heavy libraries are imported inside the commands so
``tianping --help`` stays fast. User errors (:class:`~tianping.errors.TianpingError`) are
printed as one line and end with the error's exit status, never a traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import typer
from typer.core import TyperGroup

import tianping.cli
from tianping import __version__
from tianping.cli.common import err_console, print_error
from tianping.errors import TianpingError
from tianping.settings import load_settings

#: Options of the root command that may also be written after the subcommand.
GLOBAL_OPTIONS = ("--home", "--warehouse", "--store", "--sources", "--calendar")


def hoist_global_options(args: list[str]) -> list[str]:
    """Move ``--home``, ``--warehouse``, ``--store``, ``--sources`` and ``--calendar`` given after the subcommand in front of
    it, where the root command reads them (``tianping metrics --home DIR`` means
    ``tianping --home DIR metrics``). Nothing after ``--`` moves; given twice, the later wins.

    >>> hoist_global_options(["goal", "history", "g", "--home", "h", "--format=json"])
    ['--home', 'h', 'goal', 'history', 'g', '--format=json']
    """
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        name = args[i].split("=", 1)[0]
        i += 2 if name in GLOBAL_OPTIONS and "=" not in args[i] else 1
    if i >= len(args):
        return list(args)
    head, rest, moved = list(args[:i]), [], []
    tail = args[i:]
    j = 0
    while j < len(tail):
        arg = tail[j]
        if arg == "--":
            rest += tail[j:]
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS and j > 0:
            take = 1 if "=" in arg else 2
            moved += tail[j : j + take]
            j += take
            continue
        rest.append(arg)
        j += 1
    return head + moved + rest


class _Group(TyperGroup):
    def parse_args(self, ctx, args):
        return super().parse_args(ctx, hoist_global_options(list(args)))

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TianpingError as exc:
            print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="tianping (天平): metrics against the market, experiments and horse races, "
    "refund decisions, a balanced ledger and quorum governance for a marketplace.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tianping {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None,
        help="Data folder (env TIANPING_HOME; default ./.tianping). Like --warehouse and "
        "--store, it may also follow the subcommand.",
    ),
    warehouse: str | None = typer.Option(
        None,
        help="duckdb | duckdb:///FILE | spark | local\\[N] | spark://HOST:PORT | an engine's "
        "URL read through --sources, e.g. postgres://USER@HOST/DB (env TIANPING_WAREHOUSE; "
        "default duckdb under home).",
    ),
    sources: Path | None = typer.Option(
        None,
        help="Sources file (YAML) mapping the event tables onto your own tables or files, read "
        "in place (env TIANPING_SOURCES; docs/data.md).",
    ),
    store: str | None = typer.Option(
        None, help="SQLAlchemy URL of the store (env TIANPING_STORE; default SQLite under home)."
    ),
    calendar: Path | None = typer.Option(
        None,
        help="Calendar file (YAML): your campaigns and event windows beside Double 11, 618 and "
        "Spring Festival (env TIANPING_CALENDAR; docs/metrics.md).",
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True),
) -> None:
    try:
        ctx.obj = load_settings(
            {
                "home": home,
                "warehouse": warehouse,
                "store": store,
                "sources": sources and str(sources),
                "calendar": calendar and str(calendar),
            }
        )
    except TianpingError as exc:
        print_error(exc)
        raise typer.Exit(exc.exit_code) from None


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(tianping.cli.__path__), key=lambda m: m.name):
        if info.name in {"main", "common"}:
            continue
        module = importlib.import_module(f"tianping.cli.{info.name}")
        module.register(app)


_register_all()


def main() -> None:
    """Console-script entry point."""
    app()
