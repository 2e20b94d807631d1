"""What each kind of decision needs when proposed and does when approved.

:func:`prepare` checks a proposal's fields against the owning domain and returns the payload
to keep plus evidence to freeze with it (a refund policy's full content, a goal's history).
:func:`apply` makes an approved decision take effect through the owning service:

- ``refund_policy``: activates exactly the frozen policy content that was approved;
- ``goal_change``: records a goal revision (reason and decision number kept with it);
- ``ship_experiment`` / ``ship_race_winner``: ships the variant through the experiment or race
  service (the experiment stops and serves that variant to every unit);
- ``spend``: the approval itself is the outcome (effect status ``none``); a spend that names
  ``fund: protection_fund`` fills the merchant protection fund with its amount (once).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from tianping import inputs
from tianping.clock import FixedClock
from tianping.errors import InvalidInput
from tianping.governance.models import Decision


@dataclass(frozen=True)
class Prepared:
    """A proposal checked and ready to store: its payload, evidence to freeze, and the money it commits (spend)."""

    payload: dict[str, Any]
    evidence: tuple[tuple[str, str, Any], ...] = ()  # (kind, ref, data)
    amount_minor: int | None = None
    currency: str | None = None


def prepare(
    kind: str, payload: Mapping[str, Any], *, session: Session, policy_files: bool = False
) -> Prepared:
    """Validate and normalise the fields of a ``kind`` proposal.

    Args:
        policy_files: a ``refund_policy`` may name a policy file on this machine (the CLI,
            run by its owner); otherwise only a built-in policy's name (the API and the
            dashboard never read the server's files for a caller).

    Raises:
        InvalidInput: a missing or invalid field, naming it.
        NotFound: the experiment, race or goal it names does not exist.
    """
    if kind == "refund_policy":
        return _prepare_policy(dict(payload), session, files=policy_files)
    return _PREPARE[kind](dict(payload), session)


def _text(
    p: Mapping[str, Any], name: str, *, free: bool = False, max_length: int = inputs.MAX_ID
) -> str:
    """A payload's text field: an id on one line, or ``free`` text (newlines kept)."""
    value = p.get(name)
    if not isinstance(value, str) or not value.strip(inputs.BLANKS):
        raise InvalidInput(f"the proposal needs {name} (non-empty text)", field=name)
    if free:
        return inputs.text(value, field=name, multiline=True).strip(inputs.BLANKS)
    return inputs.name(value, field=name, max_length=max_length)


def _prepare_experiment(p: dict[str, Any], session: Session) -> Prepared:
    from tianping.experiments.service import check_shippable, get_or_raise
    from tianping.races.repository import owning

    name, variant = _text(p, "experiment"), _text(p, "variant")
    check_shippable(get_or_raise(name, session=session), variant)
    race = owning(name, session=session)
    if race is not None:  # shipping it alone would leave the race running on a shipped arm
        raise InvalidInput(
            f"experiment {name!r} belongs to race {race.name!r}; propose ship_race_winner",
            field="experiment",
        )
    return Prepared({"experiment": name, "variant": variant})


def _prepare_race(p: dict[str, Any], session: Session) -> Prepared:
    from tianping.races.service import check_shippable, get_or_raise

    name = _text(p, "race")
    race = get_or_raise(name, session=session)
    variant = check_shippable(race, p.get("variant") or None)
    return Prepared({"race": name, "variant": variant, "race_winner": race.winner})


def _prepare_policy(p: dict[str, Any], session: Session, *, files: bool = False) -> Prepared:
    from tianping.aftersales.policy import load_builtin, resolve_policy

    policy = (resolve_policy if files else load_builtin)(
        _text(p, "policy", max_length=inputs.MAX_TEXT)
    )
    ref = f"policy:{policy.name}@{policy.version[:12]}"
    return Prepared(
        {"policy": policy.name, "version": policy.version},
        evidence=(("policy", ref, policy.content),),
    )


def _prepare_spend(p: dict[str, Any], session: Session) -> Prepared:
    amount, currency = p.get("amount_minor"), p.get("currency", "CNY")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidInput(
            "a spend request needs amount_minor, a positive whole number", field="amount_minor"
        )
    inputs.amount(amount, minimum=1, maximum=inputs.MAX_SPEND_MINOR)
    inputs.currency(currency)
    payload = {
        "amount_minor": amount,
        "currency": currency,
        "purpose": _text(p, "purpose", free=True),
    }
    fund = p.get("fund")
    if fund is not None:  # the spend fills a reserve when approved
        if fund not in FUNDS:
            raise InvalidInput(
                f"unknown fund {str(fund)[:40]!r}; a spend can fill: {', '.join(FUNDS)}",
                field="fund",
            )
        payload["fund"] = fund
    return Prepared(payload, amount_minor=amount, currency=currency)


