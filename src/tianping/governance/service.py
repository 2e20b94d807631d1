"""Propose, vote on, expire and read decisions; set the rules. Never commits.

Every state change is written to the audit log in the same transaction. A vote locks the
decision's row first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writers are serialised by
``BEGIN IMMEDIATE``), so when the second and third approvals race, exactly one of them moves
the decision and the other finds it already decided.

Until API keys exist, the actor is a plain name and ``key_id`` the key it came with, if any.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tianping import inputs
from tianping.audit import log as audit
from tianping.audit.canonical import Frozen
from tianping.clock import Clock, SystemClock
from tianping.errors import InvalidInput, NotFound
from tianping.governance import effects, repository, rules, sources
from tianping.governance.models import Decision, DecisionEvidence, DecisionVote, GovernanceRules

SYSTEM = "system"


# -- rules ------------------------------------------------------------------------------------


def current_rules(*, session: Session) -> rules.Rules:
    """The rules in force (built-in defaults, which name no approvers, until some are set)."""
    row = repository.latest_rules(session=session)
    return rules.Rules() if row is None else rules.parse_rules(json.loads(row.content))


def set_rules(
    doc: Any,
    *,
    session: Session,
    actor: str,
    key_id: str | None = None,
    clock: Clock | None = None,
) -> rules.Rules:
    """Validate and put new rules in force (audited with the previous version).

    Decisions already proposed keep the quorum they were proposed with.
    """
    new = rules.parse_rules(inputs.document(doc, field="rules"))
    previous = repository.latest_rules(session=session)
    now = _now(clock)
    frozen = Frozen.of(new.to_dict())
    session.add(
        GovernanceRules(
            version=new.version,
            content=frozen.content,
            set_at=now,
            set_by=_actor(actor),
            key_id=key_id,
        )
    )
    detail = {
        "version": new.version,
        "previous": previous and previous.version,
        "rules": new.to_dict(),
    }
    audit.later("governance.rules_set", subject="governance:rules", actor=actor,
                key_id=key_id, detail=detail, session=session, now=now)  # fmt: skip
    return new


# -- proposing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """What a proposer submits.

    Attributes:
        title: one line saying what is decided.
        kind: one of :data:`rules.KINDS`.
        payload: the kind's fields (docs/governance.md#kinds).
        evidence: references read and frozen now (``race:NAME``, ``metric:gmv@month``...).
        documents: ``(name, data)`` pairs attached as they are (e.g. an exported report).
        override: for a spend above the cap, ask the override role to decide it.
    """

    title: str
    kind: str
    payload: Mapping[str, Any]
    evidence: Sequence[str] = ()
    documents: Sequence[tuple[str, Any]] = field(default_factory=tuple)
    override: bool = False


def _check_proposal(p: Proposal) -> None:
    """The rules every input obeys (:mod:`tianping.inputs`), before anything is read."""
    if not isinstance(p.title, str) or not 0 < len(p.title.strip(inputs.BLANKS)) <= 300:
        raise InvalidInput("a decision needs a title of 1 to 300 characters", field="title")
    inputs.name(p.title, field="title", max_length=inputs.MAX_TITLE)
    inputs.document(dict(p.payload), field="payload")
    for ref in p.evidence:
        inputs.name(ref, field="evidence", max_length=inputs.MAX_TITLE)
    for name, data in p.documents:
        inputs.name(name, field="documents.name", max_length=inputs.MAX_NAME)
        inputs.document(data, field=f"documents.{name}")


def propose(
    p: Proposal,
    *,
    session: Session,
    actor: str,
    key_id: str | None = None,
    clock: Clock | None = None,
    warehouse: Any = None,
    policy_files: bool = False,
) -> Decision:
    """Record a proposal with frozen evidence and the quorum in force.

    ``policy_files``: a refund policy may be named by a file path on this machine (the CLI);
    the API and dashboard propose built-in policies by name only.

    A spend above the cap without ``override`` is recorded and rejected at once, with the reason.

    Raises:
        InvalidInput: bad fields, no approvers named for the kind, an unreachable quorum.
        NotFound: what the proposal or its evidence names does not exist.
        UsageError: evidence needs the warehouse and none was given.
    """
    actor, now = _actor(actor), _now(clock)
    _check_proposal(p)
    rules.check_kind(p.kind)
    prepared = effects.prepare(p.kind, p.payload, session=session, policy_files=policy_files)
    in_force = current_rules(session=session)
    opening = rules.open_decision(
        in_force, p.kind, proposer=actor, now=now,
        amount_minor=prepared.amount_minor, currency=prepared.currency, override=p.override,
    )  # fmt: skip
    d = _new_decision(p, prepared, opening, actor=actor, key_id=key_id, now=now)
    d.rules_version = in_force.version
    captured = [*prepared.evidence, *_capture(p, session=session, warehouse=warehouse)]
    for position, (kind, ref, data) in enumerate(captured, start=1):
        frozen = Frozen.of(data)
        d.evidence.append(DecisionEvidence(position=position, kind=kind, ref=ref,
                          content=frozen.content, sha256=frozen.sha256, captured_at=now))  # fmt: skip
    session.add(d)
    session.flush()
    audit.later("decision.proposed", subject=_subject(d), actor=actor, key_id=key_id,
                detail=_proposal_detail(d), session=session, now=now)  # fmt: skip
    if opening.status != "pending":
        _close(
            d, opening.status, opening.reason, actor=SYSTEM, key_id=None, session=session, now=now
        )
    return d


def _new_decision(p, prepared, opening, *, actor, key_id, now) -> Decision:
    q = opening.quorum
    return Decision(
        title=p.title.strip(inputs.BLANKS), kind=p.kind, payload=prepared.payload, proposer=actor,
        proposer_key_id=key_id, status="pending", status_reason="", approvers=list(q.approvers),
        required=q.required, veto=q.veto, override=q.override, amount_minor=prepared.amount_minor,
        currency=prepared.currency, proposed_at=now, expires_at=q.expires_at,
        effect_status="none", effect={},
    )  # fmt: skip


def _capture(p: Proposal, *, session: Session, warehouse: Any) -> list[tuple[str, str, Any]]:
    out = []
    for ref in p.evidence:
        kind, data = sources.capture(ref, session=session, warehouse=warehouse)
        out.append((kind, ref, data))
    for name, data in p.documents:
        if not name.strip(inputs.BLANKS):
            raise InvalidInput("an attached document needs a name", field="documents")
        out.append(("document", f"document:{name.strip(inputs.BLANKS)}", data))
    return out


def _proposal_detail(d: Decision) -> dict[str, Any]:
    return {
        "title": d.title, "kind": d.kind, "payload": d.payload, "approvers": d.approvers,
        "required": d.required, "veto": d.veto, "override": d.override,
        "expires_at": d.expires_at, "rules_version": d.rules_version,
        "evidence": [{"ref": e.ref, "sha256": e.sha256} for e in d.evidence],
    }  # fmt: skip


# -- voting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoteResult:
    """A vote's outcome: ``recorded`` False when the decision had expired (``message`` says so);
    ``transition`` is the status this vote moved the decision to, if it moved it."""

    decision: Decision
    recorded: bool
    transition: str | None = None
    message: str = ""


def vote(
    decision_id: int,
    choice: str,
    *,
    session: Session,
    actor: str,
    key_id: str | None = None,
    comment: str = "",
    clock: Clock | None = None,
) -> VoteResult:
    """Cast ``actor``'s ballot (``approve``, ``reject`` or ``veto``) on a pending decision.

    The decision's row is locked first. When the ballots reach a result the decision moves
    once, and an approval takes effect through the owning service in the same transaction. A
    vote on a decision whose time is up expires it instead (``recorded`` is False).

    Raises:
        NotFound: no such decision.
        Forbidden: the proposer voting on their own decision, or a voter who is not an approver.
        Conflict: the decision is already decided, or the voter already voted.
        InvalidInput: an unknown choice, or a veto where the kind has none.
    """
    actor, now = _actor(actor), _now(clock)
    inputs.text(comment, field="comment", multiline=True)
    d = repository.get_decision(decision_id, session=session, lock=True)
    if d is None:
        raise NotFound(f"no decision #{decision_id}", field="decision")
    if rules.is_expired(d.status, d.expires_at, now):
        _close(d, "expired", f"no quorum by {d.expires_at.isoformat()}", actor=SYSTEM,
               key_id=None, session=session, now=now)  # fmt: skip
        msg = f"decision #{d.id} expired at {d.expires_at.isoformat()}; the vote was not recorded"
        return VoteResult(d, False, "expired", msg)
    q, ballots = quorum_of(d), ballots_of(d)
    rules.check_ballot(
        q, proposer=d.proposer, status=d.status, ballots=ballots, voter=actor, choice=choice
    )
    d.votes.append(
        DecisionVote(voter=actor, key_id=key_id, choice=choice, comment=comment, voted_at=now)
    )
    session.flush()
    audit.later("decision.voted", subject=_subject(d), actor=actor, key_id=key_id,
                detail={"choice": choice, "comment": comment}, session=session, now=now)  # fmt: skip
    t = rules.tally(q, proposer=d.proposer, ballots=ballots_of(d))
    if t.status == "pending":
        return VoteResult(d, True)
    _close(d, t.status, t.reason, actor=actor, key_id=key_id, session=session, now=now)
    return VoteResult(d, True, t.status)


def quorum_of(d: Decision) -> rules.Quorum:
    """The quorum frozen into a decision."""
    return rules.Quorum(tuple(d.approvers), d.required, d.veto, d.expires_at, d.override)


def ballots_of(d: Decision) -> list[rules.Ballot]:
    """The decision's votes as the pure rules count them."""
    return [rules.Ballot(v.voter, v.choice, v.voted_at) for v in d.votes]


