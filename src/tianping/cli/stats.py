"""``tianping stats``: analyse summary statistics and plan sample sizes."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

stats_app = typer.Typer(
    no_args_is_help=True,
    help="Statistics on per-arm summary statistics: analyze a JSON file, plan power.",
)

_TABLE_COLUMNS = (
    "treatment",
    "effect_size",
    "effect_size_ci_lower",
    "effect_size_ci_upper",
    "rel_effect_size",
    "rel_effect_size_ci_lower",
    "rel_effect_size_ci_upper",
    "pvalue",
    "pvalue_adjusted",
    "rel_pvalue",
    "rel_pvalue_adjusted",
    "chance_to_win",
    "risk",
    "variance_reduction",
)


def register(app: typer.Typer) -> None:
    """Add the ``tianping stats …`` command group to the root command (called once at start-up)."""
    app.add_typer(stats_app, name="stats")


@stats_app.command("analyze")
def analyze(
    file: str = typer.Argument(..., help="Summary-statistics JSON file ('-' for stdin)."),
    fmt: str = typer.Option("json", "--format", help="json (default) | table | csv."),
) -> None:
    """Analyse per-arm sums (first arm = control); see docs/experiments.md for the JSON.

    Prints, per treatment arm, effect_size, rel_effect_size, their interval bounds, pvalue
    and rel_pvalue (and their adjusted values; chance_to_win and risk for bayesian), plus srm_pvalue when
    planned_weights are given. Also takes regression covariates, quantile arms and strata
    (see docs/experiments.md). Invalid input exits 1 with a one-line error.
    """
    import json

    from tianping.cli.common import check_format, console, render_rows
    from tianping.stats import analyze_summary

    check_format(fmt)
    result = analyze_summary(_read_json(file))
    if fmt == "json":
        typer.echo(json.dumps(result, indent=2))
        return
    if "srm_pvalue" in result and fmt == "table":
        flag = " [bold red]SAMPLE RATIO MISMATCH[/]" if result["srm_flagged"] else ""
        console.print(f"srm_pvalue {result['srm_pvalue']:.4g}{flag}")
    rows = [{k: _short(c[k]) for k in _TABLE_COLUMNS if k in c} for c in result["comparisons"]]
    title = f"{result['metric_type']} · {result['method']} · alpha {result['alpha']:g}"
    render_rows(rows, fmt, title=title)


@stats_app.command("power")
def power(
    metric_type: str = typer.Option(..., help="proportion | mean."),
    baseline: float = typer.Option(..., help="Control's rate (proportion) or mean."),
    mde: float | None = typer.Option(None, help="Effect to detect: gives the sample size."),
    relative: bool = typer.Option(
        False, "--relative", help="Read --mde as a fraction of the baseline."
    ),
    units: int | None = typer.Option(None, help="Control units available: gives the MDE instead."),
    sd: float | None = typer.Option(None, help="Per-unit standard deviation (mean metrics)."),
    alpha: float = typer.Option(0.05, help="Significance level."),
    power_: float = typer.Option(0.8, "--power", help="Target power."),
    ratio: float = typer.Option(1.0, help="Treatment units per control unit."),
    arms: int = typer.Option(2, help="Arms including the control."),
    alternative: str = typer.Option("two-sided", help="two-sided | greater | less."),
    daily_units: float | None = typer.Option(
        None, help="Eligible units per day, all arms: gives the runtime."
    ),
    fmt: str = typer.Option("table", "--format", help="table | json | csv."),
) -> None:
    """Sample size for an MDE (--mde), or the MDE for a sample (--units), and the runtime."""
    from dataclasses import asdict

    from tianping.cli.common import check_format, render_rows
    from tianping.errors import UsageError
    from tianping.stats import minimum_detectable_effect, sample_size

    check_format(fmt)
    common = dict(
        sd=sd,
        alpha=alpha,
        power=power_,
        ratio=ratio,
        arms=arms,
        alternative=alternative,
        daily_units=daily_units,
    )
    if (mde is None) == (units is None):
        raise UsageError("give exactly one of --mde (for a sample size) or --units (for an MDE)")
    if mde is not None:
        plan = sample_size(metric_type, baseline, mde, relative=relative, **common)
    else:
        plan = minimum_detectable_effect(metric_type, baseline, units, **common)
    row = {k: _short(v) for k, v in asdict(plan).items()}
    render_rows([row], fmt, title="power plan")


def _read_json(file: str):
    import json

    from tianping.errors import InvalidInput, UsageError

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}", field="file") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{file} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            field="file",
        ) from None


def _short(value):
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value
