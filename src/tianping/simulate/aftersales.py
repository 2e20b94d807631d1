"""After the order: delivery, refund requests and decisions, reviews and NPS responses (pure).

Causes are drawn per order from the product's and merchant's truth (defect, not as described,
lost parcel) and the buyer's traits (change of mind, honesty). Honest buyers claim real
problems; abusers claim on good orders and state a false reason. The platform's historical
decisions follow a simple legacy rule (see ``docs/simulator.md``). Events after the window's
end are not in the data (the data is a snapshot at the end): later requests are dropped and
later decisions are pending (null).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tianping.simulate.population import HONEST, OPPORTUNIST, PROFESSIONAL, QUALITY_PIVOT, Buyers
from tianping.simulate.world import World, nps_of_latent

REASONS = ("quality_problem", "not_as_described", "not_received", "change_of_mind")
TRUE_REASONS = (*REASONS, "abuse")
QUALITY, NOT_AS_DESCRIBED, NOT_RECEIVED, CHANGE_OF_MIND, ABUSE = range(5)
DECISIONS = ("approved", "partial", "rejected")
APPROVED, PARTIAL, REJECTED = range(3)
DAY = 86400
#: Reasons abusers state: opportunists mostly claim quality problems, professionals also
#: claim parcels never arrived ("empty parcel").
ABUSE_STATED = {OPPORTUNIST: (0.60, 0.25, 0.15), PROFESSIONAL: (0.45, 0.10, 0.45)}
RETURN_SHARE = {QUALITY: 0.15, NOT_AS_DESCRIBED: 0.40, NOT_RECEIVED: 0.0, CHANGE_OF_MIND: 1.0}


@dataclass(slots=True)
class AfterSales:
    """Columns of the refunds, reviews and nps tables for one chunk, plus NPS-effect truth."""

    refunds: dict[str, np.ndarray]
    reviews: dict[str, np.ndarray]
    nps: dict[str, np.ndarray]
    nps_effect: list[np.ndarray]


def simulate(rng, world: World, buyers: Buyers, orders: dict, effects) -> AfterSales:
    """Deliver the chunk's orders, then draw refunds, reviews and NPS responses."""
    deliver(rng, world, buyers, orders)
    prods = world.products
    orders["defective"] = rng.random(orders["cell"].size) < prods.defect_rate[orders["product"]]
    nad = rng.random(orders["cell"].size) < prods.not_as_described_rate[orders["product"]]
    orders["not_as_described"] = nad & ~orders["defective"]
    refunds = request_refunds(rng, world, buyers, orders, effects.refund[orders["cell"]])
    decide(rng, world, buyers, orders, refunds)
    reviews = write_reviews(rng, world, buyers, orders)
    nps, gains = answer_nps(rng, world, buyers, orders, effects)
    return AfterSales(_censor_refunds(world, refunds), reviews, nps, gains)


def deliver(rng: np.random.Generator, world: World, buyers: Buyers, orders: dict) -> None:
    """Door or station, delivery time and lost parcels; adds columns to ``orders``."""
    p, m = world.params, world.merchants
    merchant, n = orders["merchant"], orders["cell"].size
    door_p = buyers.door_preference[orders["buyer"]] * (0.7 + 0.4 * m.quality[merchant])
    door = rng.random(n) < np.minimum(door_p, 1.0)
    days = rng.gamma(4.0, m.delivery_days[merchant] / 4.0) + p.door_extra_days * door
    orders["door"] = door
    orders["delivery_days"] = days
    orders["delivered"] = orders["second"] + np.rint(days * DAY).astype(np.int64)
    orders["lost"] = rng.random(n) < m.lost_rate[merchant]


