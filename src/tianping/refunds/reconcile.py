"""Checks that the refund store is whole: the ledger's invariants per order, its balances, and
every automatic decision replayed against the policy version that made it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from tianping.aftersales.policy import RefundInputs, evaluate
from tianping.ledger import postings as P
from tianping.ledger import service as ledger
from tianping.refunds import policies, race_policy
from tianping.refunds import repository as repo

# -- audit and replay --------------------------------------------------------------------------


def audit(*, session: Session) -> list[P.Violation]:
    """Ledger rules plus: each order row's refunded cash equals its ledger and stays within paid."""
    found = ledger.check(session=session)
    for order_id, paid, refunded in repo.order_totals(session):
        cash = ledger.order_cash(order_id, session=session)
        if refunded != cash.refunded_minor or (paid > 0 and paid != cash.paid_minor):
            found.append(
                P.Violation(
                    "order_matches_ledger",
                    order_id,
                    f"order row paid {paid} refunded {refunded}; ledger paid {cash.paid_minor} "
                    f"refunded {cash.refunded_minor}",
                )
            )
    return found + fund_matches_appeals(session=session)


def fund_matches_appeals(*, session: Session) -> list[P.Violation]:
    """The protection fund paid exactly the upheld appeals: one payout per appeal that moved a
    merchant's refund onto the fund, of the same amount, and no payout without one. (Appeals
    upheld before the fund existed were paid by the platform's subsidy and expect none.)"""
    expected = {
        P.fund_payout_id(refund_id): int((data or {}).get("fund_payout_minor") or 0)
        for refund_id, data in repo.upheld_appeals(session)
    }
    paid = ledger.fund_payouts(session=session)
    found = []
    for transfer_id, amount in sorted(expected.items()):
        if amount and paid.get(transfer_id) != amount:
            got = paid.get(transfer_id)
            found.append(P.Violation(
                "fund_payout", transfer_id,
                f"upheld appeal moved {amount} onto the fund; the fund paid {got or 0}",
            ))  # fmt: skip
    for transfer_id, amount in sorted(paid.items()):
        if not expected.get(transfer_id):
            found.append(P.Violation(
                "fund_payout", transfer_id, f"the fund paid {amount} without an upheld appeal"
            ))  # fmt: skip
    return found


def ledger_summary(*, session: Session) -> dict[str, int]:
    """How much the audit looked at: transfers, entries and orders."""
    return {**ledger.summary(session=session), "orders": len(repo.order_totals(session))}


@dataclass(frozen=True)
class ReplayResult:
    """What replaying the stored policy decisions found: how many were checked, and those whose policy now decides otherwise."""

    checked: int
    mismatches: list[dict[str, Any]]


def replay(*, session: Session, limit: int = 10_000, offset: int = 0) -> ReplayResult:
    """Re-evaluate stored policy decisions with their stored inputs and policy versions."""
    decisions = repo.decisions_by_policy(session, limit=limit, offset=offset)
    mismatches = []
    for d in decisions:
        policy = policies.by_version(d.policy_version, session=session)
        again = evaluate(policy, RefundInputs.from_mapping(race_policy.policy_inputs(d.inputs)))
        stored = (
            d.action,
            d.refund_amount_minor,
            d.requires_return,
            d.payer or None,
            d.rule_id,
            [r["code"] for r in d.reasons],
        )
        fresh = (
            again.action,
            again.refund_amount_minor,
            again.requires_return,
            again.payer,
            again.rule_id,
            [r.code for r in again.reasons],
        )
        if stored != fresh:
            mismatches.append(
                {"decision_id": d.id, "refund_id": d.refund_id, "stored": stored, "replayed": fresh}
            )
    return ReplayResult(len(decisions), mismatches)
