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


def _periods(
    start: str | None, end: str | None, grain: str, event: str | None, year: int | None
) -> tuple[tuple[date, date], tuple[date, date]] | None:
    """The two periods of --from/--to at --grain, or None when --event (with --year) is given."""
    from tianping.metrics.periods import check_grain, period_end, period_start

    if event is not None:
        if start is not None or end is not None:
            raise UsageError(
                "--event compares the event's windows a year apart; leave out --from and --to",
                field="event",
            )
        if year is None:
            raise UsageError(
                "--event needs --year: the later year, compared with the year before",
                field="year",
            )
        return None
    if start is None or end is None:
        raise UsageError(
            "give --from and --to (a day in each period), or --event with --year",
            field="from" if start is None else "to",
        )
    a, b = parse_day(start, "--from"), parse_day(end, "--to")
    check_grain(grain)
    before = (period_start(a, grain), period_end(period_start(a, grain), grain))
    after = (period_start(b, grain), period_end(period_start(b, grain), grain))
    return before, after


def _aligned(last, this, comparison, unit: int) -> dict:
    """What the CLI prints about an aligned comparison (money in major units)."""
    lo, hi = comparison.ratio_interval
    c_lo, c_hi = comparison.change_interval
    return {
        "event": this.key,
        "year": this.year,
        "before": {"from": last.start, "to": last.end, "peak": last.peak,
                   "gmv": comparison.before_minor / unit},
        "after": {"from": this.start, "to": this.end, "peak": this.peak,
                  "gmv": comparison.after_minor / unit},
        "gmv_change": comparison.change_minor / unit,
        "gmv_change_low": round(c_lo / unit, 2),
        "gmv_change_high": round(c_hi / unit, 2),
        "gmv_ratio": round(comparison.ratio, 4),
        "gmv_ratio_low": round(lo, 4),
        "gmv_ratio_high": round(hi, 4),
        "confidence": 1 - comparison.alpha,
    }  # fmt: skip


def _aligned_line(a: dict) -> str:
    return (
        f"{a['after']['from']}…{a['after']['to']} against {a['before']['from']}…"
        f"{a['before']['to']} (day by day from the peak, {a['after']['peak']} and "
        f"{a['before']['peak']}): GMV {a['before']['gmv']:,.2f} → {a['after']['gmv']:,.2f}, "
        f"×{a['gmv_ratio']:.4f} [{a['gmv_ratio_low']:.4f}, {a['gmv_ratio_high']:.4f}] "
        f"({a['confidence']:.0%} interval); change {a['gmv_change']:+,.2f} "
        f"[{a['gmv_change_low']:+,.2f}, {a['gmv_change_high']:+,.2f}]"
    )


