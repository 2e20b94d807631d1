"""``tianping merchants quality`` and ``tianping products defects``."""

from __future__ import annotations

from pathlib import Path

import typer

merchants_app = typer.Typer(no_args_is_help=True, help="Merchant scores (docs/aftersales.md).")
products_app = typer.Typer(no_args_is_help=True, help="Product signals (docs/aftersales.md).")


def register(app: typer.Typer) -> None:
    """Add the ``tianping merchants …`` and ``tianping products …`` command groups to the root command."""
    app.add_typer(merchants_app, name="merchants")
    app.add_typer(products_app, name="products")


@merchants_app.command("quality")
def quality(
    ctx: typer.Context,
    merchant: list[str] = typer.Option([], help="Show this merchant's components (repeatable)."),
    as_of: str | None = typer.Option(None, help="Use history up to this UTC date-time."),
    limit: int = typer.Option(20, help="Show this many lowest scores (0 = all)."),
    output: Path | None = typer.Option(None, help="Write every merchant's score to this CSV."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Merchant quality score, 0–5, with every component's sub-score (lowest first)."""
    from tianping.aftersales.scoring import merchant_rows
    from tianping.cli.common import check_format, render_rows, warehouse_of
    from tianping.cli.credit import parse_as_of

    check_format(fmt)
    with warehouse_of(ctx) as wh:
        rows, _ = merchant_rows(
            wh, merchants=merchant, as_of=parse_as_of(as_of), limit=limit, output=output
        )
    render_rows(
        rows,
        fmt,
        title="merchant quality",
        empty="no orders in the warehouse yet: nothing to score",
    )


@products_app.command("defects")
def defects(
    ctx: typer.Context,
    k: float = typer.Option(2.0, help="Flag rates above k times the category's."),
    threshold: float = typer.Option(0.95, help="Posterior probability needed to flag."),
    min_refunds: int = typer.Option(3, help="Fewest quality refunds a flagged product has."),
    show_all: bool = typer.Option(False, "--all", help="List unflagged products too."),
    as_of: str | None = typer.Option(None, help="Use history up to this UTC date-time."),
    limit: int = typer.Option(20, help="Show this many rows (0 = all)."),
    output: Path | None = typer.Option(None, help="Write every listed product to this CSV."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Products whose quality refund rate is judged above k times their category's."""
    from tianping.aftersales.scoring import defect_rows
    from tianping.cli.common import check_format, console, render_rows, warehouse_of
    from tianping.cli.credit import parse_as_of

    check_format(fmt)
    with warehouse_of(ctx) as wh:
        rows, flagged = defect_rows(
            wh, k=k, threshold=threshold, min_refunds=min_refunds, flagged_only=not show_all,
            as_of=parse_as_of(as_of), limit=limit, output=output,
        )  # fmt: skip
    render_rows(
        rows,
        fmt,
        title="product-defect signal",
        empty="no orders in the warehouse yet: nothing to score",
    )
    if fmt == "table":
        console.print(f"{flagged:,} products flagged (k = {k:g}, threshold = {threshold:g})")
