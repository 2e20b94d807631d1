"""The refund lifecycle on the store (SQLite and PostgreSQL): each path, its events and timers."""

from __future__ import annotations

import pytest

from refund_helpers import make_env, order_in, refund_in, use_lifecycle_policy
from tianping.errors import Conflict, InvalidInput
from tianping.ledger import postings as P
from tianping.ledger import repository as ledger_repo
from tianping.ledger import service as ledger
from tianping.refunds import orders as refund_orders
from tianping.refunds import policies, service
from tianping.refunds import reconcile as refund_reconcile
from tianping.refunds import repository as repo
from tianping.refunds import timers as refund_timers
from tianping.refunds.schemas import (
    AppealIn,
    MerchantResponseIn,
    ReturnReceivedIn,
    ReturnShippedIn,
    ReviewIn,
)


@pytest.fixture
def env(session):
    e = make_env()
    use_lifecycle_policy(session, e)
    refund_orders.record_order(order_in("o1", 10_000), session=session, env=e)
    session.commit()
    return e


def _request(session, env, reason="quality", amount=10_000):
    req = service.request_refund(refund_in("o1", amount, reason), session=session, env=env)
    session.commit()
    return req


def _events(session, req):
    return [e.event for e in repo.events_of(session, req.id)]


def _timers(session, req):
    return {(t.kind, t.state) for t in repo.timers_of(session, req.id)}


def _order(session):
    return refund_orders.get_order_or_raise("o1", session=session)


def _tick(session, env):
    out = refund_timers.tick(session=session, env=env)
    session.commit()
    return out["timers_fired"]


def test_refund_only_pays_then_the_appeal_window_closes_once(session, env):
    req = _request(session, env)
    assert (req.status, req.refunded_minor, req.payer) == ("refunded", 10_000, "merchant")
    assert _timers(session, req) == {("appeal_window", "pending")}
    d = repo.get_decision(session, req.decision_id)
    assert d.policy_version == LIFECYCLE_VERSION(session)
    assert d.inputs["amount_minor"] == 10_000 and d.inputs["reason"] == "quality"
    assert [r["code"] for r in d.reasons] == ["r"]
    env.clock.advance(days=7)
    assert _tick(session, env) == 1
    assert _tick(session, env) == 0
    assert req.status == "closed"
    assert _events(session, req) == ["requested", "refund", "appeal_window_closed"]
    assert refund_reconcile.audit(session=session) == []


def LIFECYCLE_VERSION(session):  # noqa: N802 - reads like the constant it stands for
    from refund_helpers import LIFECYCLE_POLICY

    return LIFECYCLE_POLICY.version


def test_merchant_silent_48h_decides_for_the_buyer_exactly_once(session, env):
    req = _request(session, env, "not_received")
    assert req.status == "negotiating"
    assert _order(session).reserved_minor == 10_000
    env.clock.advance(hours=47)
    assert _tick(session, env) == 0
    env.clock.advance(hours=1)
    assert _tick(session, env) == 1
    assert _tick(session, env) == 0
    session.refresh(req)
    assert (req.status, req.refunded_minor) == ("refunded", 10_000)
    d = repo.get_decision(session, req.decision_id)
    assert (d.source, d.reasons[0]["code"]) == ("sla", "merchant_silent_48h")
    assert _order(session).reserved_minor == 0
    assert _timers(session, req) == {("merchant_response", "fired"), ("appeal_window", "pending")}


