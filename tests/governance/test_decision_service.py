"""Decisions in the store (SQLite and PostgreSQL): quorum, veto, expiry, caps, effects, audit."""

from __future__ import annotations

from datetime import date

import pytest
from governance_data import LEADERS, T0, drop_append_only
from sqlalchemy import select

from tianping.audit import log as audit
from tianping.audit.models import AuditEntry
from tianping.errors import Conflict, Forbidden, InvalidInput, NotFound
from tianping.governance.service import Proposal, expire_due, get_or_raise, propose, view, vote

SPEND = {"amount_minor": 80_000_000, "currency": "CNY", "purpose": "door-delivery pilot"}


def _spend(session, clock, actor="dan", **payload):
    p = Proposal("Fund the door-delivery pilot", "spend", {**SPEND, **payload})
    return propose(p, session=session, actor=actor, clock=clock)


def _actions(session, subject: str) -> list[str]:
    rows = audit.entries(session=session, where=audit.AuditFilter(subject=subject))
    return [(e.actor, e.action) for e in rows]


def test_two_of_three_approve_and_every_change_is_audited(ruled, clock):
    d = _spend(ruled, clock, actor="ana")
    assert (d.status, d.approvers, d.required) == ("pending", LEADERS, 2)
    with pytest.raises(Forbidden, match="ana proposed this decision"):
        vote(d.id, "approve", session=ruled, actor="ana", clock=clock)
    clock.advance(hours=1)
    assert vote(d.id, "approve", session=ruled, actor="bo", clock=clock).transition is None
    clock.advance(hours=1)
    r = vote(d.id, "approve", session=ruled, actor="chen", key_id="k-chen", clock=clock)
    assert r.transition == "approved" and r.decision.decided_at == clock.now()
    assert (d.status, d.status_reason, d.effect_status) == ("approved", "2 of 3 approved", "none")
    assert _actions(ruled, f"decision:{d.id}") == [
        ("ana", "decision.proposed"),
        ("bo", "decision.voted"),
        ("chen", "decision.voted"),
        ("chen", "decision.approved"),
        ("system", "decision.effect_none"),
    ]
    chen = audit.entries(
        session=ruled, where=audit.AuditFilter(actor="chen", action="decision.voted")
    )
    assert [(e.key_id, e.at) for e in chen] == [("k-chen", clock.now())]
    with pytest.raises(Conflict, match="already approved"):
        vote(d.id, "reject", session=ruled, actor="ana", clock=clock)


def test_rejections_close_it_once_the_quorum_is_out_of_reach(ruled, clock):
    d = _spend(ruled, clock)
    vote(d.id, "reject", session=ruled, actor="ana", comment="no budget", clock=clock)
    assert d.status == "pending"
    with pytest.raises(Conflict, match="already voted"):
        vote(d.id, "approve", session=ruled, actor="ana", clock=clock)
    r = vote(d.id, "reject", session=ruled, actor="bo", clock=clock)
    assert r.transition == "rejected" and d.status_reason.startswith("rejected by ana, bo")
    with pytest.raises(Conflict):
        vote(d.id, "approve", session=ruled, actor="chen", clock=clock)


def test_a_veto_ends_it_where_the_kind_has_one(ruled, clock):
    p = Proposal("Double DAC", "goal_change", {"goal": "dac-fy26", "metric": "dac", "target": 2e6,
                 "deadline": "2027-03-31", "reason": "FY plan"})  # fmt: skip
    d = propose(p, session=ruled, actor="dan", clock=clock)
    vote(d.id, "approve", session=ruled, actor="ana", clock=clock)
    assert vote(d.id, "veto", session=ruled, actor="bo", clock=clock).transition == "vetoed"
    assert d.status_reason == "vetoed by bo" and d.effect_status == "none"
    spend = _spend(ruled, clock)
    with pytest.raises(InvalidInput, match="no veto"):
        vote(spend.id, "veto", session=ruled, actor="bo", clock=clock)