@metrics_app.command("explain")
def explain(
    ctx: typer.Context,
    start: str | None = typer.Option(None, "--from", help="A day in the earlier period."),
    end: str | None = typer.Option(None, "--to", help="A day in the later period."),
    grain: str = typer.Option("month", help="The periods compared: day | week | month | year."),
    event: str | None = typer.Option(
        None,
        help="Compare an event's window with the year before's (double11, 618, "
        "spring_festival or a campaign of --calendar) instead of --from/--to.",
    ),
    year: int | None = typer.Option(None, help="With --event: the later year."),
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
        settings_of,
        warehouse_of,
    )
    from tianping.metrics.calendar import load_calendar
    from tianping.metrics.service import explain_gmv
    from tianping.metrics.why import compare_event

    check_format(fmt)
    periods = _periods(start, end, grain, event, year)
    aligned = None
    with warehouse_of(ctx) as wh:
        if periods is None:
            calendar = load_calendar(settings_of(ctx).calendar)
            last, this, comparison = compare_event(wh, calendar, event, year)
            aligned = _aligned(last, this, comparison, 10**wh.scale)
            periods = (last.start, last.end), (this.start, this.end)
        before, after = periods
        result, movers = explain_gmv(wh, before, after, dimension=by, top=top)
    report = {
        **({"aligned": aligned} if aligned else {}),
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
    if aligned:
        console.print(f"{event} {year}: " + _aligned_line(aligned))
    else:
        console.print(
            f"GMV {result.before.gmv:,.2f} ({before[0]}…{before[1]}) → {result.after.gmv:,.2f} "
            f"({after[0]}…{after[1]}): change {result.change:+,.2f}"
        )
    render_rows(factors, "table", title="contributions")
    render_rows(report["movers"], "table", title=f"{by} that moved GMV most",
                empty=f"no {by} moved GMV")  # fmt: skip


@metrics_app.command("why")
def why(
    ctx: typer.Context,
    start: str | None = typer.Option(None, "--from", help="A day in the earlier period."),
    end: str | None = typer.Option(None, "--to", help="A day in the later period."),
    grain: str = typer.Option("month", help="The periods compared: day | week | month | year."),
    event: str | None = typer.Option(
        None,
        help="Compare an event's window with the year before's (double11, 618, "
        "spring_festival or a campaign of --calendar) instead of --from/--to.",
    ),
    year: int | None = typer.Option(None, help="With --event: the later year."),
    dims: str = typer.Option(
        "category,channel,delivery_mode,buyer_type", help="Dimensions to combine, comma-separated."
    ),
    depth: int = typer.Option(3, help="Combine up to this many dimensions (1-3)."),
    alpha: float = typer.Option(0.05, help="Chance of any false cause when nothing changed."),
    top: int = typer.Option(10, help="How many causes to list."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Which segments (combinations of up to three dimensions) moved GMV between two periods,
    mix separated from rate, each above the day-to-day noise floor (docs/metrics.md)."""
    from tianping.cli.common import (
        check_format,
        console,
        dumps_json,
        render_rows,
        settings_of,
        warehouse_of,
    )
    from tianping.metrics.calendar import load_calendar
    from tianping.metrics.why import cause_rows, explain_event, explain_segments

    check_format(fmt)
    periods = _periods(start, end, grain, event, year)
    names = tuple(d.strip() for d in dims.split(",") if d.strip())
    aligned = None
    with warehouse_of(ctx) as wh:
        unit = 10**wh.scale
        if periods is None:
            calendar = load_calendar(settings_of(ctx).calendar)
            ev = explain_event(wh, calendar, event, year, names, depth=depth, alpha=alpha, top=top)
            found, aligned = ev.explanation, _aligned(ev.before, ev.after, ev.comparison, unit)
            periods = (ev.before.start, ev.before.end), (ev.after.start, ev.after.end)
        else:
            found = explain_segments(wh, *periods, names, depth=depth, alpha=alpha, top=top)
        rows = cause_rows(found, wh.scale)
    before, after = periods
    summary = {
        **({"aligned": aligned} if aligned else {}),
        "before": {"from": before[0], "to": before[1], "gmv": found.gmv_before / unit},
        "after": {"from": after[0], "to": after[1], "gmv": found.gmv_after / unit},
        "gmv_change": found.change / unit,
        "segments_tested": found.tested,
        "critical_value": round(found.critical, 4),
        "alpha": found.alpha,
    }
    if fmt == "json":
        typer.echo(dumps_json({**summary, "causes": rows}))
        return
    if fmt == "table":
        if aligned:
            console.print(f"{event} {year}: " + _aligned_line(aligned))
        console.print(
            f"GMV {summary['before']['gmv']:,.2f} ({before[0]}…{before[1]}) → "
            f"{summary['after']['gmv']:,.2f} ({after[0]}…{after[1]}): change "
            f"{summary['gmv_change']:+,.2f}; {found.tested} segments tested, floor "
            f"{found.critical:.2f} standard errors"
        )
    render_rows(rows, fmt, title="segments that moved GMV (own = mix + rate)",
                empty="no segment moved GMV above the day-to-day noise")  # fmt: skip


@metrics_app.command("bridge")
def bridge(
    ctx: typer.Context,
    start: str = typer.Option(..., "--from", help="A day in the earlier period."),
    end: str = typer.Option(..., "--to", help="A day in the later period."),
    grain: str = typer.Option("month", help="The periods compared: day | week | month | year."),
    metric: str = typer.Option("gmv", help="gmv | net_gmv (GMV less the money refunded)."),
    holdout: float = typer.Option(
        0.0,
        help="The global holdout's share of buyers (as in `experiment snapshot`), to "
        "measure shipped experiments against; 0: not measured.",
    ),
    holdout_salt: str = typer.Option("global-holdout", help="Salt of the holdout draw."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Split a metric's change between two periods into calendar, market, shipped experiments,
    refund-policy versions and residual: whole minor units that add up to the change exactly,
    each with its evidence (docs/metrics.md)."""
    from contextlib import nullcontext

    from tianping.attribution.service import bridge_rows, bridge_summary, change_bridge
    from tianping.cli.common import (
        check_format,
        console,
        dumps_json,
        render_rows,
        settings_of,
        store_session,
        warehouse_of,
    )
    from tianping.experiments.assignment import Holdout
    from tianping.metrics.calendar import load_calendar

    check_format(fmt)
    before, after = _periods(start, end, grain, None, None)
    if not 0 <= holdout < 1:
        raise UsageError(f"--holdout must be from 0 to below 1, not {holdout}", field="holdout")
    hold = Holdout(holdout_salt, holdout) if holdout > 0 else None
    settings = settings_of(ctx)
    calendar = load_calendar(settings.calendar)
    no_store = settings.store_file is not None and not settings.store_file.exists()
    reading = nullcontext() if no_store else store_session(ctx, write=False)
    with reading as session, warehouse_of(ctx) as wh:
        found = change_bridge(wh, session=session, before=before, after=after, metric=metric,
                              calendar=calendar, holdout=hold)  # fmt: skip
        rows, summary = bridge_rows(found, wh.scale), bridge_summary(found, wh.scale)
    if fmt == "json":
        typer.echo(dumps_json({**summary, "parts": rows}))
        return
    shown = [{k: r[k] for k in ("kind", "part", "amount", "evidence", "note")} for r in rows]
    if fmt == "table":
        f, t = summary["from"], summary["to"]
        console.print(
            f"{metric} {f['value']:,.2f} ({f['start']}…{f['end']}) → {t['value']:,.2f} "
            f"({t['start']}…{t['end']}): change {summary['change']:+,.2f}, the sum of the parts"
        )
        for row in shown:
            row["amount"] = f"{row['amount']:+,.2f}"
    render_rows(shown, fmt, title=f"what moved {metric}")
    if fmt == "table":
        for note in summary["notes"]:
            console.print(f"note: {note}")