def test_merchant_refusal_goes_to_the_review_queue(session, env):
    req = _request(session, env, "not_received")
    service.respond_as_merchant(
        req.id, MerchantResponseIn(accept=False, note="tracked"), session=session, env=env
    )
    session.commit()
    queue, total = service.review_queue(session=session, limit=10, offset=0)
    assert (total, [r.id for r in queue]) == (1, [req.id])
    assert ("merchant_response", "cancelled") in _timers(session, req)
    with pytest.raises(InvalidInput, match="exceeds the 10000 requested"):
        service.review(
            req.id,
            ReviewIn(action="partial_refund", refund_amount_minor=20_000),
            reviewer="ops",
            session=session,
            env=env,
        )
    session.rollback()
    service.review(
        req.id,
        ReviewIn(action="partial_refund", refund_amount_minor=4000, payer="platform"),
        reviewer="ops",
        session=session,
        env=env,
    )
    session.commit()
    assert (req.status, req.refunded_minor, req.payer) == ("refunded", 4000, "platform")
    assert service.review_queue(session=session, limit=10, offset=0)[1] == 0
    # The rest of the order stays refundable: nothing is held any more.
    assert (_order(session).refunded_minor, _order(session).reserved_minor) == (4000, 0)


def test_return_then_refund_when_the_goods_come_back(session, env):
    req = _request(session, env, "changed_mind")
    assert req.status == "awaiting_return"
    service.return_shipped(req.id, ReturnShippedIn(tracking_number="SF1"), session=session, env=env)
    session.commit()
    assert _timers(session, req) >= {("return_receipt", "pending")}
    service.return_received(req.id, ReturnReceivedIn(), session=session, env=env)
    session.commit()
    assert (req.status, req.returned, req.refunded_minor) == ("refunded", True, 10_000)
    assert _events(session, req) == [
        "requested",
        "require_return",
        "return_shipped",
        "return_received",
    ]
    with pytest.raises(Conflict, match="is refunded: cannot return received"):
        service.return_received(req.id, ReturnReceivedIn(), session=session, env=env)


def test_return_never_shipped_cancels_and_frees_the_amount(session, env):
    req = _request(session, env, "changed_mind")
    env.clock.advance(days=7)
    assert _tick(session, env) == 1
    session.refresh(req)
    assert req.status == "cancelled"
    assert _order(session).reserved_minor == 0
    assert _request(session, env, "quality").status == "refunded"


def test_merchant_silent_on_receipt_refunds(session, env):
    req = _request(session, env, "changed_mind")
    service.return_shipped(req.id, ReturnShippedIn(), session=session, env=env)
    session.commit()
    env.clock.advance(days=10)
    assert _tick(session, env) == 1
    session.refresh(req)
    assert (req.status, req.refunded_minor) == ("refunded", 10_000)
    assert _events(session, req)[-1] == "receipt_not_confirmed"


def _appealed(session, env, amount=10_000):
    req = _request(session, env, "quality", amount=amount)
    env.clock.advance(days=6)
    service.appeal(req.id, AppealIn(note="resold"), session=session, env=env)
    session.commit()
    return req


def _uphold(session, env, req):
    service.review(
        req.id, ReviewIn(action="uphold_appeal"), reviewer="ops", session=session, env=env
    )
    session.commit()


def test_appeal_upheld_pays_the_refund_from_the_protection_fund(session, env):
    ledger.fund_top_up(1, 25_000, "CNY", session=session, now=env.clock.now())
    req = _appealed(session, env)
    assert req.status == "appealed"
    assert service.review_queue(session=session, limit=10, offset=0)[1] == 1
    _uphold(session, env, req)
    assert (req.status, req.payer, req.refunded_minor) == ("closed", "platform", 10_000)
    assert ledger_repo.balance(session, P.MERCHANT_ESCROW, "o1") == 10_000  # made whole
    assert ledger_repo.balance(session, P.PROTECTION_FUND, "CNY") == 15_000
    assert ledger_repo.balance(session, P.PLATFORM_SUBSIDY, P.PLATFORM) == 0
    assert ledger_repo.get_transfer(session, f"reversal:refund:{req.id}") is not None
    assert ledger.fund_payouts(session=session) == {f"refund:{req.id}:fund": 10_000}
    assert ledger.order_cash("o1", session=session).refunded_minor == 10_000  # buyer keeps it
    assert refund_reconcile.audit(session=session) == []


