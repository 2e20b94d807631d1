"""The chart of accounts and the postings of every transfer kind (pure: no I/O).

An account is a ``(kind, owner)`` pair, e.g. ``("merchant_escrow", "o-1")``. An entry's
``amount_minor`` is signed: positive means money flows into the account, negative out of it,
so every transfer's entries sum to zero. ``docs/refunds.md`` lists each transfer's postings.
"""

from __future__ import annotations

from dataclasses import dataclass

from tianping.errors import InvalidInput

#: Money the buyer paid in through the payment channel (external; goes negative as they pay).
BUYER_PAYMENT = "buyer_payment"
#: The buyer's unspent red packets (non-cash; never negative, never paid out as cash).
BUYER_REDPACKETS = "buyer_redpackets"
#: What an order's merchant holds for it until settlement: its receivable (never negative).
MERCHANT_ESCROW = "merchant_escrow"
#: What the platform spends on refunds it pays itself (an expense; goes negative).
PLATFORM_SUBSIDY = "platform_subsidy"
#: The platform's red-packet budget: funds packets, receives their lapsed value (goes negative).
PLATFORM_REDPACKET_BUDGET = "platform_redpacket_budget"
#: The merchant protection fund, one per currency (owner: the currency code): a reserve the
#: platform fills through approved spend decisions and that pays in a merchant's place when
#: the merchant's appeal against a refund the platform decided is upheld. Never negative.
PROTECTION_FUND = "protection_fund"
#: The platform's own money set aside for reserves (an expense; goes negative as it funds them).
PLATFORM_RESERVES = "platform_reserves"

ACCOUNT_KINDS = (
    BUYER_PAYMENT,
    BUYER_REDPACKETS,
    MERCHANT_ESCROW,
    PLATFORM_SUBSIDY,
    PLATFORM_REDPACKET_BUDGET,
    PROTECTION_FUND,
    PLATFORM_RESERVES,
)
#: Accounts whose balance must never be negative.
RESTRICTED_KINDS = (BUYER_REDPACKETS, MERCHANT_ESCROW, PROTECTION_FUND)
PLATFORM = "platform"

ORDER_PAYMENT = "order_payment"
REDPACKET_ISSUE = "redpacket_issue"
REDPACKET_REDEEM = "redpacket_redeem"
REDPACKET_RESTORE = "redpacket_restore"
REDPACKET_REPLACEMENT = "redpacket_replacement"
REDPACKET_LAPSE = "redpacket_lapse"
REFUND = "refund"
REVERSAL = "reversal"
FUND_TOP_UP = "fund_top_up"
FUND_PAYOUT = "fund_payout"

TRANSFER_KINDS = (
    ORDER_PAYMENT,
    REDPACKET_ISSUE,
    REDPACKET_REDEEM,
    REDPACKET_RESTORE,
    REDPACKET_REPLACEMENT,
    REDPACKET_LAPSE,
    REFUND,
    REVERSAL,
    FUND_TOP_UP,
    FUND_PAYOUT,
)


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of a transfer: ``amount_minor`` into (positive) or out of (negative) an account."""

    kind: str
    owner: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class TransferDraft:
    """A transfer before it is stored; ``transfer_id`` is its idempotency key."""

    transfer_id: str
    kind: str
    currency: str
    postings: tuple[Posting, ...]
    order_id: str | None = None
    reverses: str | None = None
    memo: str = ""


def validate(draft: TransferDraft) -> TransferDraft:
    """Check a draft is a well-formed, balanced transfer; returns it unchanged.

    Raises:
        InvalidInput: unknown kind or account, a zero or non-integer leg, an unbalanced sum,
            or a red packet flowing into a cash account.
    """
    if draft.kind not in TRANSFER_KINDS:
        raise InvalidInput(f"unknown transfer kind {draft.kind!r}", field="kind")
    if not draft.postings:
        raise InvalidInput(f"transfer {draft.transfer_id} has no postings", field="postings")
    for p in draft.postings:
        if p.kind not in ACCOUNT_KINDS:
            raise InvalidInput(f"unknown account kind {p.kind!r}", field="account")
        if not isinstance(p.amount_minor, int) or isinstance(p.amount_minor, bool):
            raise InvalidInput("postings are integer minor units", field="amount_minor")
        if p.amount_minor == 0:
            raise InvalidInput(f"transfer {draft.transfer_id} has a zero leg", field="amount_minor")
    total = sum(p.amount_minor for p in draft.postings)
    if total != 0:
        raise InvalidInput(
            f"transfer {draft.transfer_id} is unbalanced by {total} minor units", field="postings"
        )
    if pays_packet_as_cash(draft.postings):
        raise InvalidInput(
            f"transfer {draft.transfer_id} would pay a red packet out as cash", field="postings"
        )
    return draft


def pays_packet_as_cash(postings: tuple[Posting, ...] | list[Posting]) -> bool:
    """True when packet value leaves a buyer's packets and cash reaches a buyer in one transfer."""
    packets_out = any(p.kind == BUYER_REDPACKETS and p.amount_minor < 0 for p in postings)
    cash_in = any(p.kind == BUYER_PAYMENT and p.amount_minor > 0 for p in postings)
    return packets_out and cash_in


