"""Which refund reasons and decisions count as what, for the scores (pure).

The refunds table keeps ``reason`` and ``decision`` as free text, so the scores read them through
one :class:`Vocabulary`: reasons are normalised (lower case, trimmed, spaces and hyphens turned
into underscores: ``"Not as described"`` → ``not_as_described``) and then matched against the
sets below. ``docs/scores.md`` lists the defaults and why each reason sits where it does.
"""

from __future__ import annotations

from dataclasses import dataclass


def normalise(text: str) -> str:
    """The matching key of a reason or decision.

    >>> normalise("  Not-received ")
    'not_received'
    """
    return text.strip().lower().replace("-", "_").replace(" ", "_")


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Reason and decision groups the scores count.

    Attributes:
        quality: reasons that say the product itself is at fault (defect signal, merchant
            quality refund rate).
        not_received: parcel never arrived or arrived empty (buyer abnormal pattern).
        misrepresentation: "counterfeit" / "not as described" claims (buyer abnormal pattern when
            serial).
        complaint: fulfilment and service faults of the merchant (merchant complaint rate).
        appeal_upheld: decisions that record a merchant appeal upheld against the buyer.
    """

    quality: frozenset[str] = frozenset(
        {
            "quality",
            "quality_problem",
            "quality_issue",
            "defect",
            "defective",
            "damaged",
            "broken",
            "not_as_described",
            "counterfeit",
            "fake",
        }
    )
    not_received: frozenset[str] = frozenset(
        {"not_received", "empty_parcel", "empty_package", "missing_item", "lost_parcel", "lost"}
    )
    misrepresentation: frozenset[str] = frozenset({"counterfeit", "fake", "not_as_described"})
    complaint: frozenset[str] = frozenset(
        {
            "not_received",
            "empty_parcel",
            "empty_package",
            "missing_item",
            "lost_parcel",
            "lost",
            "late_delivery",
            "wrong_item",
            "service",
            "no_response",
        }
    )
    appeal_upheld: frozenset[str] = frozenset(
        {"appeal_upheld", "merchant_appeal_upheld", "rejected_on_appeal", "buyer_fault"}
    )


DEFAULT_VOCABULARY = Vocabulary()
