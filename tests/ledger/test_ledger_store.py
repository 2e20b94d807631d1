"""Posting, reversing and auditing on the store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tianping.errors import Conflict, InvalidInput
from tianping.ledger import postings as P
from tianping.ledger import service as ledger
from tianping.ledger.models import LedgerEntry

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def test_posting_is_idempotent_by_transfer_id(session):
    d = P.order_payment("o1", "b1", 500, "CNY")
    assert ledger.post(d, session=session, now=NOW) is True
    assert ledger.post(d, session=session, now=NOW) is False
    assert ledger.order_cash("o1", session=session).paid_minor == 500
    assert session.query(LedgerEntry).count() == 2


def test_same_id_with_other_postings_conflicts(session):
    ledger.post(P.order_payment("o1", "b1", 500, "CNY"), session=session, now=NOW)
    with pytest.raises(Conflict, match="different postings"):
        ledger.post(P.order_payment("o1", "b1", 501, "CNY"), session=session, now=NOW)


def test_restricted_account_cannot_go_negative(session):
    ledger.post(P.order_payment("o1", "b1", 500, "CNY"), session=session, now=NOW)
    too_much = P.refund(
        "r1",
        order_id="o1",
        buyer_id="b1",
        cash_minor=501,
        packet_share_minor=0,
        payer="merchant",
        currency="CNY",
    )
    with pytest.raises(Conflict, match="merchant_escrow:o1 at -1"):
        ledger.post(too_much, session=session, now=NOW)


def test_reversal_appends_and_happens_once(session):
    ledger.post(P.order_payment("o1", "b1", 500, "CNY"), session=session, now=NOW)
    refund = P.refund(
        "r1",
        order_id="o1",
        buyer_id="b1",
        cash_minor=200,
        packet_share_minor=0,
        payer="merchant",
        currency="CNY",
    )
    ledger.post(refund, session=session, now=NOW)
    assert ledger.order_cash("o1", session=session).refunded_minor == 200
    rid = ledger.reverse("r1", session=session, now=NOW)
    assert ledger.reverse("r1", session=session, now=NOW) == rid
    cash = ledger.order_cash("o1", session=session)
    assert (cash.paid_minor, cash.refunded_minor, cash.refundable_minor) == (500, 0, 500)
    assert session.query(LedgerEntry).count() == 6
    assert ledger.check(session=session) == []


def test_second_reversal_of_one_transfer_is_refused_by_the_database(session):
    ledger.post(P.order_payment("o1", "b1", 500, "CNY"), session=session, now=NOW)
    ledger.reverse("order:o1:payment", session=session, now=NOW)
    other = P.TransferDraft(
        "another-reversal", P.REVERSAL, "CNY",
        (P.Posting(P.BUYER_PAYMENT, "b1", 500), P.Posting(P.MERCHANT_ESCROW, "o1", -500)),
        "o1", reverses="order:o1:payment",
    )  # fmt: skip
    with pytest.raises(IntegrityError):
        ledger.post(other, session=session, now=NOW)


def test_ledger_rows_are_append_only(session):
    ledger.post(P.order_payment("o1", "b1", 500, "CNY"), session=session, now=NOW)
    entry = session.query(LedgerEntry).first()
    entry.amount_minor = 1
    with pytest.raises(RuntimeError, match="append-only"):
        session.flush()


def test_zero_legs_are_refused_by_check_constraint(session):
    ledger.post(P.order_payment("o1", "b1", 500, "CNY"), session=session, now=NOW)
    with pytest.raises(IntegrityError):
        session.execute(
            text(
                "INSERT INTO ledger_entries (transfer_id, account_kind, account_owner, amount_minor, currency) VALUES ('order:o1:payment', 'merchant_escrow', 'o1', 0, 'CNY')"
            )
        )


def test_check_reports_each_kind_of_violation(session):
    ledger.post(P.order_payment("o1", "b1", 500, "CNY"), session=session, now=NOW)
    # Rows written behind the service's back: what the audit exists to catch.
    session.execute(
        text(
            "INSERT INTO ledger_transfers (id, kind, currency, order_id, memo, created_at) VALUES "
            "('bad', 'refund', 'CNY', 'o1', '', '2025-01-01 00:00:00'), "
            "('cash', 'refund', 'CNY', NULL, '', '2025-01-01 00:00:00')"
        )
    )
    session.execute(
        text(
            "INSERT INTO ledger_entries (transfer_id, account_kind, account_owner, amount_minor, currency) VALUES "
            "('bad', 'buyer_payment', 'b1', 900, 'CNY'), ('bad', 'merchant_escrow', 'o1', -800, 'CNY'), "
            "('cash', 'buyer_redpackets', 'b1', -5, 'CNY'), ('cash', 'buyer_payment', 'b1', 5, 'CNY')"
        )
    )
    found = {(v.check, v.subject) for v in ledger.check(session=session)}
    assert found == {
        ("balanced", "bad"),
        ("over_refund", "o1"),
        ("restricted_negative", "merchant_escrow:o1"),
        ("restricted_negative", "buyer_redpackets:b1"),
        ("packet_as_cash", "cash"),
    }


def test_invalid_drafts_never_reach_the_store(session):
    with pytest.raises(InvalidInput):
        ledger.post(P.TransferDraft("x", P.REFUND, "CNY", ()), session=session, now=NOW)
    assert session.query(LedgerEntry).count() == 0