def _move(
    source: tuple[str, str], target: tuple[str, str], amount_minor: int
) -> tuple[Posting, ...]:
    if amount_minor <= 0:
        raise InvalidInput("a transfer moves a positive amount", field="amount_minor")
    return (Posting(*source, -amount_minor), Posting(*target, amount_minor))


def order_payment(order_id: str, buyer_id: str, amount_minor: int, currency: str) -> TransferDraft:
    """The buyer's cash for an order goes into the merchant's escrow for it."""
    legs = _move((BUYER_PAYMENT, buyer_id), (MERCHANT_ESCROW, order_id), amount_minor)
    return TransferDraft(f"order:{order_id}:payment", ORDER_PAYMENT, currency, legs, order_id)


def redpacket_issue(
    transfer_id: str,
    buyer_id: str,
    amount_minor: int,
    currency: str,
    *,
    kind: str = REDPACKET_ISSUE,
) -> TransferDraft:
    """The red-packet budget funds a packet into the buyer's packets (issue, restore, replacement)."""
    legs = _move((PLATFORM_REDPACKET_BUDGET, PLATFORM), (BUYER_REDPACKETS, buyer_id), amount_minor)
    return TransferDraft(transfer_id, kind, currency, legs)


def redpacket_redeem(
    coupon_id: str, order_id: str, buyer_id: str, amount_minor: int, currency: str
) -> TransferDraft:
    """A packet spent on an order: its value moves into the order's escrow."""
    legs = _move((BUYER_REDPACKETS, buyer_id), (MERCHANT_ESCROW, order_id), amount_minor)
    return TransferDraft(
        f"coupon:{coupon_id}:redeem:{order_id}", REDPACKET_REDEEM, currency, legs, order_id
    )


def redpacket_lapse(
    transfer_id: str,
    source: tuple[str, str],
    amount_minor: int,
    currency: str,
    order_id: str | None,
) -> TransferDraft:
    """Packet value the buyer no longer holds goes back to the red-packet budget."""
    legs = _move(source, (PLATFORM_REDPACKET_BUDGET, PLATFORM), amount_minor)
    return TransferDraft(transfer_id, REDPACKET_LAPSE, currency, legs, order_id)


def refund(
    transfer_id: str,
    *,
    order_id: str,
    buyer_id: str,
    cash_minor: int,
    packet_share_minor: int,
    payer: str,
    currency: str,
) -> TransferDraft:
    """Cash back to the buyer, paid by the merchant's escrow or the platform's subsidy.

    When the merchant pays, the escrow also hands the red packet's pro-rated share of the
    refunded goods back to the red-packet budget (the merchant never keeps packet money for
    goods it took back). When the platform pays, the escrow is untouched.
    """
    if cash_minor <= 0 or packet_share_minor < 0:
        raise InvalidInput("a refund moves a positive cash amount", field="refund_amount_minor")
    if payer == "platform":
        legs = _move((PLATFORM_SUBSIDY, PLATFORM), (BUYER_PAYMENT, buyer_id), cash_minor)
    elif payer == "merchant":
        legs = (
            Posting(MERCHANT_ESCROW, order_id, -(cash_minor + packet_share_minor)),
            Posting(BUYER_PAYMENT, buyer_id, cash_minor),
        )
        if packet_share_minor:
            legs += (Posting(PLATFORM_REDPACKET_BUDGET, PLATFORM, packet_share_minor),)
    else:
        raise InvalidInput(f"unknown payer {payer!r}; use merchant or platform", field="payer")
    return TransferDraft(transfer_id, REFUND, currency, legs, order_id)


def fund_top_up(
    decision_id: int, amount_minor: int, currency: str, *, memo: str = ""
) -> TransferDraft:
    """An approved spend decision fills the protection fund of its currency (one per decision)."""
    legs = _move((PLATFORM_RESERVES, PLATFORM), (PROTECTION_FUND, currency), amount_minor)
    return TransferDraft(fund_top_up_id(decision_id), FUND_TOP_UP, currency, legs, memo=memo)


def fund_top_up_id(decision_id: int) -> str:
    """The transfer id of decision ``decision_id``'s top-up: a decision fills the fund once."""
    return f"fund:top-up:decision:{decision_id}"


def fund_payout(
    refund_id: str, *, order_id: str, buyer_id: str, amount_minor: int, currency: str
) -> TransferDraft:
    """The fund pays a buyer's refund in the merchant's place (the merchant's appeal upheld)."""
    legs = _move((PROTECTION_FUND, currency), (BUYER_PAYMENT, buyer_id), amount_minor)
    return TransferDraft(fund_payout_id(refund_id), FUND_PAYOUT, currency, legs, order_id)


def fund_payout_id(refund_id: str) -> str:
    """The transfer id of the fund's payout for refund request ``refund_id`` (at most one)."""
    return f"refund:{refund_id}:fund"


def reversal(original: TransferDraft, *, memo: str = "") -> TransferDraft:
    """The correction of a stored transfer: the same legs with the signs flipped."""
    legs = tuple(Posting(p.kind, p.owner, -p.amount_minor) for p in original.postings)
    return TransferDraft(
        f"reversal:{original.transfer_id}",
        REVERSAL,
        original.currency,
        legs,
        original.order_id,
        reverses=original.transfer_id,
        memo=memo,
    )


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken ledger rule: which ``check``, on what ``subject``, and the numbers."""

    check: str
    subject: str
    detail: str
