"""The chart of accounts and transfer shapes (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tianping.errors import InvalidInput
from tianping.ledger import postings as P


def test_order_payment_moves_cash_into_escrow():
    d = P.validate(P.order_payment("o1", "b1", 1234, "CNY"))
    assert d.transfer_id == "order:o1:payment"
    assert d.postings == (
        P.Posting(P.BUYER_PAYMENT, "b1", -1234),
        P.Posting(P.MERCHANT_ESCROW, "o1", 1234),
    )


def test_merchant_refund_returns_the_packet_share_to_the_budget():
    d = P.refund(
        "r",
        order_id="o1",
        buyer_id="b1",
        cash_minor=300,
        packet_share_minor=33,
        payer="merchant",
        currency="CNY",
    )
    assert sum(p.amount_minor for p in d.postings) == 0
    assert {(p.kind, p.amount_minor) for p in d.postings} == {
        (P.MERCHANT_ESCROW, -333),
        (P.BUYER_PAYMENT, 300),
        (P.PLATFORM_REDPACKET_BUDGET, 33),
    }


def test_platform_refund_leaves_escrow_alone():
    d = P.refund(
        "r",
        order_id="o1",
        buyer_id="b1",
        cash_minor=300,
        packet_share_minor=33,
        payer="platform",
        currency="CNY",
    )
    assert {p.kind for p in d.postings} == {P.PLATFORM_SUBSIDY, P.BUYER_PAYMENT}


def test_unbalanced_transfer_is_refused():
    d = P.TransferDraft(
        "t",
        P.REFUND,
        "CNY",
        (P.Posting(P.BUYER_PAYMENT, "b", 5), P.Posting(P.MERCHANT_ESCROW, "o", -4)),
    )
    with pytest.raises(InvalidInput, match="unbalanced by 1"):
        P.validate(d)


def test_packet_value_never_reaches_cash():
    d = P.TransferDraft(
        "t",
        P.REFUND,
        "CNY",
        (P.Posting(P.BUYER_REDPACKETS, "b", -5), P.Posting(P.BUYER_PAYMENT, "b", 5)),
    )
    with pytest.raises(InvalidInput, match="red packet out as cash"):
        P.validate(d)


@pytest.mark.parametrize("bad", [0, -1])
def test_a_transfer_moves_a_positive_amount(bad):
    with pytest.raises(InvalidInput):
        P.order_payment("o", "b", bad, "CNY")


def test_unknown_payer_and_kinds_are_named():
    with pytest.raises(InvalidInput, match="unknown payer 'courier'"):
        P.refund(
            "r",
            order_id="o",
            buyer_id="b",
            cash_minor=1,
            packet_share_minor=0,
            payer="courier",
            currency="CNY",
        )
    with pytest.raises(InvalidInput, match="unknown account kind"):
        P.validate(
            P.TransferDraft(
                "t", P.REFUND, "CNY", (P.Posting("cash", "x", 1), P.Posting("cash", "y", -1))
            )
        )


@given(
    cash=st.integers(1, 10**12),
    share=st.integers(0, 10**9),
    payer=st.sampled_from(["merchant", "platform"]),
)
def test_every_refund_and_its_reversal_balance(cash, share, payer):
    d = P.validate(
        P.refund(
            "r",
            order_id="o",
            buyer_id="b",
            cash_minor=cash,
            packet_share_minor=share,
            payer=payer,
            currency="CNY",
        )
    )
    rev = P.validate(P.reversal(d))
    assert rev.reverses == "r" and rev.transfer_id == "reversal:r"
    assert [p.amount_minor for p in rev.postings] == [-p.amount_minor for p in d.postings]