def test_strangers_cannot_vote(ruled, clock):
    d = _spend(ruled, clock)
    with pytest.raises(Forbidden, match="eve is not one of"):
        vote(d.id, "approve", session=ruled, actor="eve", clock=clock)
    with pytest.raises(NotFound, match="no decision #999"):
        vote(999, "approve", session=ruled, actor="bo", clock=clock)


def test_a_late_vote_expires_the_decision_instead(ruled, clock):
    d = _spend(ruled, clock)
    vote(d.id, "approve", session=ruled, actor="ana", clock=clock)
    clock.advance(days=7)
    r = vote(d.id, "approve", session=ruled, actor="bo", clock=clock)
    assert (r.recorded, r.transition, d.status) == (False, "expired", "expired")
    assert "expired at 2026-03-08T09:00:00+00:00; the vote was not recorded" in r.message
    assert [v.voter for v in d.votes] == ["ana"]
    assert _actions(ruled, f"decision:{d.id}")[-1] == ("system", "decision.expired")


def test_expire_due_sweeps_only_decisions_past_their_time(ruled, clock):
    old = _spend(ruled, clock)
    clock.advance(days=3)
    new = _spend(ruled, clock)
    clock.advance(days=4)
    assert [d.id for d in expire_due(session=ruled, clock=clock)] == [old.id]
    assert (old.status, new.status) == ("expired", "pending")
    assert (
        view(new, session=ruled, now=T0.replace(day=20))["status"] == "expired"
    )  # shown, not stored


def test_spend_above_the_cap_is_rejected_unless_the_override_role_approves(ruled, clock):
    at_cap = _spend(ruled, clock, amount_minor=150_000_000)
    assert at_cap.status == "pending"
    above = _spend(ruled, clock, amount_minor=200_000_000)
    assert above.status == "rejected" and above.status_reason.startswith("above the spend cap")
    assert _actions(ruled, f"decision:{above.id}") == [
        ("dan", "decision.proposed"),
        ("system", "decision.rejected"),
    ]

    p = Proposal(
        "Regional warehouse", "spend", {**SPEND, "amount_minor": 200_000_000}, override=True
    )
    d = propose(p, session=ruled, actor="dan", clock=clock)
    assert (d.status, d.approvers, d.required, d.override) == (
        "pending",
        ["ceo", "cfo", "coo", "cto"],
        3,
        True,
    )
    with pytest.raises(Forbidden, match="override approvers"):
        vote(d.id, "approve", session=ruled, actor="ana", clock=clock)
    vote(d.id, "approve", session=ruled, actor="ceo", clock=clock)
    assert vote(d.id, "approve", session=ruled, actor="cfo", clock=clock).transition is None
    assert vote(d.id, "approve", session=ruled, actor="cto", clock=clock).transition == "approved"


def test_rule_changes_are_audited_and_do_not_move_pending_decisions(ruled, clock):
    from tianping.governance.service import current_rules, set_rules

    d = _spend(ruled, clock)
    before = current_rules(session=ruled).version
    set_rules(
        {"default": {"approvers": LEADERS, "required": 3}},
        session=ruled,
        actor="admin",
        clock=clock,
    )
    entry = audit.entries(session=ruled, where=audit.AuditFilter(action="governance.rules_set"))[-1]
    assert entry.actor == "admin"
    assert audit.entry_dict(entry)["detail"]["previous"] == before
    vote(d.id, "approve", session=ruled, actor="ana", clock=clock)
    assert vote(d.id, "approve", session=ruled, actor="bo", clock=clock).transition == "approved"
    assert d.rules_version == before


def test_proposals_need_named_approvers_an_actor_and_valid_fields(session, clock):
    with pytest.raises(InvalidInput, match="no approvers are named for spend"):
        _spend(session, clock)
    with pytest.raises(InvalidInput, match="give an actor"):
        _spend(session, clock, actor=" ")
    with pytest.raises(InvalidInput, match="amount_minor") as e:
        _spend(session, clock, amount_minor=-5)
    assert e.value.field == "amount_minor"
    with pytest.raises(InvalidInput, match="unknown decision kind"):
        propose(Proposal("x", "launch", {}), session=session, actor="dan", clock=clock)


