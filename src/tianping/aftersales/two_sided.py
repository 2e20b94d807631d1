"""The two errors a refund policy makes, counted on past requests (pure).

A refund policy errs two ways: it refuses an honest buyer, or it pays an abusive claim. For one
batch of decisions, :func:`two_sided` counts both (how many, the rate among the honest or the
abusive requests with a Wilson interval, and the money), what merchants paid on abusive claims,
what the platform paid, and how long honest buyers wait for their money.

What is honest and what is abusive comes from one of two sources, and the result names it:

- **ground truth** (``refund_truth``): the simulator knows every request's cause;
- **merchant appeals** (the store): a merchant's appeal against a refund, once decided, says
  which claim was abuse (appeal upheld) and which was honest (appeal dismissed). Only appealed
  requests are known; the rates are among those.

With neither, every figure that needs one is None ("unknown"), never 0.

Definitions (``docs/aftersales.md``, "Two-sided errors"):

- *refused*: the policy rejects the request. Requests it sends to a person (merchant
  negotiation, manual review) are neither refused nor paid by the policy; they are counted
  apart (``to_a_person``).
- *abusive claim paid*: the policy refunds an abusive request without the goods coming back
  (refund only, partial refund): a return-and-refund gets the goods back, unless the parcel is
  empty.
- *merchant loss*: the part of the abusive claims paid that the merchant pays.
- *platform cost*: every refund the policy has the platform pay, whatever the truth.
- *time to money*: hours from the request to the buyer being paid, for honest requests the
  policy pays: a refund decided at the request is paid at once; a return-and-refund is paid
  when the goods are back, at the latest by the end of the return windows
  (:data:`RETURN_HOURS`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tianping.aftersales.policy import DecisionBatch
from tianping.aftersales.policy_table import ACTIONS, KEEPS_GOODS, PAYERS
from tianping.errors import InvalidInput
from tianping.money import format_major

#: Truth codes, one per request.
ABUSIVE, HONEST, UNKNOWN = 1, 0, -1
#: The sources a figure can come from.
GROUND_TRUTH = "ground truth (refund_truth)"
APPEALS = "merchant appeals (store)"
NO_SOURCE = "unknown"
#: Hours by which a return-and-refund is paid at the latest: the return shipment (7 days) and
#: receipt (10 days) windows of the refund lifecycle (``docs/refunds.md``).
RETURN_HOURS = 24 * (7 + 10)
#: Actions that hand the request to a person: neither refused nor paid by the policy.
PEOPLE = ("manual_review", "merchant_negotiation")
#: Normal quantile of a two-sided 95 % interval.
Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Truth:
    """What is known of each request: :data:`ABUSIVE`, :data:`HONEST` or :data:`UNKNOWN`.

    Attributes:
        codes: one int8 code per request, row for row with the decisions.
        source: where the codes come from (:data:`GROUND_TRUTH`, :data:`APPEALS`).
    """

    codes: np.ndarray
    source: str

    @classmethod
    def from_abusive(cls, abusive: np.ndarray) -> Truth:
        """Ground truth: every request is abusive (True) or honest (False)."""
        return cls(np.where(np.asarray(abusive, dtype=bool), ABUSIVE, HONEST).astype(np.int8),
                   GROUND_TRUTH)  # fmt: skip

    @classmethod
    def from_appeals(cls, refund_ids: np.ndarray, upheld: dict[str, bool]) -> Truth:
        """Appeal outcomes: ``upheld[refund_id]`` True (abusive) or False (honest); others unknown."""
        codes = np.array(
            [UNKNOWN if r not in upheld else (ABUSIVE if upheld[r] else HONEST)
             for r in np.asarray(refund_ids, dtype=object).tolist()],
            dtype=np.int8,
        )  # fmt: skip
        return cls(codes, APPEALS)

    def take(self, rows: np.ndarray) -> Truth:
        """The codes of ``rows`` only (indices or a mask)."""
        return Truth(self.codes[rows], self.source)


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` of ``of`` with a 95 % Wilson interval (``rate`` and bounds None when ``of`` is 0)."""

    count: int
    of: int
    rate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class TwoSidedErrors:
    """One policy's two errors on a set of requests; None means unknown.

    Attributes:
        source: where honest and abusive come from (:data:`NO_SOURCE` when nowhere).
        honest_requests, abusive_requests: requests known honest / abusive.
        honest_refused: honest requests the policy rejects, among the honest ones.
        honest_refused_minor: what those buyers asked for.
        abusive_paid: abusive requests refunded without the goods back, among the abusive ones.
        abusive_paid_minor: what those refunds pay.
        merchant_loss_minor: the part of ``abusive_paid_minor`` the merchant pays.
        platform_cost_minor: every refund the platform pays (known without any truth).
        to_a_person: requests sent to negotiation or manual review (neither refused nor paid).
        honest_paid: honest requests the policy pays (the time-to-money sample).
        time_to_money_median_hours, time_to_money_p90_hours: over ``honest_paid`` (nearest
            rank); None when unknown or no honest request is paid.
    """

    source: str
    honest_requests: int | None
    abusive_requests: int | None
    honest_refused: Rate | None
    honest_refused_minor: int | None
    abusive_paid: Rate | None
    abusive_paid_minor: int | None
    merchant_loss_minor: int | None
    platform_cost_minor: int
    to_a_person: int
    honest_paid: int | None
    time_to_money_median_hours: float | None
    time_to_money_p90_hours: float | None


