"""``tianping ledger check``: audit the double-entry ledger and the orders' refunded cash."""

from __future__ import annotations

import typer

ledger_app = typer.Typer(no_args_is_help=True, help="The double-entry ledger.")


def register(app: typer.Typer) -> None:
    """Add the ``tianping ledger …`` command group to the root command (called once at start-up)."""
    app.add_typer(ledger_app, name="ledger")


@ledger_app.command("check")
def check(
    ctx: typer.Context,
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Every transfer sums to zero, no order is over-refunded, no restricted account is negative.

    Also: no red packet is paid out as cash, each order's refunded cash matches its ledger, the
    merchant protection fund's running balance never went below zero, and its payouts are
    exactly the upheld merchant appeals (one each, of the refund's amount).
    Exits 1 listing every violation; prints a one-line summary when all rules hold.
    """
    from tianping.cli.common import check_format, console, render_rows, store_session
    from tianping.refunds.reconcile import audit, ledger_summary

    check_format(fmt)
    with store_session(ctx, write=False) as session:
        found = audit(session=session)
        summary = ledger_summary(session=session)
    if not found:
        console.print(
            f"ok: {summary['transfers']} transfers, {summary['entries']} entries, "
            f"{summary['orders']} orders: balanced, none over-refunded, no restricted "
            "account negative, the protection fund never below zero and its payouts equal "
            "the upheld appeals",
            soft_wrap=True,
        )
        return
    rows = [{"check": v.check, "subject": v.subject, "detail": v.detail} for v in found]
    render_rows(rows, fmt, title=f"{len(found)} ledger violation(s)")
    raise typer.Exit(1)


fund_app = typer.Typer(
    no_args_is_help=True,
    help="The merchant protection fund: filled by approved spend decisions, paying upheld "
    "merchant appeals.",
)
ledger_app.add_typer(fund_app, name="fund")


@fund_app.command("show")
def fund_show(
    ctx: typer.Context,
    limit: int = typer.Option(20, min=1, max=1000, help="Latest movements to list."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Each currency's balance, what came in and went out, and the latest movements."""
    from tianping.cli.common import check_format, console, dumps_json, render_rows, store_session
    from tianping.refunds.fund import view
    from tianping.report.figures import money

    check_format(fmt)
    with store_session(ctx, write=False) as session:
        fund = view(session=session, limit=limit)
    if fmt == "json":
        typer.echo(dumps_json(fund))
        return
    if fmt == "table":  # the dashboard's figures, written the same way
        for f in fund["funds"]:
            cur = f["currency"]
            console.print(
                f"protection fund {cur}: {money(f['balance_minor'], cur, minor=True)} held; "
                f"{f['top_ups']} top-up(s) {money(f['topped_up_minor'], cur, minor=True)}, "
                f"{f['payouts']} payout(s) {money(f['paid_out_minor'], cur, minor=True)}",
                soft_wrap=True,
                highlight=False,
            )
    rows = [
        {"at": m["at"] if fmt == "csv" else f"{m['at']:%Y-%m-%d %H:%M}", "kind": m["kind"], "amount": money(m["amount_minor"], m["currency"], minor=True),
         "refund": m["refund_id"] or "", "transfer": m["transfer"], "memo": m["memo"]}
        for m in fund["movements"]
    ]  # fmt: skip
    render_rows(
        rows, fmt, title=f"latest {len(rows)} of {fund['movement_count']} movement(s)",
        empty="the protection fund has no movements: propose a top-up with "
        "'tianping ledger fund top-up AMOUNT --purpose TEXT' and approve it",
    )  # fmt: skip


@fund_app.command("top-up")
def fund_top_up(
    ctx: typer.Context,
    amount: str = typer.Argument(..., help="The amount in major units (yuan), e.g. 200000."),
    purpose: str = typer.Option(..., help="Why the fund needs it (kept with the decision)."),
    currency: str = typer.Option("CNY", help="The amount's currency."),
    actor: str = typer.Option(
        ..., "--actor", envvar="TIANPING_ACTOR", help="Who proposes it (env TIANPING_ACTOR)."
    ),
    override: bool = typer.Option(False, help="Above the spend cap: ask the override role."),
) -> None:
    """Propose a spend decision that fills the fund when its quorum approves it.

    The fund is money the platform spends, so it goes through governance like any spend: the
    spend cap and quorum in force apply, and nothing enters the fund before approval.
    """
    from tianping.cli.common import console, store_session
    from tianping.cli.decision import _spend_amount
    from tianping.governance.service import Proposal, propose

    payload = {**_spend_amount(amount, currency), "purpose": purpose, "fund": "protection_fund"}
    title = f"Top up the merchant protection fund by {amount} {currency}"
    proposal = Proposal(title, "spend", payload, (), (), override)
    with store_session(ctx) as session:
        d = propose(proposal, session=session, actor=actor, key_id=None)
    if d.status != "pending":
        console.print(f"decision #{d.id} {d.status}: {d.status_reason}", soft_wrap=True)
        raise typer.Exit(1)
    console.print(
        f"decision #{d.id} proposed: needs {d.required} of {', '.join(d.approvers)} "
        f"by {d.expires_at:%Y-%m-%d %H:%M} UTC; the fund is filled when it is approved "
        f"('tianping decision approve {d.id} --actor NAME')",
        soft_wrap=True,
    )
