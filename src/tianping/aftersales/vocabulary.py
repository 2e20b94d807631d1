"""Which refund reasons and decisions count as what, for the scores (pure).

The refunds table keeps ``reason`` and ``decision`` as free text, so the scores read them through
one :class:`Vocabulary`: reasons are normalised (lower case, trimmed, spaces and hyphens turned
into underscores: ``"Not as described"`` → ``not_as_described``) and then matched against the
sets below. ``docs/aftersales.md`` lists the defaults and why each reason sits where it does.
"""

from __future__ import annotations

from dataclasses import dataclass


def normalise(text: str) -> str:
    """The matching key of a reason or decision.

    >>> normalise("  Not-received ")
    'not_received'
    """
    return text.strip().lower().replace("-", "_").replace(" ", "_")


#: Other spellings of the reasons the shipped policies decide on, after :func:`normalise`
#: (the simulator, for one, writes ``change_of_mind`` and ``quality_problem``).
REASON_SYNONYMS: dict[str, str] = {
    "change_of_mind": "changed_mind",
    "no_reason": "changed_mind",
    "no_longer_wanted": "changed_mind",
    "quality_problem": "quality",
    "quality_issue": "quality",
    "defect": "quality",
    "defective": "quality",
    "empty_package": "empty_parcel",
}


def canonical_reason(text: str) -> str:
    """The reason code a policy matches: :func:`normalise`, then :data:`REASON_SYNONYMS`.

    >>> canonical_reason("Change of mind"), canonical_reason("quality_problem")
    ('changed_mind', 'quality')
    >>> canonical_reason("Not-as-described")
    'not_as_described'
    """
    key = normalise(text)
    return REASON_SYNONYMS.get(key, key)


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
