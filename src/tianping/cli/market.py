"""``tianping market``: competitor and market figures, and how we compare."""

from __future__ import annotations

from pathlib import Path

import typer

market_app = typer.Typer(no_args_is_help=True, help="Market and competitor figures.")


def register(app: typer.Typer) -> None:
    """Add the ``tianping market …`` command group to the root command (called once at start-up)."""
    app.add_typer(market_app, name="market")


def example_file() -> Path:
    """The shipped example: annual GMV of the big platforms, each row citing its source."""
    return Path(__file__).resolve().parent.parent / "data" / "market_example.csv"


@market_app.command("import")
def import_(
    ctx: typer.Context,
    file: Path | None = typer.Argument(
        None,
        help="CSV: platform, period (YYYY, YYYY-Qn, YYYY-MM), gmv, buyers, dau, packages "
        "(any subset), source. Default: the shipped example.",
    ),
) -> None:
    """Import (or update) market figures; all-or-nothing."""
    from tianping.cli.common import console, store_session
    from tianping.market.service import import_figures

    with store_session(ctx) as session:
        s = import_figures(file or example_file(), session=session)
    console.print(
        f"{s.rows} figures: {s.inserted} new, {s.updated} updated, {s.unchanged} unchanged"
    )


@market_app.command("compare")
def compare_(
    ctx: typer.Context,
    period: str | None = typer.Option(
        None,
        help="Market period (default: the latest our data covers wholly, else in part; "
        "`tianping market periods` lists them).",
    ),
    ours_from: str | None = typer.Option(None, "--ours-from", help="Our window start."),
    ours_to: str | None = typer.Option(None, "--ours-to", help="Our window end."),
    project: bool = typer.Option(
        False, help="Scale our GMV and packages from the days we cover to the period's length."
    ),
    as_name: str = typer.Option("tianping", "--as", help="Our platform's name in the table."),
    fmt: str = typer.Option("table", "--format", help="table | json"),
) -> None:
    """Our figures beside each platform's: share, rank, gap and growth, like with like."""
    from tianping.cli.common import console, render_rows, store_session, warehouse_of
    from tianping.cli.metrics import parse_day
    from tianping.market.service import compare_with_market

    with store_session(ctx) as session, warehouse_of(ctx) as wh:
        view = compare_with_market(
            wh,
            session=session,
            period=period,
            ours_from=parse_day(ours_from, "--ours-from"),
            ours_to=parse_day(ours_to, "--ours-to"),
            project=project,
        )
    if fmt == "json":
        from tianping.cli.common import dumps_json

        typer.echo(dumps_json(view.to_dict()))
        return
    console.print(coverage_line(view))
    render_rows([r for c in view.comparisons for r in _rows(c, as_name)], "table",
                title=f"{as_name} against the market, {view.label}")  # fmt: skip
    for c in view.comparisons:
        if not c.comparable and c.ours is not None:
            console.print(f"{c.metric}: not compared: {c.basis}")


@market_app.command("periods")
def periods(
    ctx: typer.Context,
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Every market period with the days of it our data covers (which ones can be compared)."""
    from tianping.cli.common import check_format, render_rows, store_session, warehouse_of
    from tianping.market.service import period_coverage

    check_format(fmt)
    with store_session(ctx) as session, warehouse_of(ctx) as wh:
        rows = [c.to_dict() for c in period_coverage(wh, session=session)]
    if fmt == "table":
        rows = [{**r, "coverage": f"{r['coverage']:.0%}", "platforms": ", ".join(r["platforms"]),
                 "metrics": ", ".join(r["metrics"])} for r in rows]  # fmt: skip
    render_rows(rows, fmt, title="market periods")


def coverage_line(view) -> str:
    """One sentence: the period, the days of it our data covers, and whether projected."""
    if view.ours.covered_days == 0:
        return (
            f"market period {view.label}: we have no data in it (`tianping market periods` "
            "lists the periods we cover)"
        )
    note = ", flows projected to the whole period" if view.ours.projected else ""
    return (
        f"market period {view.label} ({view.period.start}…{view.period.end}); our data "
        f"{view.ours.start}…{view.ours.end}, {view.ours.covered_days} of {view.period.days} "
        f"days{note}"
    )


def human(v: float) -> str:
    """Compact display of large figures: 8.00T, 1.67T, 20.5K."""
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= size:
            return f"{v / size:,.2f}{suffix}"
    return f"{v:,.2f}"


def _rows(c, as_name: str) -> list[dict]:
    def fmt(v, pct=False):
        if v is None:
            return None
        return f"{v:.2%}" if pct else human(v)

    head = {
        "metric": c.metric,
        "platform": as_name,
        "value": fmt(c.ours),
        "share": fmt(c.share, True),
        "rank": f"{c.rank}/{c.platforms}" if c.rank else None,
        "gap": None,
        "growth": fmt(c.our_growth, True),
    }
    return [head] + [
        {
            "metric": c.metric,
            "platform": g.platform,
            "value": fmt(g.theirs),
            "share": None,
            "rank": None,
            "gap": fmt(g.gap),
            "growth": fmt(g.their_growth, True),
        }
        for g in c.gaps
    ]
