"""What a refund-policy race measures, per request and per arm (pure).

A policy race (``docs/races.md``, ``kind: refund_policy``) assigns buyers to policies and
decides each buyer's past refund requests under their arm's policy. Every metric here is a
**ratio per request with the buyer as the unit**: for each buyer in an arm, ``y`` is the sum of
the metric over the buyer's requests and ``d`` the number of requests; the arm's value is
``Σy / Σd`` and its variance comes from the delta method (buyers, not requests, are the
independent draws, since one buyer's claims are correlated).

Metrics (``docs/aftersales.md`` defines them):

- ``cost_per_request`` (minor units, lower is better): money refunded by the platform, plus
  money paid by the merchant without the goods coming back on requests the ground truth marks
  as abuse, plus ``handling_cost_minor`` for every request the policy sends to a person
  (merchant negotiation or manual review). Needs the abuse ground truth.
- ``platform_refund_per_request`` (minor units, lower is better): money refunded by the
  platform. Needs no ground truth.
- ``abuse_loss_per_request`` (minor units, lower is better): money paid without the goods
  coming back on abusive requests, whoever paid. Needs the ground truth.
- ``auto_decision_rate`` (higher is better): decided without a person.
- ``genuine_rejected_rate`` (lower is better): genuine (not abusive) requests rejected, the
  buyer-harm proxy. Needs the ground truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tianping.aftersales.policy import Coded, DecisionBatch
from tianping.aftersales.policy_table import ACTIONS, KEEPS_GOODS, PAYERS
from tianping.errors import InvalidInput
from tianping.stats import ArmStats

#: Default cost of a request a person has to look at (10 yuan in fen).
DEFAULT_HANDLING_COST_MINOR = 1000


@dataclass(frozen=True, slots=True)
class PolicyMetric:
    """A metric of a policy race: every one is a per-request ratio with the buyer as unit."""

    name: str
    higher_is_better: bool
    needs_truth: bool
    description: str
    type: str = "ratio"


POLICY_METRICS: dict[str, PolicyMetric] = {
    m.name: m
    for m in (
        PolicyMetric(
            "cost_per_request",
            False,
            True,
            "platform-funded refunds + merchant-paid abuse loss + handling cost, per request",
        ),
        PolicyMetric("platform_refund_per_request", False, False, "money refunded by the platform"),
        PolicyMetric("abuse_loss_per_request", False, True, "money abuse took without a return"),
        PolicyMetric("auto_decision_rate", True, False, "share decided without a person"),
        PolicyMetric(
            "genuine_rejected_rate", False, True, "share of requests that were genuine and rejected"
        ),
    )
}
DEFAULT_GOAL = "cost_per_request"
DEFAULT_GUARDRAILS = ("auto_decision_rate", "genuine_rejected_rate")

#: The sufficient statistics a ratio arm carries, in the order they are stored.
STAT_FIELDS = ("n", "sum", "sum_sq", "den_sum", "den_sum_sq", "num_den_sum")


def get_policy_metric(name: str) -> PolicyMetric:
    """The policy-race metric called ``name``.

    Raises:
        InvalidInput: unknown name (the message lists the known ones).
    """
    metric = POLICY_METRICS.get(name)
    if metric is None:
        raise InvalidInput(
            f"unknown policy-race metric {name!r}; use one of {', '.join(POLICY_METRICS)}",
            field="metric",
        )
    return metric


def request_values(
    batch: DecisionBatch,
    abusive: np.ndarray | None,
    metrics: Sequence[str],
    *,
    handling_cost_minor: int = DEFAULT_HANDLING_COST_MINOR,
) -> dict[str, np.ndarray]:
    """Each metric's value on each request of ``batch`` (float64, row for row).

    Raises:
        InvalidInput: a metric needs the abuse ground truth and ``abusive`` is None.
    """
    for name in metrics:
        if get_policy_metric(name).needs_truth and abusive is None:
            raise InvalidInput(
                f"metric {name} needs the abuse ground truth (the simulator's refund_truth "
                "table), which the warehouse does not have; use platform_refund_per_request "
                "and auto_decision_rate",
                field=name,
            )
    refund = batch.refund_amount_minor.astype(np.float64)
    keeps = np.isin(batch.action_code, [ACTIONS.index(a) for a in KEEPS_GOODS])
    platform = batch.payer_code == PAYERS.index("platform")
    people = ~batch.automatic
    bad = np.zeros(len(batch), dtype=bool) if abusive is None else np.asarray(abusive, dtype=bool)
    abuse_loss = np.where(bad & keeps, refund, 0.0)
    values = {
        "cost_per_request": np.where(platform, refund, 0.0)
        + np.where(platform, 0.0, abuse_loss)
        + handling_cost_minor * people,
        "platform_refund_per_request": np.where(platform, refund, 0.0),
        "abuse_loss_per_request": abuse_loss,
        "auto_decision_rate": batch.automatic.astype(np.float64),
        "genuine_rejected_rate": ((batch.action_code == ACTIONS.index("reject")) & ~bad).astype(
            np.float64
        ),
    }
    return {m: values[m] for m in metrics}


def arm_stats(
    values: np.ndarray, buyer_ids: np.ndarray, arm: np.ndarray, arms: Sequence[str]
) -> list[ArmStats]:
    """Per-arm ratio statistics of one metric, the buyer as unit.

    Args:
        values: the metric per request.
        buyer_ids: the buyer of each request.
        arm: each request's arm index into ``arms`` (-1: in no arm, left out).
        arms: the arm names.

    Raises:
        InvalidInput: the arrays differ in length, or one buyer's requests are in two arms.
    """
    values, arm = np.asarray(values, dtype=np.float64), np.asarray(arm)
    if not values.shape == arm.shape == (len(buyer_ids),):
        raise InvalidInput("values, buyers and arms differ in length", field="values")
    keep = arm >= 0
    buyers, inverse = np.unique(np.asarray(buyer_ids, dtype=str)[keep], return_inverse=True)
    y = np.bincount(inverse, weights=values[keep], minlength=buyers.size)
    d = np.bincount(inverse, minlength=buyers.size).astype(np.float64)
    buyer_arm = np.full(buyers.size, -1, dtype=np.int64)
    buyer_arm[inverse] = arm[keep]
    if np.unique(inverse * (len(arms) + 1) + arm[keep]).size != buyers.size:
        raise InvalidInput("a buyer's requests fall in two arms", field="arm")
    out = []
    for i, name in enumerate(arms):
        m = buyer_arm == i
        yi, di = y[m], d[m]
        out.append(
            ArmStats(
                name,
                n=int(m.sum()),
                sum=float(yi.sum()),
                sum_sq=float((yi * yi).sum()),
                den_sum=float(di.sum()),
                den_sum_sq=float((di * di).sum()),
                num_den_sum=float((yi * di).sum()),
            )
        )
    return out


def merge(a: ArmStats, b: ArmStats) -> ArmStats:
    """The statistics of two disjoint sets of units of the same arm, together."""
    if a.name != b.name:
        raise InvalidInput(f"cannot merge arm {a.name!r} with arm {b.name!r}", field="name")
    return ArmStats(a.name, **{f: _get(a, f) + _get(b, f) for f in STAT_FIELDS})


def _get(a: ArmStats, field: str) -> float:
    value = getattr(a, field)
    return 0.0 if value is None else value


def to_dict(a: ArmStats) -> dict[str, float]:
    """JSON-ready sufficient statistics (:data:`STAT_FIELDS`)."""
    return {f: _get(a, f) for f in STAT_FIELDS}


def from_dict(name: str, data: Mapping[str, Any]) -> ArmStats:
    """Inverse of :func:`to_dict`."""
    return ArmStats(name, **{f: data[f] for f in STAT_FIELDS})


def empty(name: str) -> ArmStats:
    """An arm with no units yet."""
    return ArmStats(name, n=0, sum=0.0, sum_sq=0.0, den_sum=0.0, den_sum_sq=0.0, num_den_sum=0.0)


def take_columns(columns: Mapping[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """The policy input columns of ``rows`` only (indices or a mask); scalars pass through."""
    out: dict[str, Any] = {}
    for name, col in columns.items():
        if isinstance(col, Coded):
            out[name] = Coded(col.codes[rows], col.labels)
        elif isinstance(col, np.ndarray):
            out[name] = col[rows]
        else:
            out[name] = col
    return out