def request_refunds(
    rng: np.random.Generator, world: World, buyers: Buyers, orders: dict, mult: np.ndarray
) -> dict[str, np.ndarray]:
    """At most one refund request per order: its true cause, stated reason, time and amount."""
    p, n = world.params, orders["cell"].size
    buyer, lost = orders["buyer"], orders["lost"]
    com_rate = np.array([c.change_of_mind_rate for c in p.categories])[orders["category"]]
    com_rate = com_rate * buyers.change_of_mind[buyer]
    u = rng.random((5, n))
    cause = np.full(n, -1, dtype=np.int64)
    claims = (
        (NOT_RECEIVED, lost, p.claim_not_received),
        (QUALITY, ~lost & orders["defective"], p.claim_defective),
        (NOT_AS_DESCRIBED, ~lost & orders["not_as_described"], p.claim_not_as_described),
        (CHANGE_OF_MIND, ~lost & ~orders["defective"] & ~orders["not_as_described"], com_rate),
        (ABUSE, ~lost, buyers.claim_rate[buyer]),
    )
    for (code, eligible, rate), draw in zip(claims, u, strict=True):
        cause[(cause < 0) & eligible & (draw < np.minimum(rate * mult, 1.0))] = code
    idx = np.flatnonzero(cause >= 0)
    cause = cause[idx]
    stated = _stated_reason(rng, buyers.honesty[buyer[idx]], cause)
    return {
        "order": idx,
        "cause": cause,
        "reason": stated,
        "requested": _request_time(rng, world, orders, idx, cause),
        "requested_fen": _request_amount(
            rng, p.partial_request_share, orders["amount"][idx], stated, cause
        ),
    }


def _stated_reason(rng: np.random.Generator, honesty: np.ndarray, cause: np.ndarray) -> np.ndarray:
    stated = cause.copy()
    for kind, probs in ABUSE_STATED.items():
        hit = np.flatnonzero((cause == ABUSE) & (honesty == kind))
        stated[hit] = rng.choice(3, size=hit.size, p=probs)
    return stated


def _request_time(
    rng, world: World, orders: dict, idx: np.ndarray, cause: np.ndarray
) -> np.ndarray:
    delivered, created = orders["delivered"][idx], orders["second"][idx]
    wait = rng.exponential(1.0, size=idx.size)
    expected = world.merchants.delivery_days[orders["merchant"][idx]]
    days = np.select(
        [cause == NOT_RECEIVED, cause == QUALITY, cause == CHANGE_OF_MIND],
        [expected + 3 + 2 * wait, np.minimum(2 * wait, 14), rng.uniform(0.05, 7, idx.size)],
        np.minimum(wait, 7),
    )
    start = np.where(cause == NOT_RECEIVED, created, delivered + 600)
    return start + np.rint(days * DAY).astype(np.int64)


def _request_amount(rng, share: float, amount, stated, cause) -> np.ndarray:
    """The amount paid, or a part of it for some quality / not-as-described claims."""
    partial = np.isin(stated, (QUALITY, NOT_AS_DESCRIBED)) & (cause != ABUSE)
    partial &= rng.random(amount.size) < share
    part = np.maximum(np.rint(amount * rng.uniform(0.3, 0.6, amount.size)), 1).astype(np.int64)
    return np.where(partial, part, amount)


