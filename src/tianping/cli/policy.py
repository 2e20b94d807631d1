"""``tianping policy``: validate, show, evaluate and replay refund policies (decision tables).

POLICY arguments take a file (``.yaml``/``.json``) or a built-in name (``tianping policy list``).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import typer

policy_app = typer.Typer(no_args_is_help=True, help="Refund policies as versioned decision tables.")


def register(app: typer.Typer) -> None:
    """Add the ``tianping policy …`` command group to the root command (called once at start-up)."""
    app.add_typer(policy_app, name="policy")


@policy_app.command("list")
def list_policies(fmt: str = typer.Option("table", "--format", help="table | json | csv")) -> None:
    """List the built-in policies with their versions."""
    from tianping.aftersales.policy import builtin_names, load_builtin
    from tianping.cli.common import render_rows

    rows = [_summary(load_builtin(n)) for n in builtin_names()]
    render_rows(rows, fmt, title="built-in policies")


@policy_app.command("validate")
def validate(policy: str = typer.Argument(..., help="Policy file or built-in name.")) -> None:
    """Check a policy: fields, bounds, overlaps, gaps, category scope, buyer-score monotonicity.

    Exits 1 with every error (each naming its rules and the input region) when invalid.
    """
    from tianping.aftersales.policy import resolve_policy
    from tianping.aftersales.policy_table import negotiation_text
    from tianping.cli.common import console

    p = resolve_policy(policy)
    console.print(f"ok: {p.name} version {p.version} ({len(p.rules)} rules)", soft_wrap=True)
    if negotiation_text(p):
        console.print(negotiation_text(p), soft_wrap=True)
    for w in p.warnings:
        console.print(f"warning: {w}", soft_wrap=True)


@policy_app.command("show")
def show(
    policy: str = typer.Argument(..., help="Policy file or built-in name."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Print a policy's rules in evaluation order (priority high to low)."""
    from tianping.aftersales.policy import resolve_policy
    from tianping.aftersales.policy_table import rule_rows
    from tianping.cli.common import render_rows

    p = resolve_policy(policy)
    render_rows(rule_rows(p), fmt, title=f"{p.name} — {p.title} (version {p.short_version})")


@policy_app.command("evaluate")
def evaluate_cmd(
    policy: str = typer.Argument(..., help="Policy file or built-in name."),
    input_json: str = typer.Option(
        ..., "--input", help="The request as JSON (RefundInputs fields), or a path to a JSON file."
    ),
) -> None:
    """Decide one request and print the decision with its explanation, as JSON."""
    from tianping.aftersales.policy import RefundInputs, evaluate, resolve_policy
    from tianping.errors import InvalidInput

    text = Path(input_json).read_text("utf-8") if Path(input_json).is_file() else input_json
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--input is not valid JSON: {exc}", field="input") from None
    if not isinstance(data, dict):
        raise InvalidInput("--input must be a JSON object", field="input")
    decision = evaluate(resolve_policy(policy), RefundInputs.from_mapping(data))
    typer.echo(json.dumps(decision.to_dict(), indent=2, ensure_ascii=False))


@policy_app.command("replay")
def replay_cmd(
    ctx: typer.Context,
    policy: str = typer.Argument(..., help="Policy file or built-in name."),
    against: str | None = typer.Option(None, help="A second policy to compare with."),
    start: datetime = typer.Option(..., "--from", formats=["%Y-%m-%d"], help="First day (UTC)."),
    end: datetime = typer.Option(..., "--to", formats=["%Y-%m-%d"], help="Last day, included."),
    scores_as_of: datetime | None = typer.Option(
        None, formats=["%Y-%m-%d"], help="Date the scores are taken at (default: --from)."
    ),
    sample: int = typer.Option(10, min=0, help="Changed decisions to show."),
    seed: int = typer.Option(0, help="Seed of the sample."),
    split: str | None = typer.Option(
        None,
        help="Also A/B test POLICY against --against: an experiment of this name splits buyers.",
    ),
    appeals: bool = typer.Option(
        True,
        help="Without the simulator's ground truth, judge the two-sided errors by the merchant "
        "appeals decided in the store (when the home has one).",
    ),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Decide the warehouse's past refund requests again under POLICY (and --against).

    Prints the auto-decision rate, money refunded by who pays, abuse loss (where the simulator
    recorded abuse truth), the two-sided errors (honest buyers refused, abusive claims paid,
    merchant loss, platform cost, time to money) and the decisions that change between the two
    policies; with --split, each policy's outcome on the half of the buyers the experiment
    assigns it.
    """
    from tianping.aftersales.policy import resolve_policy
    from tianping.aftersales.replay import replay, report_sections
    from tianping.cli.common import check_format, render_sections, settings_of, warehouse_of

    check_format(fmt)
    base, other = resolve_policy(policy), resolve_policy(against) if against else None
    outcomes = _appeal_outcomes(ctx) if appeals else None
    with warehouse_of(ctx) as wh:
        report = replay(
            wh, base, start=_day(start), end=_day(end), against=other, scores_as_of=scores_as_of,
            sample=sample, seed=seed, currency=settings_of(ctx).currency, split=split,
            appeals=outcomes,
        )  # fmt: skip
    sections = report_sections(report)
    if fmt == "json":
        typer.echo(json.dumps(sections, indent=2, ensure_ascii=False, default=str))
        return
    render_sections({title: rows for title, rows in sections.items() if rows}, fmt)


def _appeal_outcomes(ctx: typer.Context) -> dict[str, bool] | None:
    """The store's decided merchant appeals, or None on a home without a store."""
    from tianping.cli.common import store_session
    from tianping.errors import NoData
    from tianping.refunds.service import appeal_outcomes

    try:
        with store_session(ctx, write=False) as session:
            return appeal_outcomes(session=session)
    except NoData:
        return None


def _day(value: datetime) -> date:
    return value.date()


def _summary(p) -> dict[str, object]:
    return {"name": p.name, "title": p.title, "rules": len(p.rules), "version": p.short_version}
