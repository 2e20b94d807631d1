"""Negotiation first (a policy's capability) through the lifecycle, and evidence on claims and
appeals as policy inputs, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from refund_helpers import make_env, order_in
from tianping.aftersales.policy import parse_policy
from tianping.errors import InvalidInput
from tianping.refunds import orders as refund_orders
from tianping.refunds import policies, service
from tianping.refunds import reconcile as refund_reconcile
from tianping.refunds import repository as repo
from tianping.refunds import timers as refund_timers
from tianping.refunds.schemas import AppealIn, MerchantResponseIn, RefundRequestIn

PHOTO = {"kind": "photo", "ref": "oss://claims/1.jpg", "sha256": "0f" * 32}
INVOICE = {"kind": "document", "ref": "oss://claims/invoice.pdf", "sha256": "a1" * 32}


def _policy(**negotiation):
    """Quality claims with a photo are refunded without return, other quality claims returned,
    damage paid by the platform, fraud rejected; negotiation first as given."""
    doc = {
        "name": "negotiation-test",
        "title": "Negotiation first",
        "source": "tests",
        "currency": "CNY",
        "reasons": {"r": {"buyer": "b", "merchant": "m"}},
        "rules": [
            {"id": "photo-quality", "priority": 10,
             "when": {"reason": "quality", "has_photo": True},
             "then": {"action": "refund_only", "payer": "merchant", "reasons": ["r"]}},
            {"id": "quality-return", "priority": 10,
             "when": {"reason": "quality", "has_photo": False},
             "then": {"action": "return_and_refund", "payer": "merchant", "reasons": ["r"]}},
            {"id": "damaged", "priority": 10, "when": {"reason": "damaged"},
             "then": {"action": "refund_only", "payer": "platform", "reasons": ["r"]}},
            {"id": "fraud", "priority": 10, "when": {"reason": "fraud"},
             "then": {"action": "reject", "reasons": ["r"]}},
            {"id": "otherwise", "priority": 0,
             "then": {"action": "manual_review", "reasons": ["r"]}},
        ],
    }  # fmt: skip
    if negotiation:
        doc["negotiation"] = negotiation
    return parse_policy(doc)


@pytest.fixture
def env(session):
    e = make_env()
    every_merchant = _policy(quality_bar=0, sla_hours=24, **{"except": ["damaged"]})
    policies.activate_policy(every_merchant, session=session, now=e.clock.now())
    refund_orders.record_order(order_in("o1", 10_000), session=session, env=e)
    session.commit()
    return e


def _request(session, env, reason="quality", evidence=()):
    data = RefundRequestIn(
        order_id="o1", reason=reason, requested_amount_minor=10_000, evidence=list(evidence)
    )
    req = service.request_refund(data, session=session, env=env)
    session.commit()
    return req


def _tick(session, env):
    out = refund_timers.tick(session=session, env=env)
    session.commit()
    return out["timers_fired"]


def _events(session, req):
    return [e.event for e in repo.events_of(session, req.id)]


def test_a_refund_the_table_would_pay_goes_to_the_merchant_first_with_the_policys_sla(session, env):
    req = _request(session, env, evidence=[PHOTO])
    assert req.status == "negotiating"
    first = repo.get_decision(session, req.decision_id)
    assert (first.action, first.rule_id) == ("merchant_negotiation", "photo-quality")
    timer = repo.pending_timer(session, req.id, "merchant_response")
    assert timer.due_at == env.clock.now() + timedelta(hours=24)  # the policy's, not the 48 h
    env.clock.advance(hours=23, minutes=59)
    assert _tick(session, env) == 0
    env.clock.advance(minutes=1)
    assert _tick(session, env) == 1
    assert _tick(session, env) == 0  # fires once
    session.refresh(req)
    assert (req.status, req.refunded_minor, req.payer) == ("refunded", 10_000, "merchant")
    d = repo.get_decision(session, req.decision_id)
    assert (d.source, d.action, d.rule_id) == ("policy", "refund_only", "photo-quality")
    assert [r["code"] for r in d.reasons] == ["negotiation_lapsed", "r"]
    assert d.inputs == first.inputs and d.policy_version == first.policy_version
    assert _events(session, req) == ["requested", "negotiate", "negotiation_lapsed"]
    assert _order_money(session) == (10_000, 0)
    assert refund_reconcile.audit(session=session) == []


def _order_money(session):
    o = refund_orders.get_order_or_raise("o1", session=session)
    return o.refunded_minor, o.reserved_minor


def test_a_lapsed_negotiation_over_a_return_asks_for_the_goods(session, env):
    req = _request(session, env)  # no photo: the table returns the goods
    assert req.status == "negotiating"
    env.clock.advance(hours=24)
    assert _tick(session, env) == 1
    session.refresh(req)
    assert (req.status, req.payer, req.refunded_minor) == ("awaiting_return", "merchant", 0)
    assert _order_money(session) == (0, 10_000)  # still held for the refund to come
    assert repo.pending_timer(session, req.id, "return_shipment") is not None
    assert _events(session, req)[-1] == "negotiation_lapsed_return"
    assert refund_reconcile.audit(session=session) == []


def test_the_merchant_who_agrees_in_time_pays_and_the_platform_never_decides(session, env):
    req = _request(session, env, evidence=[PHOTO])
    env.clock.advance(hours=10)
    service.respond_as_merchant(req.id, MerchantResponseIn(accept=True), session=session, env=env)
    session.commit()
    env.clock.advance(hours=30)
    assert _tick(session, env) == 0  # the negotiation's timer was cancelled
    session.refresh(req)
    assert (req.status, req.refunded_minor) == ("refunded", 10_000)
    assert repo.get_decision(session, req.decision_id).source == "merchant"


def test_refusals_and_exempt_rules_are_decided_at_once(session, env):
    assert _request(session, env, "fraud").status == "rejected"
    damaged = _request(session, env, "damaged")  # exempt: the platform pays at once
    assert (damaged.status, damaged.payer) == ("refunded", "platform")


def test_evidence_is_kept_with_the_claim_and_given_to_the_policy(session, env):
    req = _request(session, env, evidence=[PHOTO, INVOICE])
    d = repo.get_decision(session, req.decision_id)
    assert (d.inputs["evidence_count"], d.inputs["has_photo"]) == (2, True)
    assert d.rule_id == "photo-quality"
    requested = repo.events_of(session, req.id)[0]
    assert requested.data == {"evidence": [PHOTO, INVOICE]}
    docs_only = _request_on_new_order(session, env, "o2", [INVOICE])
    d2 = repo.get_decision(session, docs_only.decision_id)
    assert (d2.inputs["evidence_count"], d2.inputs["has_photo"]) == (1, False)
    assert d2.rule_id == "quality-return"


def _request_on_new_order(session, env, order_id, evidence):
    refund_orders.record_order(order_in(order_id, 10_000), session=session, env=env)
    data = RefundRequestIn(order_id=order_id, reason="quality", requested_amount_minor=10_000,
                           evidence=evidence)  # fmt: skip
    req = service.request_refund(data, session=session, env=env)
    session.commit()
    return req


def test_evidence_attached_to_an_appeal_is_kept_in_its_event(session, env):
    req = _request(session, env, "damaged")
    env.clock.advance(days=1)
    service.appeal(req.id, AppealIn(note="resold", evidence=[INVOICE]), session=session, env=env)
    session.commit()
    appeal = repo.events_of(session, req.id)[-1]
    assert appeal.event == "appeal" and appeal.data["evidence"] == [INVOICE]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({**PHOTO, "sha256": "0f" * 31}, "sha256"),
        ({**PHOTO, "sha256": "zz" * 32}, "sha256"),
        ({**PHOTO, "sha256": "0F" * 32}, "sha256"),
        ({**PHOTO, "ref": "a\x00b"}, "ref"),
        ({**PHOTO, "ref": "a\x1bb"}, "ref"),
        ({**PHOTO, "ref": "x" * 301}, "ref"),
        ({**PHOTO, "ref": ""}, "ref"),
        ({**PHOTO, "kind": "video"}, "kind"),
        ({"kind": "photo", "ref": "r"}, "sha256"),
        ({**PHOTO, "size": 3}, "size"),
    ],
)
def test_hostile_evidence_is_refused_naming_the_field(item, field):
    with pytest.raises(ValidationError) as exc:
        RefundRequestIn(order_id="o1", reason="quality", requested_amount_minor=1,
                        evidence=[item])  # fmt: skip
    assert any(e["loc"][-1] == field for e in exc.value.errors()), exc.value.errors()


def test_at_most_twenty_pieces_of_evidence():
    RefundRequestIn(order_id="o1", reason="q", requested_amount_minor=1, evidence=[PHOTO] * 20)
    with pytest.raises(ValidationError):
        RefundRequestIn(order_id="o1", reason="q", requested_amount_minor=1, evidence=[PHOTO] * 21)


@pytest.mark.parametrize(
    ("negotiation", "message"),
    [
        ({"quality_bar": 5.1, "sla_hours": 48}, "negotiation.quality_bar"),
        ({"quality_bar": float("nan"), "sla_hours": 48}, "negotiation.quality_bar"),
        ({"quality_bar": True, "sla_hours": 48}, "negotiation.quality_bar"),
        ({"quality_bar": 4.8, "sla_hours": 0}, "negotiation.sla_hours"),
        ({"quality_bar": 4.8, "sla_hours": float("inf")}, "negotiation.sla_hours"),
        ({"quality_bar": 4.8, "sla_hours": 721}, "negotiation.sla_hours"),
        ({"quality_bar": 4.8}, "negotiation.sla_hours"),
        ({"quality_bar": 4.8, "sla_hours": 48, "reasons": ["nope"]}, "nope"),
        ({"quality_bar": 4.8, "sla_hours": 48, "except": ["no-such-rule"]}, "no-such-rule"),
        ({"quality_bar": 4.8, "sla_hours": 48, "when": {}}, "when"),
    ],
)
def test_a_bad_negotiation_block_is_refused_naming_it(negotiation, message):
    with pytest.raises(InvalidInput, match=message):
        _policy(**negotiation)


def test_a_policy_without_negotiation_keeps_its_version():
    # the capability adds nothing to the canonical content of policies that do not use it
    p = _policy()
    assert "negotiation" not in p.content and p.negotiation is None
    assert _policy(quality_bar=4.8, sla_hours=48).version != p.version
