"""``tianping metrics``: headline metrics per period, and why GMV moved."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import typer

from tianping.errors import UsageError

metrics_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    help="Headline metrics per period (docs/metrics.md); `explain` says why GMV moved.",
)


def register(app: typer.Typer) -> None:
    """Add the ``tianping metrics …`` command group to the root command (called once at start-up)."""
    app.add_typer(metrics_app, name="metrics")


def parse_day(value: str | None, option: str) -> date | None:
    """An ISO date; ``YYYY-MM`` means the month's first day, ``YYYY`` the year's."""
    if value is None:
        return None
    text = value.strip()
    try:
        if len(text) == 4:
            return date(int(text), 1, 1)
        if len(text) == 7:
            return date.fromisoformat(text + "-01")
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{option} {value!r} is not a date (YYYY-MM-DD, YYYY-MM or YYYY)", field=option
        ) from None


@metrics_app.callback()
def metrics(
    ctx: typer.Context,
    grain: str = typer.Option("day", help="day | week | month | year"),
    start: str | None = typer.Option(None, "--from", help="First day (default: first data)."),
    end: str | None = typer.Option(None, "--to", help="Last day, inclusive (default: last data)."),
    by: str | None = typer.Option(None, help="Slice by an orders column, e.g. category."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Print GMV, orders, buyers, AOV, DAC, DAU, new buyers, packages, door delivery rate,
    refund rates, review score, NPS and 30-day repurchase per period."""
    if ctx.invoked_subcommand is not None:
        return
    from tianping.cli.common import check_format, render_rows, warehouse_of
    from tianping.metrics.periods import check_grain
    from tianping.metrics.service import compute_metrics

    check_format(fmt)
    first, last = parse_day(start, "--from"), parse_day(end, "--to")
    check_grain(grain)
    with warehouse_of(ctx) as wh:
        rows = compute_metrics(wh, grain, first, last, by)
    render_rows(
        _display(rows) if fmt == "table" else rows,
        fmt,
        title=f"metrics by {grain}",
        empty="no orders in that window: leave out --from/--to to see every period",
    )


def _display(rows: list[dict]) -> list[dict]:
    pct = {"door_delivery_rate", "refund_rate", "refund_amount_rate", "repurchase_30d"}
    out = []
    for r in rows:
        shown = {}
        for k, v in r.items():
            if isinstance(v, float | Decimal):
                shown[k] = f"{v:.1%}" if k in pct else f"{v:,.2f}"
            elif isinstance(v, int) and not isinstance(v, bool):
                shown[k] = f"{v:,}"
            else:
                shown[k] = v
        out.append(shown)
    return out


def _snapshot(span: tuple[date, date], snap) -> dict:
    return {
        "from": span[0],
        "to": span[1],
        "gmv": round(snap.gmv, 2),
        "orders": snap.orders,
        "buyers": snap.buyers,
    }


@metrics_app.command("explain")
def explain(
    ctx: typer.Context,
    start: str = typer.Option(..., "--from", help="A day in the earlier period."),
    end: str = typer.Option(..., "--to", help="A day in the later period."),
    grain: str = typer.Option("month", help="The periods compared: day | week | month | year."),
    by: str = typer.Option("category", help="The dimension whose movers are ranked."),
    top: int = typer.Option(10, help="How many movers to list."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Split the change of GMV between two periods into buyers × orders per buyer × AOV, and
    rank the values of --by (categories by default) that moved it most."""
    from tianping.cli.common import (
        check_format,
        console,
        dumps_json,
        render_rows,
        render_sections,
        warehouse_of,
    )
    from tianping.metrics.periods import check_grain, period_end, period_start
    from tianping.metrics.service import explain_gmv

    check_format(fmt)
    a, b = parse_day(start, "--from"), parse_day(end, "--to")
    check_grain(grain)
    before = (period_start(a, grain), period_end(period_start(a, grain), grain))
    after = (period_start(b, grain), period_end(period_start(b, grain), grain))
    with warehouse_of(ctx) as wh:
        result, movers = explain_gmv(wh, before, after, dimension=by, top=top)
    report = {
        "before": _snapshot(before, result.before),
        "after": _snapshot(after, result.after),
        "gmv_change": round(result.change, 2),
        "method": result.method,
        "contributions": {k: round(v, 2) for k, v in result.contributions.items()},
        "movers": [
            {
                by: m.value,
                "gmv_before": round(m.gmv_before, 2),
                "gmv_after": round(m.gmv_after, 2),
                "change": round(m.change, 2),
                "share_of_change": None
                if m.share_of_change is None
                else round(m.share_of_change, 4),
            }
            for m in movers
        ],
    }
    if fmt == "json":
        typer.echo(dumps_json(report))
        return
    factors = [
        {"factor": k, "before": round(result.before.factors[k], 4),
         "after": round(result.after.factors[k], 4), "contribution": round(v, 2)}
        for k, v in result.contributions.items()
    ]  # fmt: skip
    if fmt == "csv":
        render_sections({"contributions": factors, "movers": report["movers"]}, "csv")
        return
    console.print(
        f"GMV {result.before.gmv:,.2f} ({before[0]}…{before[1]}) → {result.after.gmv:,.2f} "
        f"({after[0]}…{after[1]}): change {result.change:+,.2f}"
    )
    render_rows(factors, "table", title="contributions")
    render_rows(report["movers"], "table", title=f"{by} that moved GMV most",
                empty=f"no {by} moved GMV")  # fmt: skip