#: Reserves a spend decision can fill on approval.
FUNDS = ("protection_fund",)


def _prepare_goal(p: dict[str, Any], session: Session) -> Prepared:
    from tianping.errors import NotFound
    from tianping.goals.service import check_target
    from tianping.governance.sources import capture
    from tianping.metrics.periods import check_grain
    from tianping.metrics.service import METRICS

    name, metric = _text(p, "goal"), _text(p, "metric")
    reason = _text(p, "reason", free=True)
    if metric not in METRICS:
        raise InvalidInput(
            f"unknown metric {metric!r}; metrics: {', '.join(METRICS)}", field="metric"
        )
    target = p.get("target")
    if isinstance(target, bool) or not isinstance(target, int | float):
        raise InvalidInput("the proposal needs target, a number", field="target")
    target = inputs.finite(target, field="target")
    deadline = _deadline(p.get("deadline"))
    check_target(metric, float(target))
    grain = check_grain(p.get("grain") or "month")
    payload = {"goal": name, "metric": metric, "target": target,
               "deadline": deadline.isoformat(), "grain": grain, "reason": reason}  # fmt: skip
    try:
        evidence = (("goal", f"goal:{name}", capture(f"goal:{name}", session=session)[1]),)
    except NotFound:
        evidence = ()  # a new goal: nothing to compare with yet
    return Prepared(payload, evidence=evidence)


def _deadline(value: Any) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(
            f"deadline {value!r} is not a date (YYYY-MM-DD)", field="deadline"
        ) from None


_PREPARE = {
    "ship_experiment": _prepare_experiment,
    "ship_race_winner": _prepare_race,
    "spend": _prepare_spend,
    "goal_change": _prepare_goal,
}


# -- on approval -------------------------------------------------------------------------------


def apply(d: Decision, *, session: Session, now: datetime) -> tuple[str, dict[str, Any]]:
    """Make an approved decision take effect: ``(effect_status, effect)``."""
    p = d.payload
    if d.kind == "refund_policy":
        return "applied", _activate_policy(d, session=session, now=now)
    if d.kind == "goal_change":
        from tianping.goals.service import set_goal

        rev = set_goal(
            p["goal"],
            metric=p["metric"],
            target=p["target"],
            deadline=date.fromisoformat(p["deadline"]),
            reason=f"{p['reason']} (decision #{d.id})",
            grain=p["grain"],
            author=d.proposer,
            session=session,
            clock=FixedClock(now),
            decision_id=d.id,
        )
        return "applied", {"goal": p["goal"], "revision": rev.number}
    if d.kind == "ship_experiment":
        from tianping.experiments.service import ship

        row = ship(p["experiment"], p["variant"], session=session, clock=FixedClock(now),
                   decision_id=d.id)  # fmt: skip
        return "applied", {"experiment": row.name, "shipped": row.shipped_variant,
                           "end_date": row.end_date and row.end_date.isoformat()}  # fmt: skip
    if d.kind == "ship_race_winner":
        from tianping.races.service import ship as ship_race

        race = ship_race(p["race"], p["variant"], session=session, clock=FixedClock(now),
                         decision_id=d.id)  # fmt: skip
        return "applied", {"race": race.name, "shipped": race.shipped_variant,
                           "experiment": race.experiment, "phase": race.phase}  # fmt: skip
    if d.kind == "spend" and p.get("fund") == "protection_fund":
        from tianping.ledger.service import fund_top_up

        transfer = fund_top_up(
            d.id, p["amount_minor"], p["currency"], session=session, now=now,
            memo=f"spend decision #{d.id}: {p['purpose']}"[:500],
        )  # fmt: skip
        return "applied", {"fund": "protection_fund", "amount_minor": p["amount_minor"],
                           "currency": p["currency"], "transfer": transfer}  # fmt: skip
    return "none", {}


def _activate_policy(d: Decision, *, session: Session, now: datetime) -> dict[str, Any]:
    from tianping.aftersales.policy import parse_policy
    from tianping.refunds.policies import activate_policy

    frozen = next(e for e in d.evidence if e.kind == "policy")
    policy = parse_policy(json.loads(frozen.content), origin=d.payload["policy"])
    if policy.version != d.payload["version"]:  # the frozen copy no longer hashes the same
        raise InvalidInput(
            f"decision #{d.id}'s frozen policy does not match version {d.payload['version']}",
            field="evidence",
        )
    activate_policy(policy, session=session, now=now, by=f"decision #{d.id}")
    return {"activated": policy.name, "version": policy.version}
