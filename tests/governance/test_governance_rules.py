"""Quorum, self-approval, veto, expiry and spend-cap rules of the pure core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tianping.errors import Conflict, Forbidden, InvalidInput
from tianping.governance.rules import (
    Ballot,
    Quorum,
    check_ballot,
    check_transition,
    is_expired,
    open_decision,
    parse_rules,
    tally,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)
LEADERS = ["ana", "bo", "chen"]
RULES = parse_rules(
    {
        "default": {"approvers": LEADERS},
        "kinds": {"spend": {"veto": False}},
        "spend_cap": {"override_approvers": ["ceo", "cfo", "coo"], "override_required": 3},
    }
)


def _q(approvers=LEADERS, required=2, veto=True) -> Quorum:
    return Quorum(tuple(approvers), required, veto, NOW + timedelta(days=14))


def _b(*votes: tuple[str, str]) -> list[Ballot]:
    return [Ballot(v, c, NOW) for v, c in votes]


def test_defaults_are_two_of_three_with_veto_and_a_fortnight():
    o = open_decision(RULES, "goal_change", proposer="dan", now=NOW)
    assert o.status == "pending"
    assert (o.quorum.approvers, o.quorum.required, o.quorum.veto) == (tuple(LEADERS), 2, True)
    assert o.quorum.expires_at == NOW + timedelta(days=14)


def test_two_of_three_approve():
    q = _q()
    assert tally(q, proposer="dan", ballots=_b(("ana", "approve"))).status == "pending"
    t = tally(q, proposer="dan", ballots=_b(("ana", "approve"), ("chen", "approve")))
    assert (t.status, t.reason, t.approvals) == ("approved", "2 of 3 approved", ("ana", "chen"))


def test_rejected_once_the_quorum_cannot_be_reached():
    q = _q()
    assert tally(q, proposer="dan", ballots=_b(("ana", "reject"))).status == "pending"
    t = tally(q, proposer="dan", ballots=_b(("ana", "reject"), ("bo", "reject")))
    assert t.status == "rejected" and "can no longer be reached" in t.reason
    # a proposer who is one of the three leaves two voters: one rejection ends it
    assert tally(q, proposer="ana", ballots=_b(("bo", "reject"))).status == "rejected"


def test_proposer_cannot_vote_on_their_own():
    with pytest.raises(Forbidden, match="ana proposed this decision"):
        check_ballot(
            _q(), proposer="ana", status="pending", ballots=[], voter="ana", choice="approve"
        )


def test_only_named_approvers_vote_once_while_pending():
    with pytest.raises(Forbidden, match="not one of this decision's approvers"):
        check_ballot(
            _q(), proposer="dan", status="pending", ballots=[], voter="eve", choice="approve"
        )
    with pytest.raises(Conflict, match="already voted"):
        check_ballot(_q(), proposer="dan", status="pending", ballots=_b(("bo", "approve")),
                     voter="bo", choice="reject")  # fmt: skip
    with pytest.raises(Conflict, match="already approved"):
        check_ballot(
            _q(), proposer="dan", status="approved", ballots=[], voter="bo", choice="approve"
        )
    with pytest.raises(InvalidInput, match="unknown vote"):
        check_ballot(_q(), proposer="dan", status="pending", ballots=[], voter="bo", choice="maybe")


def test_one_veto_rejects_where_the_kind_allows_it():
    t = tally(_q(), proposer="dan", ballots=_b(("ana", "approve"), ("bo", "veto")))
    assert (t.status, t.reason) == ("vetoed", "vetoed by bo")
    with pytest.raises(InvalidInput, match="no veto"):
        check_ballot(
            _q(veto=False), proposer="dan", status="pending", ballots=[], voter="bo", choice="veto"
        )


def test_expiry_only_concerns_pending_decisions():
    end = NOW + timedelta(days=14)
    assert not is_expired("pending", end, end - timedelta(seconds=1))
    assert is_expired("pending", end, end)
    assert not is_expired("approved", end, end + timedelta(days=1))


def test_a_final_status_never_changes():
    check_transition("pending", "approved")
    for final in ("approved", "rejected", "vetoed", "expired"):
        with pytest.raises(Conflict):
            check_transition(final, "approved")
    with pytest.raises(Conflict):
        check_transition("pending", "pending")


def test_spend_up_to_the_cap_follows_the_normal_quorum():
    o = open_decision(
        RULES, "spend", proposer="dan", now=NOW, amount_minor=150_000_000, currency="CNY"
    )
    assert o.status == "pending" and o.quorum.approvers == tuple(LEADERS) and not o.quorum.veto


def test_spend_above_the_cap_is_rejected_with_the_reason():
    o = open_decision(
        RULES, "spend", proposer="dan", now=NOW, amount_minor=150_000_001, currency="CNY"
    )
    assert o.status == "rejected"
    assert o.reason.startswith("above the spend cap: 1500000.01 CNY exceeds 1500000.00 CNY")


def test_an_override_goes_to_the_override_role_with_its_higher_quorum():
    o = open_decision(RULES, "spend", proposer="dan", now=NOW, amount_minor=300_000_000,
                      currency="CNY", override=True)  # fmt: skip
    assert o.status == "pending"
    assert (o.quorum.approvers, o.quorum.required, o.quorum.override) == (
        ("ceo", "cfo", "coo"),
        3,
        True,
    )
    with pytest.raises(Forbidden, match="override approvers"):
        check_ballot(
            o.quorum, proposer="dan", status="pending", ballots=[], voter="ana", choice="approve"
        )
    two = _b(("ceo", "approve"), ("cfo", "approve"))
    assert tally(o.quorum, proposer="dan", ballots=two).status == "pending"
    assert (
        tally(o.quorum, proposer="dan", ballots=[*two, *_b(("coo", "approve"))]).status
        == "approved"
    )


def test_cap_errors_name_the_field():
    with pytest.raises(InvalidInput, match="cap in CNY") as e:
        open_decision(RULES, "spend", proposer="dan", now=NOW, amount_minor=1, currency="USD")
    assert e.value.field == "currency"
    no_role = parse_rules({"default": {"approvers": LEADERS}})
    with pytest.raises(InvalidInput, match="no override approvers"):
        open_decision(no_role, "spend", proposer="dan", now=NOW, amount_minor=200_000_000,
                      currency="CNY", override=True)  # fmt: skip
    with pytest.raises(InvalidInput, match="only to spend"):
        open_decision(RULES, "goal_change", proposer="dan", now=NOW, override=True)


def test_no_approvers_or_an_unreachable_quorum_is_refused_up_front():
    with pytest.raises(InvalidInput, match="no approvers are named for spend"):
        open_decision(
            parse_rules({}), "spend", proposer="dan", now=NOW, amount_minor=1, currency="CNY"
        )
    two = parse_rules({"default": {"approvers": ["ana", "bo"], "required": 2}})
    with pytest.raises(InvalidInput, match="cannot approve their own"):
        open_decision(two, "goal_change", proposer="ana", now=NOW)


@pytest.mark.parametrize(
    ("doc", "field", "message"),
    [
        ({"default": {"approvers": ["a", "b"], "required": 3}}, "rules.default.required", "only 2"),
        ({"default": {"approvers": ["a", "a"]}}, "rules.default.approvers", "twice"),
        ({"kinds": {"launch": {}}}, "rules.kinds.launch", "unknown key"),
        ({"default": {"veto": "yes"}}, "rules.default.veto", "true or false"),
        ({"default": {"expiry_days": 0}}, "rules.default.expiry_days", "number of days"),
        ({"spend_cap": {"cap_minor": -1}}, "rules.spend_cap.cap_minor", ">= 0"),
        ({"spend_cap": {"currency": "XXX1"}}, None, "'XXX1' is not an ISO 4217 currency code"),
        (
            {"spend_cap": {"override_approvers": ["x", "y"], "override_required": 2}},
            "rules.spend_cap.override_required",
            "higher than the spend quorum",
        ),
        ([], "rules", "mapping"),
    ],
)
def test_bad_rules_name_the_field(doc, field, message):
    with pytest.raises(InvalidInput, match=message) as e:
        parse_rules(doc)
    if field is not None:
        assert e.value.field == field


def test_rules_version_hashes_the_content():
    assert RULES.version == parse_rules(RULES.to_dict()).version
    assert RULES.version != parse_rules({"default": {"approvers": LEADERS, "required": 3}}).version


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ana", "bo", "chen", "dan", "eve"]),
            st.sampled_from(["approve", "reject"]),
        ),  # fmt: skip
        max_size=5,
        unique_by=lambda v: v[0],
    ),
    st.integers(1, 4),
)
def test_approval_needs_quorum_and_the_proposer_never_counts(votes, required):
    q = _q(["ana", "bo", "chen", "dan", "eve"][: max(required, 4)], required=required)
    allowed = [(v, c) for v, c in votes if v in q.approvers and v != "ana"]
    t = tally(q, proposer="ana", ballots=_b(*allowed))
    approvals = sum(c == "approve" for _, c in allowed)
    assert (t.status == "approved") == (approvals >= required)
    assert "ana" not in t.approvals
