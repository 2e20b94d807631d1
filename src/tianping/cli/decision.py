"""``tianping decision``: propose, approve, reject, show and list decisions; set the rules.

Until API keys exist the actor is a name (``--actor`` or ``TIANPING_ACTOR``) and ``--key-id``
the key it acted with, if any; both go to the audit log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

decision_app = typer.Typer(
    no_args_is_help=True,
    help="Decisions with their evidence: quorum approval, veto, expiry, spend caps "
    "(docs/governance.md).",
)
rules_app = typer.Typer(no_args_is_help=True, help="The quorum rules and spend cap in force.")
decision_app.add_typer(rules_app, name="rules")

ACTOR = typer.Option(..., "--actor", envvar="TIANPING_ACTOR", help="Who acts (env TIANPING_ACTOR).")
KEY_ID = typer.Option(None, "--key-id", help="The API key the actor used, if any.")
#: Evidence kinds read from the warehouse (the others come from the store).
WAREHOUSE_EVIDENCE = ("metric:", "experiment:", "policy-replay:")


def register(app: typer.Typer) -> None:
    """Add the ``tianping decision …`` command group to the root command (called once at start-up)."""
    app.add_typer(decision_app, name="decision")


@decision_app.command("propose")
def propose_(
    ctx: typer.Context,
    title: str = typer.Option(..., help="What is decided, in one line."),
    kind: str = typer.Option(
        ..., help="ship_experiment | ship_race_winner | refund_policy | spend | goal_change"
    ),
    actor: str = ACTOR,
    key_id: str | None = KEY_ID,
    evidence: list[str] = typer.Option(
        [],
        "--evidence",
        help="KIND:NAME read and frozen now: metric:gmv@month, experiment:X, "
        "race:X, goal:X, policy-replay:POLICY@START..END (repeatable).",
    ),  # fmt: skip
    attach: list[str] = typer.Option(
        [],
        "--attach",
        help="NAME=FILE.json attached as it is, e.g. an exported report (repeatable).",
    ),
    experiment: str | None = typer.Option(None, help="ship_experiment: the experiment."),
    race: str | None = typer.Option(None, help="ship_race_winner: the race."),
    variant: str | None = typer.Option(
        None, help="The variant to ship (race: default its winner)."
    ),
    policy: str | None = typer.Option(None, help="refund_policy: a built-in name or a file."),
    amount: str | None = typer.Option(None, help="spend: the amount in major units (yuan)."),
    currency: str = typer.Option("CNY", help="spend: the amount's currency."),
    purpose: str | None = typer.Option(None, help="spend: what the money is for."),
    override: bool = typer.Option(False, help="spend above the cap: ask the override role."),
    fund: str | None = typer.Option(
        None, help="spend: the reserve it fills when approved (protection_fund)."
    ),
    goal: str | None = typer.Option(None, help="goal_change: the goal's name."),
    metric: str | None = typer.Option(None, help="goal_change: the metric."),
    target: float | None = typer.Option(None, help="goal_change: the new target."),
    deadline: str | None = typer.Option(None, help="goal_change: the deadline (YYYY-MM-DD)."),
    grain: str = typer.Option("month", help="goal_change: the period the metric is read over."),
    reason: str | None = typer.Option(None, help="goal_change: why the goal is set or changed."),
) -> None:
    """Propose a decision; its evidence is frozen now, its quorum is the rules in force."""
    from contextlib import nullcontext

    from tianping.cli.common import console, store_session, warehouse_of
    from tianping.governance.service import Proposal, propose

    fields = {"experiment": experiment, "race": race, "variant": variant, "policy": policy,
              "purpose": purpose, "fund": fund, "goal": goal, "metric": metric, "target": target,
              "deadline": deadline, "grain": grain, "reason": reason}  # fmt: skip
    payload = {k: v for k, v in fields.items() if v is not None}
    if kind == "spend":
        payload.update(_spend_amount(amount, currency))
    proposal = Proposal(title, kind, payload, tuple(evidence), _documents(attach), override)
    needs_wh = any(ref.startswith(WAREHOUSE_EVIDENCE) for ref in evidence)
    with store_session(ctx) as session, warehouse_of(ctx) if needs_wh else nullcontext() as wh:
        d = propose(proposal, session=session, actor=actor, key_id=key_id, warehouse=wh,
                    policy_files=True)  # fmt: skip
    if d.status != "pending":
        console.print(f"decision #{d.id} {d.status}: {d.status_reason}", soft_wrap=True)
        return
    console.print(
        f"decision #{d.id} proposed: needs {d.required} of {', '.join(d.approvers)} "
        f"by {d.expires_at:%Y-%m-%d %H:%M} UTC; evidence frozen: {len(d.evidence)}"
    )


def _spend_amount(amount: str | None, currency: str) -> dict[str, Any]:
    from tianping.errors import InvalidInput
    from tianping.money import to_minor

    if amount is None:
        raise InvalidInput("a spend request needs --amount", field="--amount")
    return {"amount_minor": to_minor(amount, currency, field="--amount"), "currency": currency}


def _documents(attach: list[str]) -> tuple[tuple[str, Any], ...]:
    import json

    from tianping.errors import UsageError

    docs = []
    for item in attach:
        name, sep, path = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--attach {item!r} is not NAME=FILE.json", field="--attach")
        try:
            docs.append((name.strip(), json.loads(Path(path).read_text(encoding="utf-8"))))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise UsageError(f"cannot read JSON from {path}: {exc}", field="--attach") from None
    return tuple(docs)


@decision_app.command("approve")
def approve(
    ctx: typer.Context,
    decision_id: int = typer.Argument(..., help="The decision's number."),
    actor: str = ACTOR,
    key_id: str | None = KEY_ID,
    comment: str = typer.Option("", help="Why (kept in the audit log)."),
) -> None:
    """Approve a pending decision (the proposer cannot)."""
    _vote(ctx, decision_id, "approve", actor, key_id, comment)


@decision_app.command("reject")
def reject(
    ctx: typer.Context,
    decision_id: int = typer.Argument(..., help="The decision's number."),
    actor: str = ACTOR,
    key_id: str | None = KEY_ID,
    veto: bool = typer.Option(False, "--veto", help="Veto: reject at once (where allowed)."),
    comment: str = typer.Option("", help="Why (kept in the audit log)."),
) -> None:
    """Vote against a pending decision, or veto it."""
    _vote(ctx, decision_id, "veto" if veto else "reject", actor, key_id, comment)


def _vote(ctx, decision_id: int, choice: str, actor: str, key_id: str | None, comment: str) -> None:
    from tianping.cli.common import console, store_session
    from tianping.errors import Conflict
    from tianping.governance.service import vote

    with store_session(ctx) as session:
        r = vote(decision_id, choice, session=session, actor=actor, key_id=key_id, comment=comment)
    if not r.recorded:  # the expiry was committed; the vote was not
        raise Conflict(r.message, code="decision_expired")
    d = r.decision
    if r.transition is None:
        approvals = sum(v.choice == "approve" for v in d.votes)
        console.print(f"decision #{d.id}: {choice} recorded; {approvals} of {d.required} approvals")
    else:
        console.print(f"decision #{d.id} {d.status}: {d.status_reason}", soft_wrap=True)
        if d.status == "approved":
            console.print(f"effect: {d.effect_status} {_effect_text(d.effect)}", soft_wrap=True)


def _effect_text(effect: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in effect.items())


@decision_app.command("show")
def show(
    ctx: typer.Context,
    decision_id: int = typer.Argument(..., help="The decision's number."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
    evidence: int | None = typer.Option(
        None, "--evidence", help="Print evidence #N exactly as frozen (canonical JSON)."
    ),
) -> None:
    """A decision: its fields, votes, frozen evidence (digests) and full history."""
    from tianping.cli.common import check_format, dumps_json, render_sections, store_session
    from tianping.governance.service import evidence_of, get_or_raise, view

    check_format(fmt)
    with store_session(ctx, write=False) as session:
        if evidence is not None:
            typer.echo(evidence_of(decision_id, evidence, session=session).content)
            return
        data = view(get_or_raise(decision_id, session=session), session=session, now=_now())
    if fmt == "json":
        typer.echo(dumps_json(data))
        return
    head = {k: v for k, v in data.items() if k not in ("votes", "evidence", "history")}
    head["payload"], head["effect"] = _effect_text(head["payload"]), _effect_text(head["effect"])
    history = [
        {k: h[k] for k in ("seq", "at", "actor", "key_id", "action")} for h in data["history"]
    ]
    sections = {f"decision #{decision_id}": [{"field": k, "value": v} for k, v in head.items()],
                "votes": data["votes"], "evidence (frozen)": data["evidence"], "history": history}  # fmt: skip
    render_sections({k: v for k, v in sections.items() if v}, fmt)


@decision_app.command("list")
def list_(
    ctx: typer.Context,
    status: str | None = typer.Option(
        None, help="pending | approved | rejected | vetoed | expired"
    ),
    kind: str | None = typer.Option(None, help="Only this kind."),
    limit: int = typer.Option(100, min=1, max=10_000, help="At most this many, newest first."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Decisions, newest first (pending ones past their time show as expired)."""
    from tianping.cli.common import check_format, render_rows, store_session
    from tianping.governance.service import list_decisions, summary

    check_format(fmt)
    with store_session(ctx, write=False) as session:
        rows = [
            summary(d, now=_now())
            for d in list_decisions(session=session, status=status, kind=kind, limit=limit)
        ]
    render_rows(
        rows,
        fmt,
        title="decisions",
        empty="no decisions yet: `tianping decision propose --kind KIND --title TITLE ...`, or the dashboard's Decisions page",
    )