def test_an_upheld_appeal_the_fund_cannot_cover_is_refused_and_nothing_is_written(session, env):
    ledger.fund_top_up(1, 9_999, "CNY", session=session, now=env.clock.now())
    req = _appealed(session, env)
    transfers = ledger.summary(session=session)["transfers"]
    with pytest.raises(Conflict) as err:
        _uphold(session, env, req)
    session.rollback()
    assert err.value.code == "fund_insufficient"
    assert "99.99 CNY" in err.value.message and "100.00 CNY" in err.value.message
    session.refresh(req)
    assert (req.status, req.payer) == ("appealed", "merchant")
    assert ledger.summary(session=session)["transfers"] == transfers
    assert ledger_repo.balance(session, P.PROTECTION_FUND, "CNY") == 9_999
    ledger.fund_top_up(2, 1, "CNY", session=session, now=env.clock.now())  # topped up: it pays
    _uphold(session, env, req)
    assert ledger_repo.balance(session, P.PROTECTION_FUND, "CNY") == 0
    assert refund_reconcile.audit(session=session) == []


def test_a_fund_in_another_currency_does_not_pay(session, env):
    ledger.fund_top_up(1, 50_000, "USD", session=session, now=env.clock.now())
    req = _appealed(session, env)
    with pytest.raises(Conflict, match="holds 0.00 CNY"):
        _uphold(session, env, req)


def test_the_audit_names_a_payout_without_an_appeal_and_an_appeal_without_its_payout(session, env):
    now = env.clock.now()
    ledger.fund_top_up(1, 50_000, "CNY", session=session, now=now)
    ledger.fund_pay("r-none", order_id="o1", buyer_id="b1", amount_minor=1_000,
                    currency="CNY", session=session, now=now)  # fmt: skip
    found = refund_reconcile.fund_matches_appeals(session=session)
    assert [(v.check, v.subject) for v in found] == [("fund_payout", "refund:r-none:fund")]
    assert "without an upheld appeal" in found[0].detail


def test_the_fund_never_dipped_below_zero_is_checked_through_its_history(session, env):
    """A restricted account is refused at posting; the audit also reads the running balance,
    so a dip that rows written around the service (an import, a hand fix) left is found even
    when the balance is positive again now."""
    from tianping.ledger.postings import Posting, TransferDraft

    now = env.clock.now()
    out = TransferDraft("hand:out", P.FUND_PAYOUT, "CNY",
                        (Posting(P.PROTECTION_FUND, "CNY", -500), Posting(P.BUYER_PAYMENT, "b1", 500)))  # fmt: skip
    ledger_repo.insert_transfer(session, out, now)  # around the service's check
    ledger.fund_top_up(1, 1_000, "CNY", session=session, now=now)
    assert ledger_repo.balance(session, P.PROTECTION_FUND, "CNY") == 500
    dips = [v for v in ledger.check(session=session) if v.check == "fund_negative"]
    assert [(v.subject, v.detail) for v in dips] == [
        ("protection_fund:CNY", "balance -500 after hand:out")
    ]


def test_appeal_after_the_window_is_refused(session, env):
    req = _request(session, env, "quality")
    env.clock.advance(days=7)
    with pytest.raises(Conflict, match="appeal window closed") as err:
        service.appeal(req.id, AppealIn(), session=session, env=env)
    assert err.value.code == "window_closed"


def test_rejected_request_releases_its_reservation(session, env):
    req = _request(session, env, "fraud")
    assert (req.status, req.refunded_minor) == ("rejected", 0)
    assert _order(session).reserved_minor == 0
    assert _timers(session, req) == set()


def test_over_the_refundable_amount_is_refused_with_the_numbers(session, env):
    _request(session, env, "quality", 6000)
    with pytest.raises(InvalidInput, match="requested 5000 exceeds .* 4000 of 10000 paid") as err:
        _request(session, env, "quality", 5000)
    assert err.value.code == "exceeds_refundable"