def decide(
    rng: np.random.Generator, world: World, buyers: Buyers, orders: dict, refunds: dict
) -> None:
    """The platform's legacy decisions: instant for small or change-of-mind claims, else manual.

    Manual review catches some abuse (more of the professionals'), rejects or partly refunds a
    few honest claims, and always refunds a parcel the courier lost.
    """
    p, n = world.params, refunds["order"].size
    cause, stated = refunds["cause"], refunds["reason"]
    honesty = buyers.honesty[orders["buyer"][refunds["order"]]]
    auto = (refunds["requested_fen"] <= p.auto_approve_below_fen) | (stated == CHANGE_OF_MIND)
    auto |= cause == NOT_RECEIVED
    detect = np.select([honesty == PROFESSIONAL, honesty == OPPORTUNIST],
                       [p.detect_professional, p.detect_opportunist], 0.0)  # fmt: skip
    u = rng.random((3, n))
    decision = np.full(n, APPROVED, dtype=np.int64)
    decision[~auto & (u[0] < p.reject_share + p.partial_decision_share)] = PARTIAL
    decision[~auto & (u[0] < p.reject_share)] = REJECTED
    decision[~auto & (cause == ABUSE) & (u[1] < detect)] = REJECTED
    share = np.array([RETURN_SHARE[k] for k in range(len(REASONS))])[stated]
    returned = (u[2] < share) & (cause != ABUSE) & (decision != REJECTED)
    refunded = np.select([decision == APPROVED, decision == PARTIAL],
                         [refunds["requested_fen"], refunds["requested_fen"] // 2], 0)  # fmt: skip
    wait = np.where(auto, rng.integers(5, 120, n), rng.integers(3600, 48 * 3600, n))
    refunds.update(decision=decision, refunded_fen=refunded, returned=returned,
                   decided=refunds["requested"] + wait, honesty=honesty)  # fmt: skip
    refunds["defective"] = orders["defective"][refunds["order"]]


def _censor_refunds(world: World, refunds: dict) -> dict[str, np.ndarray]:
    keep = refunds["requested"] < world.end_offset
    out = {k: v[keep] for k, v in refunds.items()}
    out["pending"] = out["decided"] >= world.end_offset
    return out


def write_reviews(rng: np.random.Generator, world: World, buyers: Buyers, orders: dict) -> dict:
    """Reviews of delivered orders; unhappy buyers review more often and rate lower."""
    p, m = world.params, world.merchants
    unhappy = orders["defective"] | orders["not_as_described"]
    rate = np.where(unhappy, p.review_rate_unhappy, p.review_rate)
    n = orders["cell"].size
    created = orders["delivered"] + 3600 + np.rint(rng.exponential(2 * DAY, n)).astype(np.int64)
    keep = ~orders["lost"] & (rng.random(n) < rate) & (created < world.end_offset)
    idx = np.flatnonzero(keep)
    latent = (
        p.rating_mean
        + p.rating_quality_slope * (m.quality[orders["merchant"][idx]] - QUALITY_PIVOT)
        + buyers.rating_bias[orders["buyer"][idx]]
        - p.rating_defect_penalty * orders["defective"][idx]
        - p.rating_not_as_described_penalty * orders["not_as_described"][idx]
        - p.rating_slow_penalty_per_day * _late_days(p, orders, idx)
        + rng.normal(0.0, p.rating_noise, idx.size)
    )
    return {"order": idx, "rating": np.clip(np.rint(latent), 1, 5).astype(np.int64),
            "created": created[idx]}  # fmt: skip


def _late_days(p, orders: dict, idx: np.ndarray) -> np.ndarray:
    return np.maximum(orders["delivery_days"][idx] - p.slow_delivery_days, 0)


def answer_nps(rng, world: World, buyers: Buyers, orders: dict, effects) -> tuple[dict, list]:
    """Post-purchase NPS survey responses, and each experiment arm's expected NPS gain.

    The gain of a response is the exact change of its expected NPS due to its arm's shift,
    given everything else about it; averaged over an arm it is the arm's true NPS effect.
    """
    p, n = world.params, orders["cell"].size
    answered = rng.random(n) < p.nps_invite_rate * p.nps_response_rate
    base = np.where(orders["lost"], orders["second"] + 7 * DAY, orders["delivered"])
    created = base + np.rint(rng.uniform(1, 7, n) * DAY).astype(np.int64)
    idx = np.flatnonzero(answered & (created < world.end_offset))
    mean = (
        buyers.nps_mean[orders["buyer"][idx]]
        - p.nps_defect_penalty * orders["defective"][idx]
        - p.nps_not_as_described_penalty * orders["not_as_described"][idx]
        - p.nps_lost_penalty * orders["lost"][idx]
        + p.nps_door_bonus * orders["door"][idx]
        - p.nps_slow_penalty_per_day * _late_days(p, orders, idx)
        + effects.nps_shift[orders["cell"][idx]]
    )
    score = np.clip(np.rint(mean + rng.normal(0.0, p.nps_noise, idx.size)), 0, 10)
    gains = []
    for plan, arm_of_cell in zip(world.experiments, effects.arms, strict=True):
        arm = arm_of_cell[orders["cell"][idx]]
        inside = arm >= 0
        shift = plan.nps_shift[arm[inside]]
        gain = nps_of_latent(mean[inside], p.nps_noise) - nps_of_latent(
            mean[inside] - shift, p.nps_noise
        )
        size = plan.conversion.size
        gains.append(
            np.stack([np.bincount(arm[inside], gain, size), np.bincount(arm[inside], None, size)])
        )
    return {
        "buyer": orders["buyer"][idx],
        "score": score.astype(np.int64),
        "created": created[idx],
    }, gains


__all__ = ["HONEST", "REASONS", "TRUE_REASONS", "DECISIONS", "simulate"]