@decision_app.command("expire")
def expire(ctx: typer.Context) -> None:
    """Expire every pending decision whose time is up (each change is audited)."""
    from tianping.cli.common import console, store_session
    from tianping.governance.service import expire_due

    with store_session(ctx) as session:
        ids = [d.id for d in expire_due(session=session)]
    console.print(
        f"expired {len(ids)} decision(s){': ' + ', '.join(f'#{i}' for i in ids) if ids else ''}"
    )


@rules_app.command("set")
def rules_set(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="Rules (YAML or JSON), see docs/governance.md."),
    actor: str = ACTOR,
    key_id: str | None = KEY_ID,
) -> None:
    """Put new rules in force (audited); pending decisions keep their quorum."""
    from tianping import yamldoc
    from tianping.cli.common import console, store_session
    from tianping.errors import InvalidInput, UsageError
    from tianping.governance.service import set_rules

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read rules from {file}: {exc}", field=str(file)) from None
    doc = yamldoc.read(text, source=str(file), strict=True)
    try:
        with store_session(ctx) as session:
            rules = set_rules(doc, session=session, actor=actor, key_id=key_id)
    except InvalidInput as exc:
        raise yamldoc.with_line(
            InvalidInput(f"{file}: {exc.message}", field=exc.field, code=exc.code), str(file), text
        ) from None
    console.print(f"rules {rules.version[:12]} in force")


@rules_app.command("show")
def rules_show(ctx: typer.Context) -> None:
    """The rules in force, as JSON."""
    from tianping.cli.common import dumps_json, store_session
    from tianping.governance.service import current_rules

    with store_session(ctx, write=False) as session:
        rules = current_rules(session=session)
    typer.echo(dumps_json({"version": rules.version, **rules.to_dict()}))


def _now():
    from tianping.clock import SystemClock

    return SystemClock().now()