def test_an_approved_goal_change_records_the_goal_revision(ruled, clock):
    from tianping.goals.service import get_goal

    payload = {"goal": "dac-fy26", "metric": "dac", "target": 2_000_000, "deadline": "2027-03-31",
               "reason": "double DAC this fiscal year"}  # fmt: skip
    first = propose(
        Proposal("Set DAC goal", "goal_change", payload), session=ruled, actor="dan", clock=clock
    )
    vote(first.id, "approve", session=ruled, actor="ana", clock=clock)
    vote(first.id, "approve", session=ruled, actor="bo", clock=clock)
    assert first.effect == {"goal": "dac-fy26", "revision": 1}
    clock.advance(days=1)
    change = propose(Proposal("Cut DAC goal", "goal_change", {**payload, "target": 1_500_000,
                     "reason": "market shrank"}), session=ruled, actor="dan", clock=clock)  # fmt: skip
    assert [e.ref for e in change.evidence] == ["goal:dac-fy26"]  # the goal as it stood
    vote(change.id, "approve", session=ruled, actor="bo", clock=clock)
    vote(change.id, "approve", session=ruled, actor="chen", clock=clock)
    goal = get_goal("dac-fy26", session=ruled)
    assert [(r.number, r.target, r.reason, r.author) for r in goal.revisions] == [
        (1, 2_000_000.0, f"double DAC this fiscal year (decision #{first.id})", "dan"),
        (2, 1_500_000.0, f"market shrank (decision #{change.id})", "dan"),
    ]
    assert goal.revisions[1].deadline == date(2027, 3, 31)


def test_an_approved_policy_change_activates_exactly_the_frozen_policy(ruled, clock):
    from tianping.aftersales.policy import load_builtin
    from tianping.refunds import repository as refunds_repo

    d = propose(Proposal("Adopt Aug-2024 rules", "refund_policy", {"policy": "taobao-2024-08"}),
                session=ruled, actor="dan", clock=clock)  # fmt: skip
    version = load_builtin("taobao-2024-08").version
    assert d.payload == {"policy": "taobao-2024-08", "version": version}
    assert d.evidence[0].kind == "policy"
    assert refunds_repo.active_policy_version(ruled) is None
    vote(d.id, "approve", session=ruled, actor="ana", clock=clock)
    vote(d.id, "approve", session=ruled, actor="chen", clock=clock)
    assert d.effect_status == "applied" and d.effect["version"] == version
    assert refunds_repo.active_policy_version(ruled) == version


def test_an_approved_ship_decision_ships_the_experiment(ruled, clock):
    from tianping.experiments import service as experiments

    experiments.create(experiments.load_yaml(EXPERIMENT), session=ruled)
    experiments.set_status("one-click", "running", session=ruled)
    with pytest.raises(NotFound, match="no variant 'blue'"):
        propose(Proposal("Ship", "ship_experiment", {"experiment": "one-click", "variant": "blue"}),
                session=ruled, actor="dan", clock=clock)  # fmt: skip
    d = propose(Proposal("Ship one-click", "ship_experiment",
                         {"experiment": "one-click", "variant": "treatment"}),
                session=ruled, actor="dan", clock=clock)  # fmt: skip
    vote(d.id, "approve", session=ruled, actor="ana", clock=clock)
    vote(d.id, "approve", session=ruled, actor="bo", clock=clock)
    assert d.effect_status == "applied"
    assert d.effect == {"experiment": "one-click", "shipped": "treatment", "end_date": None}
    assert _actions(ruled, f"decision:{d.id}")[-1] == ("system", "decision.effect_applied")
    row = experiments.get_or_raise("one-click", session=ruled)
    assert (row.status, row.shipped_variant, row.shipped_at) == ("stopped", "treatment", T0)
    [shipped] = audit.entries(session=ruled, where=audit.AuditFilter(action="experiment.shipped"))
    assert audit.entry_dict(shipped)["detail"]["decision"] == d.id
    with pytest.raises(Conflict, match="already shipped"):
        propose(Proposal("Ship control", "ship_experiment",
                         {"experiment": "one-click", "variant": "control"}),
                session=ruled, actor="dan", clock=clock)  # fmt: skip


