"""What-if summaries of a policy over past refund requests, and what changes between two (pure).

:func:`outcome` sums one policy's batch of decisions: how many were decided automatically, the
money refunded by who pays, where the simulator recorded which claims were abuse the money
abuse would have taken, and, given the requested amounts, the two-sided errors
(:mod:`tianping.aftersales.two_sided`: honest buyers refused, abusive claims paid).
:func:`compare` lists the decisions that change between two policies, by from→to action, with
a seeded sample of the changed requests. :func:`ab_split` treats policies as the arms of an
experiment: the experiment engine's deterministic assignment puts each buyer in one arm, and
each arm's requests are decided by that arm's policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from tianping.aftersales.policy import DecisionBatch
from tianping.aftersales.policy_table import ACTIONS, KEEPS_GOODS, PAYERS
from tianping.aftersales.two_sided import Truth, TwoSidedErrors, two_sided
from tianping.errors import InvalidInput
from tianping.experiments.assignment import ExperimentConfig, Variant, assign_batch


@dataclass(frozen=True)
class PolicyOutcome:
    """One policy's decisions over a set of past requests.

    Attributes:
        policy_name, policy_version: the policy.
        requests: requests decided.
        automatic: decided without a person (not negotiation or manual review).
        auto_decision_rate: ``automatic / requests`` (0 with no requests).
        by_action: requests per action, every action listed.
        refunded_minor: money refunded per payer (``merchant``, ``platform``), minor units.
        abusive_requests: requests the ground truth marks as abuse (None when unknown).
        abuse_loss_minor: money paid without the goods coming back (refund-only and partial
            refunds) on abusive requests — what abuse takes (None when unknown).
        abuse_refunded_with_return_minor: money refunded on abusive requests against a
            return (recoverable unless the parcel is empty; None when unknown).
        errors: the two-sided errors (:mod:`tianping.aftersales.two_sided`; None when the
            requested amounts were not given).
    """

    policy_name: str
    policy_version: str
    requests: int
    automatic: int
    auto_decision_rate: float
    by_action: dict[str, int]
    refunded_minor: dict[str, int]
    abusive_requests: int | None = None
    abuse_loss_minor: int | None = None
    abuse_refunded_with_return_minor: int | None = None
    errors: TwoSidedErrors | None = None

    @property
    def refunded_total_minor(self) -> int:
        """Money refunded under the policy, whoever pays it, in minor units."""
        return sum(self.refunded_minor.values())


@dataclass(frozen=True)
class Comparison:
    """Decisions that differ between two policies on the same requests.

    A decision changes when its action, refund amount or payer differs.

    Attributes:
        changed: requests whose decision changes.
        transitions: ``{"from", "to", "requests", "refund_change_minor"}`` per from→to action
            pair, most requests first.
        sample: up to ``sample`` changed requests (seeded draw), each with both decisions.
    """

    base: str
    other: str
    changed: int
    transitions: list[dict[str, object]]
    sample: list[dict[str, object]] = field(default_factory=list)


def outcome(
    batch: DecisionBatch,
    abusive: np.ndarray | None = None,
    *,
    amount_minor: np.ndarray | None = None,
    truth: Truth | None = None,
) -> PolicyOutcome:
    """Sum a batch of decisions; ``abusive`` (bool per request) adds the abuse figures.

    With ``amount_minor`` (what each request asked for) the outcome also counts the two-sided
    errors, judged by ``truth`` (default: ``abusive`` as ground truth; neither: unknown).
    """
    n = len(batch)
    automatic = int(batch.automatic.sum())
    counts = np.bincount(batch.action_code, minlength=len(ACTIONS))
    paid = {
        p: int(batch.refund_amount_minor[batch.payer_code == i].sum()) for i, p in enumerate(PAYERS)
    }
    result = dict(
        policy_name=batch.policy_name,
        policy_version=batch.policy_version,
        requests=n,
        automatic=automatic,
        auto_decision_rate=automatic / n if n else 0.0,
        by_action={a: int(counts[i]) for i, a in enumerate(ACTIONS)},
        refunded_minor=paid,
    )
    if abusive is not None:
        abusive = np.asarray(abusive, dtype=bool)
        if abusive.shape != (n,):
            raise InvalidInput(
                f"abuse truth has {abusive.size} values for {n} requests", field="abusive"
            )
        keeps = np.isin(batch.action_code, [ACTIONS.index(a) for a in KEEPS_GOODS])
        refund = batch.refund_amount_minor
        result.update(
            abusive_requests=int(abusive.sum()),
            abuse_loss_minor=int(refund[abusive & keeps].sum()),
            abuse_refunded_with_return_minor=int(refund[abusive & batch.requires_return].sum()),
        )
    if amount_minor is not None:
        if truth is None and abusive is not None:
            truth = Truth.from_abusive(abusive)
        result["errors"] = two_sided(batch, amount_minor, truth)
    return PolicyOutcome(**result)


def changed_mask(a: DecisionBatch, b: DecisionBatch) -> np.ndarray:
    """Rows whose action, refund amount or payer differ between the two batches."""
    if len(a) != len(b):
        raise InvalidInput(f"batches differ in length: {len(a)} and {len(b)}", field="batch")
    return (
        (a.action_code != b.action_code)
        | (a.refund_amount_minor != b.refund_amount_minor)
        | (a.payer_code != b.payer_code)
    )


def compare(
    a: DecisionBatch,
    b: DecisionBatch,
    ids: Sequence[str] | np.ndarray,
    *,
    sample: int = 10,
    seed: int = 0,
) -> Comparison:
    """What changes from policy ``a`` to policy ``b`` on the same requests (``ids`` row for row)."""
    ids = np.asarray(ids, dtype=object)
    changed = changed_mask(a, b)
    pair = a.action_code.astype(np.int64) * len(ACTIONS) + b.action_code
    delta = b.refund_amount_minor - a.refund_amount_minor
    transitions = []
    for code in np.unique(pair[changed]):
        rows = changed & (pair == code)
        transitions.append(
            {
                "from": ACTIONS[code // len(ACTIONS)],
                "to": ACTIONS[code % len(ACTIONS)],
                "requests": int(rows.sum()),
                "refund_change_minor": int(delta[rows].sum()),
            }
        )
    transitions.sort(key=lambda t: (-t["requests"], t["from"], t["to"]))
    picked = _sample(np.flatnonzero(changed), sample, seed)
    rows = [_pair_row(a, b, ids, int(i)) for i in picked]
    return Comparison(
        base=f"{a.policy_name}@{a.policy_version[:12]}",
        other=f"{b.policy_name}@{b.policy_version[:12]}",
        changed=int(changed.sum()),
        transitions=transitions,
        sample=rows,
    )


def _sample(rows: np.ndarray, k: int, seed: int) -> np.ndarray:
    if k <= 0 or not len(rows):
        return rows[:0]
    if len(rows) > k:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=k, replace=False))
    return rows


def _pair_row(a: DecisionBatch, b: DecisionBatch, ids: np.ndarray, i: int) -> dict[str, object]:
    ra, rb = a.row(i), b.row(i)
    return {
        "refund_id": ids[i],
        "from_rule": ra["rule_id"],
        "from_action": ra["action"],
        "from_refund_minor": ra["refund_amount_minor"],
        "from_payer": ra["payer"],
        "to_rule": rb["rule_id"],
        "to_action": rb["action"],
        "to_refund_minor": rb["refund_amount_minor"],
        "to_payer": rb["payer"],
    }


@dataclass(frozen=True)
class ArmOutcome:
    """One arm of a policy A/B split: the buyers the experiment put in it, decided by its policy.

    Attributes:
        variant: the experiment's variant name.
        outcome: the arm's policy over the arm's requests.
        buyers: distinct buyers in the arm.
    """

    variant: str
    outcome: PolicyOutcome
    buyers: int


def policy_experiment(
    name: str, variants: Sequence[str], *, salt: str | None = None
) -> ExperimentConfig:
    """An even split of buyers between policies (one variant per policy, the first the control)."""
    return ExperimentConfig(name, salt or name, tuple(Variant(v) for v in variants))


def take(batch: DecisionBatch, rows: np.ndarray) -> DecisionBatch:
    """The decisions of ``rows`` only (indices or a boolean mask)."""
    return replace(
        batch,
        rule_index=batch.rule_index[rows],
        action_code=batch.action_code[rows],
        refund_amount_minor=batch.refund_amount_minor[rows],
        requires_return=batch.requires_return[rows],
        payer_code=batch.payer_code[rows],
    )


def ab_split(
    experiment: ExperimentConfig,
    batches: Sequence[DecisionBatch],
    buyer_ids: np.ndarray,
    abusive: np.ndarray | None = None,
    *,
    amount_minor: np.ndarray | None = None,
    truth: Truth | None = None,
) -> list[ArmOutcome]:
    """Each arm's outcome when the experiment assigns buyers to policies.

    Args:
        experiment: the split; its variant ``i`` is decided by ``batches[i]``.
        batches: every policy's decisions on all requests, row for row with ``buyer_ids``.
        buyer_ids: the buyer of each request (the experiment's unit: a buyer sees one policy).
        abusive: ground truth per request, as for :func:`outcome`.
        amount_minor, truth: the requested amounts and what is known of each request, for the
            two-sided errors (as for :func:`outcome`).

    Returns:
        One :class:`ArmOutcome` per variant, in the experiment's order; buyers the experiment
        leaves out (traffic, holdout) are in no arm.
    """
    if len(batches) != len(experiment.variants):
        raise InvalidInput(
            f"experiment {experiment.name!r} has {len(experiment.variants)} variants for "
            f"{len(batches)} policies",
            field="experiment",
        )
    ids = np.asarray(buyer_ids, dtype=str)
    for b in batches:
        if len(b) != ids.size:
            raise InvalidInput(f"batches differ in length: {len(b)} and {ids.size}", field="batch")
    arm = assign_batch(experiment, experiment.name, ids)
    arms = []
    for i, (variant, batch) in enumerate(zip(experiment.variant_names, batches, strict=True)):
        rows = np.flatnonzero(arm == i)
        bad = None if abusive is None else np.asarray(abusive, dtype=bool)[rows]
        asked = None if amount_minor is None else np.asarray(amount_minor)[rows]
        known = None if truth is None else truth.take(rows)
        result = outcome(take(batch, rows), bad, amount_minor=asked, truth=known)
        arms.append(ArmOutcome(variant, result, int(np.unique(ids[rows]).size)))
    return arms