def _close(d: Decision, status: str, reason: str, *, actor, key_id, session, now) -> None:
    rules.check_transition(d.status, status)
    before = d.status
    d.status, d.status_reason, d.decided_at = status, reason, now
    session.flush()
    audit.later(f"decision.{status}", subject=_subject(d), actor=actor, key_id=key_id,
                detail={"from": before, "to": status, "reason": reason}, session=session, now=now)  # fmt: skip
    if status == "approved":
        d.effect_status, d.effect = effects.apply(d, session=session, now=now)
        session.flush()
        audit.later(f"decision.effect_{d.effect_status}", subject=_subject(d), actor=SYSTEM,
                    detail={"kind": d.kind, "effect": d.effect}, session=session, now=now)  # fmt: skip


def expire_due(*, session: Session, clock: Clock | None = None) -> list[Decision]:
    """Expire every pending decision whose time is up; returns them."""
    now = _now(clock)
    due = list(repository.due_for_expiry(now, session=session))
    for d in due:
        _close(d, "expired", f"no quorum by {d.expires_at.isoformat()}", actor=SYSTEM,
               key_id=None, session=session, now=now)  # fmt: skip
    return due


# -- reading ----------------------------------------------------------------------------------


def get_or_raise(decision_id: int, *, session: Session) -> Decision:
    """The decision with this number.

    Raises:
        NotFound: there is none.
    """
    d = repository.get_decision(decision_id, session=session)
    if d is None:
        raise NotFound(f"no decision #{decision_id}", field="decision")
    return d