def test_a_ship_decision_that_fails_to_apply_rolls_back_the_approval(ruled, clock, engine):
    from tianping.experiments import service as experiments

    experiments.create(experiments.load_yaml(EXPERIMENT), session=ruled)
    experiments.set_status("one-click", "running", session=ruled)
    d = propose(Proposal("Ship one-click", "ship_experiment",
                         {"experiment": "one-click", "variant": "treatment"}),
                session=ruled, actor="dan", clock=clock)  # fmt: skip
    vote(d.id, "approve", session=ruled, actor="ana", clock=clock)
    experiments.set_status("one-click", "draft", session=ruled)  # reset behind the decision
    ruled.commit()
    with pytest.raises(Conflict, match="is a draft"):
        vote(d.id, "approve", session=ruled, actor="bo", clock=clock)
    ruled.rollback()
    assert get_or_raise(d.id, session=ruled).status == "pending"
    assert experiments.get_or_raise("one-click", session=ruled).shipped_variant is None
    assert audit.verify(session=ruled).ok


def test_the_log_verifies_and_finds_an_edited_row(ruled, clock, engine):
    d = _spend(ruled, clock)
    vote(d.id, "approve", session=ruled, actor="ana", clock=clock)
    vote(d.id, "approve", session=ruled, actor="bo", clock=clock)
    ruled.commit()
    v = audit.verify(session=ruled)
    assert v.ok and v.entries == 6
    assert v.head == ruled.scalar(select(AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1))
    ruled.rollback()  # end the read so the editor below can write (SQLite locks the file)
    with engine.begin() as conn:  # someone with DDL rights edits a row behind the system's back
        drop_append_only(conn)
        conn.execute(
            AuditEntry.__table__.update()
            .where(AuditEntry.seq == 3)
            .values(detail='{"choice":"reject","comment":""}')
        )
    ruled.expire_all()
    problems = audit.verify(session=ruled).problems
    assert [(p.seq, p.reason) for p in problems] == [
        (3, "content does not match its hash (edited)")
    ]


def test_show_gives_votes_evidence_and_history(ruled, clock):
    d = _spend(ruled, clock)
    vote(d.id, "approve", session=ruled, actor="ana", clock=clock)
    shown = view(get_or_raise(d.id, session=ruled), session=ruled)
    assert shown["approvals"] == "1/2" and shown["votes"][0]["voter"] == "ana"
    assert [h["action"] for h in shown["history"]] == ["decision.proposed", "decision.voted"]


EXPERIMENT = """
name: one-click
variants:
  - {name: control, weight: 1}
  - {name: treatment, weight: 1}
primary_metric: conversion
"""