def wilson(count: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``count / n``.

    >>> [round(x, 4) for x in wilson(81, 263)]  # Wilson (1927); Newcombe (1998), method 3
    [0.2553, 0.3662]

    Raises:
        InvalidInput: ``n`` is not positive or ``count`` is outside 0..n.
    """
    if n <= 0 or not 0 <= count <= n:
        raise InvalidInput(f"a proportion needs 0 <= count <= n and n > 0, got {count} of {n}",
                           field="count")  # fmt: skip
    p = count / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At 0 and n the bounds are exactly 0 and 1; rounding would leave a hair off.
    low = 0.0 if count == 0 else max(0.0, centre - half)
    return low, 1.0 if count == n else min(1.0, centre + half)


def rate(count: int, n: int) -> Rate:
    """``count`` of ``n`` with its Wilson interval (no rate when ``n`` is 0)."""
    if n == 0:
        return Rate(count, 0, None, None, None)
    low, high = wilson(count, n)
    return Rate(count, n, count / n, low, high)


def nearest_rank(values: np.ndarray, q: float) -> float | None:
    """The ``q`` quantile by nearest rank (a value of the sample); None for an empty sample.

    >>> nearest_rank(np.array([0.0, 0.0, 0.0, 408.0]), 0.5), nearest_rank(np.array([0.0, 408.0]), 0.9)
    (0.0, 408.0)
    """
    if values.size == 0:
        return None
    return float(np.quantile(values, q, method="inverted_cdf"))  # numpy's name for nearest rank


#: The additive counts behind :class:`TwoSidedErrors` (money in minor units); a race sums them
#: over windows. The truth-based ones are None when the source is :data:`NO_SOURCE`.
COUNTS = (
    "honest", "honest_refused", "honest_refused_minor", "abusive", "abusive_paid",
    "abusive_paid_minor", "merchant_loss_minor", "paid_at_once", "paid_after_return",
)  # fmt: skip
ALWAYS_KNOWN = ("platform_cost_minor", "to_a_person")


def two_sided(
    batch: DecisionBatch, amount_minor: np.ndarray, truth: Truth | None
) -> TwoSidedErrors:
    """Count both errors of ``batch``.

    Args:
        batch: the policy's decisions.
        amount_minor: what each request asked for (the money an honest buyer refused loses).
        truth: what is known of each request, or None (every truth-based figure unknown).

    Raises:
        InvalidInput: the arrays differ in length.
    """
    return from_counts(counts(batch, amount_minor, truth))


def counts(
    batch: DecisionBatch, amount_minor: np.ndarray, truth: Truth | None
) -> dict[str, object]:
    """The additive counts of :func:`two_sided` (:data:`COUNTS`, :data:`ALWAYS_KNOWN`, ``source``)."""
    n = len(batch)
    amount_minor = np.asarray(amount_minor, dtype=np.int64)
    if amount_minor.shape != (n,) or (truth is not None and truth.codes.shape != (n,)):
        raise InvalidInput(
            f"amounts and truth must have one value per decision ({n})", field="truth"
        )
    refund = batch.refund_amount_minor.astype(np.int64)
    platform = batch.payer_code == PAYERS.index("platform")
    person = np.isin(batch.action_code, [ACTIONS.index(a) for a in PEOPLE])
    out: dict[str, object] = {
        "source": NO_SOURCE if truth is None else truth.source,
        "platform_cost_minor": int(refund[platform].sum()),
        "to_a_person": int(person.sum()),
    }
    if truth is None:
        return out | dict.fromkeys(COUNTS)
    honest, abusive = truth.codes == HONEST, truth.codes == ABUSIVE
    refused = honest & (batch.action_code == ACTIONS.index("reject"))
    keeps = np.isin(batch.action_code, [ACTIONS.index(a) for a in KEEPS_GOODS])
    bad_paid = abusive & keeps & (refund > 0)
    paid = honest & (refund > 0)
    return out | {
        "honest": int(honest.sum()),
        "honest_refused": int(refused.sum()),
        "honest_refused_minor": int(amount_minor[refused].sum()),
        "abusive": int(abusive.sum()),
        "abusive_paid": int(bad_paid.sum()),
        "abusive_paid_minor": int(refund[bad_paid].sum()),
        "merchant_loss_minor": int(refund[bad_paid & ~platform].sum()),
        "paid_at_once": int((paid & ~batch.requires_return).sum()),
        "paid_after_return": int((paid & batch.requires_return).sum()),
    }


def add(a: dict[str, object], b: dict[str, object]) -> dict[str, object]:
    """The counts of two disjoint sets of requests together (unknown stays unknown).

    Raises:
        InvalidInput: the two were judged by different sources.
    """
    if a["source"] != b["source"]:
        raise InvalidInput(
            f"cannot add errors judged by {a['source']} to errors judged by {b['source']}",
            field="source",
        )
    out: dict[str, object] = {"source": a["source"]}
    for k in (*COUNTS, *ALWAYS_KNOWN):
        out[k] = None if a[k] is None or b[k] is None else int(a[k]) + int(b[k])  # type: ignore[call-overload]
    return out


def from_counts(c: dict[str, object]) -> TwoSidedErrors:
    """The figures of a set of counts (:func:`counts`, maybe summed by :func:`add`)."""
    common = {"platform_cost_minor": int(c["platform_cost_minor"]),  # type: ignore[call-overload]
              "to_a_person": int(c["to_a_person"])}  # type: ignore[call-overload]  # fmt: skip
    if c["honest"] is None:
        return TwoSidedErrors(str(c["source"]), None, None, None, None, None, None, None,
                              honest_paid=None, time_to_money_median_hours=None,
                              time_to_money_p90_hours=None, **common)  # fmt: skip
    k = {name: int(c[name]) for name in COUNTS}  # type: ignore[call-overload]
    hours = np.repeat([0.0, float(RETURN_HOURS)], [k["paid_at_once"], k["paid_after_return"]])
    return TwoSidedErrors(
        source=str(c["source"]),
        honest_requests=k["honest"],
        abusive_requests=k["abusive"],
        honest_refused=rate(k["honest_refused"], k["honest"]),
        honest_refused_minor=k["honest_refused_minor"],
        abusive_paid=rate(k["abusive_paid"], k["abusive"]),
        abusive_paid_minor=k["abusive_paid_minor"],
        merchant_loss_minor=k["merchant_loss_minor"],
        honest_paid=k["paid_at_once"] + k["paid_after_return"],
        time_to_money_median_hours=nearest_rank(hours, 0.5),
        time_to_money_p90_hours=nearest_rank(hours, 0.9),
        **common,
    )


#: What a figure says when neither ground truth nor appeal outcomes know it.
UNKNOWN_TEXT = "unknown"


def error_row(name: str, e: TwoSidedErrors, cur: str) -> dict[str, object]:
    """One policy's two-sided errors as a row (money in major units, "unknown" where unknown).

    A figure is unknown without a source, and also when its source knows no request of the
    kind (no honest or no abusive request among those appealed): 0 would read as "no error".
    The same columns on every surface: ``tianping policy replay``, the race report, the
    dashboard and the HTML report.
    """
    honest = e.honest_refused if e.honest_refused and e.honest_refused.of else None
    abusive = e.abusive_paid if e.abusive_paid and e.abusive_paid.of else None

    def money(v: int | None, known_kind: Rate | None) -> object:
        return UNKNOWN_TEXT if v is None or known_kind is None else format_major(v, cur)

    def known(v: object) -> object:
        return UNKNOWN_TEXT if v is None else v

    return {
        "policy": name,
        "source": e.source,
        "honest_requests": known(e.honest_requests),
        **_rate_cells("honest_refused", honest),
        "honest_refused_amount": money(e.honest_refused_minor, honest),
        "abusive_requests": known(e.abusive_requests),
        **_rate_cells("abusive_paid", abusive),
        "abusive_paid_amount": money(e.abusive_paid_minor, abusive),
        "merchant_loss": money(e.merchant_loss_minor, abusive),
        "platform_cost": format_major(e.platform_cost_minor, cur),
        "to_a_person": e.to_a_person,
        "time_to_money_median_hours": known(e.time_to_money_median_hours),
        "time_to_money_p90_hours": known(e.time_to_money_p90_hours),
    }


def _rate_cells(prefix: str, r: Rate | None) -> dict[str, object]:
    if r is None:
        return dict.fromkeys(
            (prefix, f"{prefix}_rate", f"{prefix}_rate_low", f"{prefix}_rate_high"), UNKNOWN_TEXT
        )
    return {
        prefix: r.count,
        f"{prefix}_rate": _four(r.rate),
        f"{prefix}_rate_low": _four(r.low),
        f"{prefix}_rate_high": _four(r.high),
    }


def _four(v: float | None) -> float | None:
    return None if v is None else round(v, 4)
