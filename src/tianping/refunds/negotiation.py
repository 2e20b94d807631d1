"""Negotiation first, when it lapses: the platform decides by the policy's table.

A policy may put the merchant first (``negotiation: {quality_bar, sla_hours}``): a request its
table would refund goes to a merchant at or above the bar to settle with the buyer. When the
SLA passes without agreement, the platform takes the table's own decision, recorded as a new
decision of the same policy version with the same inputs (docs/refunds.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tianping.aftersales.policy import RefundInputs, evaluate
from tianping.aftersales.policy_table import REFUNDING
from tianping.refunds import policies, race_policy
from tianping.refunds import repository as repo
from tianping.refunds import transitions as T
from tianping.refunds.env import Env
from tianping.refunds.models import Order, RefundRequest

LAPSED = "negotiation_lapsed"


def platform_decides(
    req: RefundRequest, order: Order, *, actor: str, session: Session, env: Env, now: datetime
) -> bool:
    """Apply the table's decision to a negotiation the policy put first whose SLA passed.

    Returns False (nothing written) when the negotiation was not put first by a policy's
    negotiation capability: the merchant's silence then refunds in full, as before.
    """
    first = repo.get_decision(session, req.decision_id) if req.decision_id else None
    if first is None or first.source != "policy" or not first.policy_version:
        return False
    policy = policies.by_version(first.policy_version, session=session)
    if policy.negotiation is None:
        return False
    inputs = RefundInputs.from_mapping(race_policy.policy_inputs(first.inputs))
    d = evaluate(policy, inputs, negotiate=False)
    if d.action not in REFUNDING:
        return False
    hours = f"{policy.negotiation.sla_hours:g}"
    lapsed = {
        "code": LAPSED,
        "buyer": f"No agreement with the store within {hours} hours, so the platform decided.",
        "merchant": f"No agreement with the buyer within {hours} hours, so the platform decided.",
    }
    v = T.Verdict(
        action=d.action,
        refund_amount_minor=d.refund_amount_minor,
        requires_return=d.requires_return,
        payer=d.payer,
        reasons=[lapsed]
        + [{"code": r.code, "buyer": r.buyer, "merchant": r.merchant} for r in d.reasons],
        source="policy",
        decided_by=f"policy:{d.policy_name}",
        rule_id=d.rule_id,
        policy_name=d.policy_name,
        policy_version=d.policy_version,
        inputs=dict(first.inputs),
    )
    decision_id = T.record_decision(req, v, session=session, now=now)
    if d.action == "return_and_refund":
        req.payer = d.payer
        T.transition(req, f"{LAPSED}_return", actor=actor, session=session, env=env, now=now)
    else:
        amount = min(d.refund_amount_minor, req.requested_amount_minor)
        T.pay(req, order, amount, d.payer or "merchant", LAPSED,
              actor=actor, session=session, env=env, now=now)  # fmt: skip
    req.decision_id, req.decided_at = decision_id, now
    return True