def test_a_final_approval_waiting_on_a_locked_experiment_does_not_deadlock(ruled, clock, engine):
    """The approval's audit entries are appended at commit, after its row locks, as every
    other writer's are: a writer holding the experiment's row and about to append to the log
    and an approval shipping that experiment queue one behind the other (PostgreSQL; SQLite
    runs one writing transaction at a time)."""
    import threading

    from sqlalchemy import text

    from tianping.experiments import repository as exp_repo
    from tianping.experiments import service as experiments
    from tianping.store import make_sessionmaker

    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises whole transactions")
    experiments.create(experiments.load_yaml(EXPERIMENT), session=ruled)
    experiments.set_status("one-click", "running", session=ruled)
    d = propose(Proposal("Ship one-click", "ship_experiment",
                         {"experiment": "one-click", "variant": "treatment"}),
                session=ruled, actor="dan", clock=clock)  # fmt: skip
    vote(d.id, "approve", session=ruled, actor="ana", clock=clock)
    ruled.commit()
    sessions = make_sessionmaker(engine)
    holder, approver = sessions(), sessions()
    exp_repo.get_by_name("one-click", session=holder, lock=True)  # a writer holds the row
    audit.later("experiment.noted", subject="experiment:one-click", actor="ops",
                session=holder, now=clock.now())  # fmt: skip
    outcome: dict = {}

    def approve() -> None:
        try:
            vote(d.id, "approve", session=approver, actor="bo", clock=clock)
            approver.commit()
            outcome["ok"] = True
        except Exception as exc:  # a deadlock would land here
            approver.rollback()
            outcome["error"] = exc

    thread = threading.Thread(target=approve)
    thread.start()
    waiting = (
        "SELECT count(*) FROM pg_stat_activity"  # this database's sessions only
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    with engine.connect() as probe:
        for _ in range(1200):  # until the approval waits on the experiment's row (30 s: CI's
            # loaded cores once took longer than 5 s to get the approval that far)
            if probe.execute(text(waiting)).scalar():
                break
            if not thread.is_alive():  # it ended without waiting: say how
                pytest.fail(f"the approval ended without waiting on the row: {outcome}")
            threading.Event().wait(0.025)
        else:
            pytest.fail("the approval never waited on the experiment's row")
    holder.commit()  # appends its entry: must not wait on the approval
    thread.join(timeout=30)
    holder.close()
    approver.close()
    assert outcome == {"ok": True}
    ruled.expire_all()
    assert get_or_raise(d.id, session=ruled).effect_status == "applied"
    actions = [e.action for e in audit.entries(session=ruled)]
    assert actions.index("experiment.noted") < actions.index("decision.approved")
    assert audit.verify(session=ruled).ok


def test_a_spend_for_the_protection_fund_fills_it_on_approval_only_and_once(ruled, clock):
    from tianping.ledger import service as ledger

    d = _spend(ruled, clock, amount_minor=20_000_000, fund="protection_fund")
    assert d.payload["fund"] == "protection_fund"
    vote(d.id, "approve", session=ruled, actor="ana", clock=clock)
    assert ledger.fund_balances(session=ruled) == {}  # nothing before the quorum
    vote(d.id, "approve", session=ruled, actor="bo", clock=clock)
    assert (d.status, d.effect_status) == ("approved", "applied")
    assert d.effect["transfer"] == f"fund:top-up:decision:{d.id}"
    assert ledger.fund_balances(session=ruled) == {"CNY": 20_000_000}
    assert ("system", "decision.effect_applied") in _actions(ruled, f"decision:{d.id}")
    # the effect is the decision's: applying it again (a retry) adds nothing
    ledger.fund_top_up(d.id, 20_000_000, "CNY", session=ruled, now=clock.now())
    assert ledger.fund_balances(session=ruled) == {"CNY": 20_000_000}
    with pytest.raises(Conflict, match="already exists with different postings"):
        ledger.fund_top_up(d.id, 1, "CNY", session=ruled, now=clock.now())


def test_a_fund_top_up_is_capped_like_any_spend(ruled, clock):
    from tianping.ledger import service as ledger

    d = _spend(ruled, clock, amount_minor=150_000_001, fund="protection_fund")
    assert d.status == "rejected" and "above the spend cap" in d.status_reason
    assert ledger.fund_balances(session=ruled) == {}


@pytest.mark.parametrize("fund", ["reserve", "protection_fund\x00", "", 7])
def test_a_spend_names_only_a_known_fund(ruled, clock, fund):
    with pytest.raises(InvalidInput, match="unknown fund") as err:
        _spend(ruled, clock, fund=fund)
    assert err.value.field == "fund"
