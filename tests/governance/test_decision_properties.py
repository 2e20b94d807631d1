"""Any sequence of ballots on a stored decision keeps the rules' invariants."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tianping.audit import log as audit
from tianping.errors import Conflict, Forbidden, InvalidInput
from tianping.governance.service import Proposal, propose, vote

PEOPLE = ["ana", "bo", "chen", "dan", "eve"]
GOAL = {"goal": "g", "metric": "gmv", "target": 1.0, "deadline": "2027-01-01", "reason": "r"}

ballots = st.lists(
    st.tuples(st.sampled_from(PEOPLE), st.sampled_from(["approve", "reject", "veto"])), max_size=8
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(proposer=st.sampled_from(PEOPLE), votes=ballots)
def test_ballots_move_a_decision_at_most_once_and_only_by_the_rules(ruled, clock, proposer, votes):
    d = propose(Proposal("Goal", "goal_change", GOAL), session=ruled, actor=proposer, clock=clock)
    transitions = []
    for voter, choice in votes:
        try:
            r = vote(d.id, choice, session=ruled, actor=voter, clock=clock)
        except (Forbidden, Conflict, InvalidInput):
            continue
        if r.transition:
            transitions.append(r.transition)
    recorded = [(v.voter, v.choice) for v in d.votes]
    approvals = [v for v, c in recorded if c == "approve"]
    assert len(transitions) <= 1 and d.status in ("pending", *transitions)
    assert proposer not in {v for v, _ in recorded}
    assert {v for v, _ in recorded} <= {"ana", "bo", "chen"}
    assert len({v for v, _ in recorded}) == len(recorded)
    assert (d.status == "approved") == (
        len(approvals) >= 2 and "veto" not in [c for _, c in recorded[:-1]]
    )
    if d.status == "vetoed":
        assert recorded[-1][1] == "veto"
    moves = audit.entries(session=ruled, where=audit.AuditFilter(subject=f"decision:{d.id}"))
    assert sum(
        e.action in ("decision.approved", "decision.rejected", "decision.vetoed") for e in moves
    ) == len(transitions)
    assert (d.effect_status == "applied") == (d.status == "approved")