def test_replay_of_stored_decisions_gives_the_same_decisions(session, env):
    for reason, amount in [("quality", 1000), ("wrong_size", 2000), ("fraud", 500)]:
        _request(session, env, reason, amount)
    policies.activate("taobao-2024-08", session=session, now=env.clock.now())
    session.commit()
    _request(session, env, "quality", 1500)
    result = refund_reconcile.replay(session=session)
    assert (result.checked, result.mismatches) == (4, [])
    versions = {d.policy_version for d in repo.decisions_by_policy(session, limit=10, offset=0)}
    assert len(versions) == 2


def test_reasons_are_stored_in_the_policies_vocabulary(session, env):
    req = _request(session, env, "Quality-Problem", 1000)
    assert req.reason == "quality"
    assert repo.get_decision(session, req.decision_id).inputs["reason"] == "quality"


def _stored_view(session, refund_id):
    session.expire_all()
    return service.view(service.get_or_raise(refund_id, session=session), session=session)


@pytest.mark.parametrize("reason", ["quality", "not_received", "changed_mind"])
def test_the_answer_to_a_new_request_equals_its_stored_rows(session, env, reason):
    # The answer is built from the rows as they are written, not read back: it must be what
    # a later read of the request shows.
    req = service.request_refund(refund_in("o1", 10_000, reason), session=session, env=env)
    fresh = service.view(req, session=session)
    session.commit()
    assert fresh == _stored_view(session, req.id)
    assert fresh["events"] and fresh["decision"]["policy_version"] == LIFECYCLE_VERSION(session)


def test_a_request_object_kept_in_the_session_shows_later_changes(session, env):
    req = _request(session, env, "not_received")
    env.clock.advance(hours=48)
    assert _tick(session, env) == 1
    assert service.view(req, session=session) == _stored_view(session, req.id)
    assert ("merchant_response", "fired") in _timers(session, req)


def test_two_appeals_upheld_at_once_never_overdraw_the_fund(engine, session, env, monkeypatch):
    """The fund covers one of two upheld appeals decided in parallel: exactly one is paid, the
    other is refused with fund_insufficient, on SQLite and PostgreSQL alike. Each payout waits
    (up to 2 s) after reading the balance for the other to read it too: without the fund's lock
    both read 15,000 and both pay (checked by removing it)."""
    import contextlib
    import threading

    from tianping.store import make_sessionmaker

    both_read = threading.Barrier(2)
    reverse = ledger.reverse

    def reverse_when_both_read(*args, **kwargs):  # runs right after the payout's balance check
        # broken: the other waits on the fund's lock (or SQLite's), as it should
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait(timeout=2)
        return reverse(*args, **kwargs)

    monkeypatch.setattr(ledger, "reverse", reverse_when_both_read)

    refund_orders.record_order(order_in("o2", 10_000), session=session, env=env)
    session.commit()
    reqs = []
    for order_id in ("o1", "o2"):
        r = service.request_refund(refund_in(order_id, 10_000, "quality"), session=session, env=env)
        session.commit()
        reqs.append(r.id)
    env.clock.advance(days=6)
    for rid in reqs:
        service.appeal(rid, AppealIn(note="resold"), session=session, env=env)
    ledger.fund_top_up(1, 15_000, "CNY", session=session, now=env.clock.now())
    session.commit()
    sessions, start, outcome = make_sessionmaker(engine), threading.Barrier(2), {}

    def uphold(rid: str) -> None:
        s = sessions()
        try:
            start.wait()
            service.review(rid, ReviewIn(action="uphold_appeal"), reviewer="ops", session=s,
                           env=env)  # fmt: skip
            s.commit()
            outcome[rid] = "paid"
        except Conflict as exc:
            s.rollback()
            outcome[rid] = exc.code
        finally:
            s.close()

    threads = [threading.Thread(target=uphold, args=(rid,)) for rid in reqs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcome.values()) == ["fund_insufficient", "paid"], outcome
    session.expire_all()
    assert ledger_repo.balance(session, P.PROTECTION_FUND, "CNY") == 5_000
    assert len(ledger.fund_payouts(session=session)) == 1
    assert refund_reconcile.audit(session=session) == []
