"""``tianping credit``: learned scorecards (train, score) and the expert buyer score."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

credit_app = typer.Typer(
    no_args_is_help=True,
    help="Buyer credit scores, 350–950: train and apply a learned scorecard on any labelled "
    "table, or score the warehouse's buyers with the expert scorecard (docs/aftersales.md).",
)


def register(app: typer.Typer) -> None:
    """Add the ``tianping credit …`` command group to the root command (called once at start-up)."""
    app.add_typer(credit_app, name="credit")


def parse_as_of(text: str | None) -> datetime | None:
    """An ISO date or date-time (UTC unless it says otherwise)."""
    from tianping.errors import UsageError

    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--as-of {text!r} is not an ISO date or date-time", field="as_of"
        ) from None


@credit_app.command("train")
def train(
    file: Path = typer.Argument(..., help="Labelled table: CSV or Parquet."),
    target: str = typer.Option(..., help="The label column."),
    bad: str = typer.Option(..., help="The label value that marks a bad row."),
    model: Path = typer.Option(..., help="Where to write the model (JSON)."),
    id_column: str | None = typer.Option(None, "--id", help="Identifier column (not a feature)."),
    categorical: list[str] = typer.Option([], help="Treat this numeric column as categories."),
    pdo: float = typer.Option(20.0, help="Points to double the good:bad odds."),
    base_score: float = typer.Option(600.0, help="Score at the base odds."),
    base_odds: float = typer.Option(50.0, help="Good:bad odds that score --base-score."),
    holdout: float = typer.Option(0.3, help="Fraction held out (stratified) for evaluation."),
    seed: int = typer.Option(0, help="Seed of the holdout split."),
    min_iv: float = typer.Option(0.02, help="Leave out columns with a smaller information value."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv: the discrimination."),
) -> None:
    """Train a scorecard (optimal binning, WoE, logistic regression) and print AUC, KS, Gini."""
    from tianping.aftersales.scorecard import Scaling, train_file
    from tianping.cli.common import check_format, console, render_rows
    from tianping.clock import SystemClock

    check_format(fmt)
    trained = train_file(
        file, model_path=model, target=target, bad=bad, id_column=id_column,
        categorical=categorical, scaling=Scaling(pdo, base_score, base_odds), holdout=holdout,
        seed=seed, min_iv=min_iv, trained_at=SystemClock().now(),
    )  # fmt: skip
    rows = [
        {"part": part, "rows": e.rows, "bad": e.bad, "auc": round(e.auc, 4), "ks": round(e.ks, 4),
         "gini": round(e.gini, 4)}
        for part, e in (("train", trained.train), ("holdout", trained.holdout))
    ]  # fmt: skip
    render_rows(rows, fmt, title="discrimination")
    if fmt != "table":
        return
    kept = ", ".join(f.name for f in trained.model.features)
    console.print(f"columns used: {kept}")
    for name, why in trained.dropped.items():
        console.print(f"left out {name}: {why}")
    console.print(f"model {trained.model.version[:12]} written to {model}")


@credit_app.command("score")
def score(
    model: Path = typer.Argument(..., help="Model file written by `credit train`."),
    file: Path = typer.Argument(..., help="Table to score: CSV or Parquet."),
    output: Path = typer.Option(..., help="Scores file (CSV, or Parquet by extension)."),
) -> None:
    """Write one row per input row, in order: the id column, score and probability_bad."""
    from tianping.aftersales.scorecard import score_file
    from tianping.cli.common import console

    rows = score_file(model, file, output)
    console.print(f"scored {rows:,} rows into {output}")


@credit_app.command("expert")
def expert(
    ctx: typer.Context,
    buyer: list[str] = typer.Option([], help="Explain this buyer's score (repeatable)."),
    as_of: str | None = typer.Option(None, help="Score history up to this UTC date-time."),
    limit: int = typer.Option(20, help="Show this many lowest scores (0 = all)."),
    points: bool = typer.Option(False, help="Show each characteristic's points."),
    output: Path | None = typer.Option(None, help="Write every buyer's score to this CSV."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Score the warehouse's buyers with the expert scorecard, lowest first."""
    from tianping.aftersales.scoring import credit_rows
    from tianping.cli.common import check_format, console, render_rows, warehouse_of

    check_format(fmt)
    with warehouse_of(ctx) as wh:
        rows, total = credit_rows(
            wh, buyers=buyer, as_of=parse_as_of(as_of), limit=limit, points=points, output=output
        )
    render_rows(rows, fmt, title="buyer credit (expert scorecard)")
    if output is not None and fmt == "table":
        console.print(f"{total:,} buyers written to {output}")
