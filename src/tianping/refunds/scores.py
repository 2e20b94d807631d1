"""A buyer's credit and a merchant's quality as the API shows them, from the same signals the
automatic decision reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tianping.errors import NotFound
from tianping.refunds import repository as repo
from tianping.refunds import signals
from tianping.refunds.env import Env

# -- scores ----------------------------------------------------------------------------------


def buyer_credit(buyer_id: str, *, session: Session, env: Env) -> dict[str, Any]:
    """The buyer's credit score (350–950) from their orders and requests, explained."""
    now = env.clock.now()
    scores = signals.buyer_credit(
        buyer_id, session=session, now=now, snap=env.norms.get(session, now)
    )
    lines = [
        {"name": f.name, "value": f.value, "band": f.band, "points": f.points, "reason": f.reason}
        for f in scores.explain(0)
    ]
    return {"buyer_id": buyer_id, "score": int(scores.score[0]), "lines": lines}


def merchant_quality(merchant_id: str, *, session: Session, env: Env) -> dict[str, Any]:
    """The merchant's quality score (0–5) from its orders and refund requests, per component."""
    if not repo.merchant_order_counts(session, merchant_id):
        raise NotFound(f"no orders recorded for merchant {merchant_id!r}", field="merchant_id")
    now = env.clock.now()
    q = signals.merchant_quality(merchant_id, session=session, snap=env.norms.get(session, now))
    components = [
        {
            "name": c.name,
            "value": _finite(c.value),
            "n": c.n,
            "sub_score": _finite(c.sub_score),
            "weight": c.weight,
            "platform": _finite(c.platform),
        }
        for c in q.explain(0)
    ]
    return {
        "merchant_id": merchant_id,
        "score": round(float(q.score[0]), 4),
        "components": components,
    }


def _finite(x: float) -> float | None:
    return None if x != x else x  # NaN → None for JSON