def list_decisions(
    *,
    session: Session,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[Decision]:
    """Decisions, newest first, optionally only one status or kind."""
    if status is not None and status not in rules.STATUSES:
        raise InvalidInput(
            f"unknown status {status!r}; use {', '.join(rules.STATUSES)}", field="status"
        )
    if kind is not None:
        rules.check_kind(kind)
    return repository.list_decisions(
        session=session, status=status, kind=kind, limit=limit, offset=offset
    )


def summary(d: Decision, *, now: datetime | None = None) -> dict[str, Any]:
    """One line of a decision list (a pending decision past its time shows as ``expired``)."""
    status = d.status
    if now is not None and rules.is_expired(d.status, d.expires_at, now):
        status = "expired"
    approvals = sum(v.choice == "approve" for v in d.votes)
    return {
        "id": d.id, "title": d.title, "kind": d.kind, "status": status, "proposer": d.proposer,
        "approvals": f"{approvals}/{d.required}", "proposed_at": d.proposed_at,
        "expires_at": d.expires_at, "effect_status": d.effect_status,
    }  # fmt: skip


def view(d: Decision, *, session: Session, now: datetime | None = None) -> dict[str, Any]:
    """Everything about a decision: fields, votes, evidence digests and its audit history."""
    history = audit.entries(
        session=session, where=audit.AuditFilter(subject=_subject(d)), limit=10_000
    )
    return {
        **summary(d, now=now),
        "status_reason": d.status_reason, "payload": d.payload, "proposer_key_id": d.proposer_key_id,
        "approvers": d.approvers, "required": d.required, "veto": d.veto, "override": d.override,
        "amount_minor": d.amount_minor, "currency": d.currency, "rules_version": d.rules_version,
        "decided_at": d.decided_at, "effect": d.effect,
        "votes": [{"voter": v.voter, "key_id": v.key_id, "choice": v.choice,
                   "comment": v.comment, "at": v.voted_at} for v in d.votes],
        "evidence": [{"position": e.position, "kind": e.kind, "ref": e.ref, "sha256": e.sha256,
                      "bytes": len(e.content.encode()), "captured_at": e.captured_at,
                      "intact": Frozen(e.content, e.sha256).intact()} for e in d.evidence],
        "history": [audit.entry_dict(a) for a in history],
    }  # fmt: skip


def evidence_of(decision_id: int, position: int, *, session: Session) -> DecisionEvidence:
    """One piece of a decision's frozen evidence.

    Raises:
        NotFound: no such decision or evidence position.
    """
    d = get_or_raise(decision_id, session=session)
    for e in d.evidence:
        if e.position == position:
            return e
    raise NotFound(f"decision #{decision_id} has no evidence #{position}", field="evidence")


def _subject(d: Decision) -> str:
    return f"decision:{d.id}"


def _actor(actor: str) -> str:
    if not isinstance(actor, str) or not actor.strip(inputs.BLANKS) or len(actor) > 200:
        raise InvalidInput(
            "who is acting? give an actor name (up to 200 characters)", field="actor"
        )
    return inputs.name(actor, field="actor", max_length=inputs.MAX_NAME)


def _now(clock: Clock | None) -> datetime:
    return (clock or SystemClock()).now()
