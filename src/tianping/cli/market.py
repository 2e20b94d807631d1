"""``tianping market``: competitor and market figures, and how we compare."""

from __future__ import annotations

from pathlib import Path

import typer

market_app = typer.Typer(no_args_is_help=True, help="Market and competitor figures.")


def register(app: typer.Typer) -> None:
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
    period: str | None = typer.Option(None, help="Market period (default: the latest)."),
    ours_from: str | None = typer.Option(None, "--ours-from", help="Our window start."),
    ours_to: str | None = typer.Option(None, "--ours-to", help="Our window end."),
    project: bool = typer.Option(
        False, help="Scale our GMV and packages from the days we cover to the period's length."
    ),
    as_name: str = typer.Option("tianping", "--as", help="Our platform's name in the table."),
    fmt: str = typer.Option("table", "--format", help="table | json"),
) -> None:
    """Our figures beside each platform's: share, rank, gap and growth."""
    from tianping.cli.common import console, render_rows, store_session, warehouse_of
    from tianping.cli.metrics import parse_day
    from tianping.market.service import compare_with_market

    with store_session(ctx) as session, warehouse_of(ctx) as wh:
        label, ours, rows = compare_with_market(
            wh,
            session=session,
            period=period,
            ours_from=parse_day(ours_from, "--ours-from"),
            ours_to=parse_day(ours_to, "--ours-to"),
            project=project,
        )
    table = [_row(c) for c in rows]
    flat = [r for c in rows for r in _rows(c, as_name)]
    if fmt == "json":
        from tianping.cli.common import dumps_json

        typer.echo(
            dumps_json(
                {
                    "period": label,
                    "ours_from": ours.start,
                    "ours_to": ours.end,
                    "coverage": ours.coverage,
                    "projected": ours.projected,
                    "comparisons": table,
                }
            )
        )
        return
    if ours.coverage == 0:
        console.print(
            f"market period {label}: we have no data in it (use --ours-from/--ours-to "
            "and --project to compare another window)"
        )
    else:
        note = ", projected to the whole period" if ours.projected else ""
        console.print(
            f"market period {label}; our data {ours.start}…{ours.end}, "
            f"covering {ours.coverage:.0%} of it{note}"
        )
    render_rows(flat, "table", title=f"{as_name} against the market")


def _row(c) -> dict:
    return {
        "metric": c.metric,
        "ours": c.ours,
        "share": c.share,
        "rank": c.rank,
        "platforms": c.platforms,
        "our_growth": c.our_growth,
        "competitors": [
            {
                "platform": g.platform,
                "value": g.theirs,
                "gap": g.gap,
                "ratio": g.ratio,
                "growth": g.their_growth,
            }
            for g in c.gaps
        ],
    }


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
