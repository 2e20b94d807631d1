"""Thin routes of the governance API: decisions, their votes and evidence, rules, audit log.

Who acts is the holder of the API key the request was authenticated with (:func:`actor_of`);
the key's id goes to the audit log with the holder's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from tianping import inputs
from tianping.api import idempotency
from tianping.api.deps import PageParams, Store, TextQuery, jsonable, page_params, store_of
from tianping.audit import log as audit
from tianping.auth.deps import guard, principal_of
from tianping.auth.keys import ADMIN, ANALYST, OPERATOR
from tianping.clock import SystemClock
from tianping.errors import Conflict
from tianping.governance import schemas as S
from tianping.governance import service
from tianping.governance.rules import STATUSES

router = APIRouter(prefix="/v1", tags=["governance"])


StoreDep = Annotated[Store, Depends(store_of)]
PageDep = Annotated[PageParams, Depends(page_params)]
#: Decision ids and evidence positions are 32-bit integer columns.
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
#: A decision's status, as a filter.
Status = Literal[STATUSES]  # type: ignore[valid-type]
#: An instant in a filter, moved into the window of :mod:`tianping.inputs`.
InstantQuery = inputs.InstantFilter | None


@dataclass(frozen=True)
class Actor:
    """Who acts through the API: the key holder's name and the key's public id."""

    name: str
    key_id: str | None


def actor_of(request: Request) -> Actor:
    """The authenticated key's holder and id (the route's guard ran first)."""
    who = principal_of(request)
    return Actor(who.name, who.key_id)


ActorDep = Annotated[Actor, Depends(actor_of)]


def _view(d, session) -> dict:
    return jsonable(service.view(d, session=session, now=SystemClock().now()))


@router.post("/decisions", status_code=201, **guard(ADMIN, OPERATOR, ANALYST))
def propose(
    body: S.ProposalIn, request: Request, store: StoreDep, actor: ActorDep,
    key: Annotated[str | None, idempotency.header(required=False)] = None,
):  # fmt: skip
    """Propose a decision. Evidence read from the warehouse is attached with the CLI instead."""
    p = service.Proposal(
        body.title, body.kind, S.payload_of(body), tuple(body.evidence),
        tuple((d.name, d.data) for d in body.documents), getattr(body, "override", False),
    )  # fmt: skip

    def work(s):
        d = service.propose(p, session=s, actor=actor.name, key_id=actor.key_id)
        return 201, _view(d, s)

    return idempotency.respond(store, request, key=key, body=body, work=work)


@router.get("/decisions", **guard(ADMIN, OPERATOR, ANALYST))
def list_decisions(
    store: StoreDep, page: PageDep, status: Status | None = None, kind: S.Kind | None = None
) -> list[dict]:
    """Decisions, newest first."""
    now = SystemClock().now()
    return store.read(lambda s: jsonable([service.summary(d, now=now) for d in service.list_decisions(
        session=s, status=status, kind=kind, limit=page.limit, offset=page.offset)]))  # fmt: skip


@router.get("/decisions/{decision_id}", **guard(ADMIN, OPERATOR, ANALYST))
def get_decision(decision_id: IdPath, store: StoreDep) -> dict:
    """A decision with its votes, evidence digests and history."""
    return store.read(lambda s: _view(service.get_or_raise(decision_id, session=s), s))


@router.get("/decisions/{decision_id}/evidence/{position}", **guard(ADMIN, OPERATOR, ANALYST))
def get_evidence(decision_id: IdPath, position: IdPath, store: StoreDep) -> Response:
    """Evidence exactly as frozen (canonical JSON); its SHA-256 in ``X-Content-SHA256``."""

    def read(s) -> tuple[str, str]:
        e = service.evidence_of(decision_id, position, session=s)
        return e.content, e.sha256

    content, digest = store.read(read)
    return Response(
        content.encode(), media_type="application/json", headers={"X-Content-SHA256": digest}
    )


@router.post("/decisions/{decision_id}/approve", **guard(ADMIN, OPERATOR))
def approve(decision_id: IdPath, body: S.VoteIn, store: StoreDep, actor: ActorDep) -> dict:
    """Approve a pending decision (409 once it is decided or expired, 403 for the proposer)."""
    return _vote(store, decision_id, "approve", actor, body.comment)


@router.post("/decisions/{decision_id}/reject", **guard(ADMIN, OPERATOR))
def reject(decision_id: IdPath, body: S.RejectIn, store: StoreDep, actor: ActorDep) -> dict:
    """Vote against a pending decision, or veto it."""
    return _vote(store, decision_id, "veto" if body.veto else "reject", actor, body.comment)


def _vote(store: Store, decision_id: int, choice: str, actor: Actor, comment: str) -> dict:
    def work(s):
        r = service.vote(decision_id, choice, session=s, actor=actor.name, key_id=actor.key_id,
                         comment=comment)  # fmt: skip
        return r.recorded, r.message, _view(r.decision, s)

    recorded, message, body = store.transact(work)
    if not recorded:  # the expiry is committed, the vote is not
        raise Conflict(message, code="decision_expired")
    return body


@router.get("/governance/rules", **guard(ADMIN, OPERATOR, ANALYST))
def get_rules(store: StoreDep) -> dict:
    """The governance rules in force, with their version (a hash of their canonical form)."""
    rules = store.read(lambda s: service.current_rules(session=s))
    return {"version": rules.version, **rules.to_dict()}


@router.put("/governance/rules", **guard(ADMIN))
def put_rules(body: S.RulesIn, store: StoreDep, actor: ActorDep) -> dict:
    """Put new rules in force (audited); pending decisions keep their quorum."""
    rules = store.transact(lambda s: service.set_rules(
        body.document(), session=s, actor=actor.name, key_id=actor.key_id))  # fmt: skip
    return {"version": rules.version, **rules.to_dict()}


@router.get("/audit", **guard(ADMIN, OPERATOR))
def read_audit(
    store: StoreDep,
    page: PageDep,
    actor: TextQuery = None,
    action: Annotated[TextQuery, Query(description="Prefix, e.g. decision.")] = None,
    subject: TextQuery = None,
    key_id: TextQuery = None,
    since: InstantQuery = None,
    until: InstantQuery = None,
) -> list[dict]:
    """Audit entries matching every filter given, oldest first."""
    where = audit.AuditFilter(actor, action, subject, key_id, since, until)
    return store.read(lambda s: jsonable([audit.entry_dict(e) for e in audit.entries(
        session=s, where=where, limit=page.limit, offset=page.offset)]))  # fmt: skip


@router.get("/audit/verify", **guard(ADMIN, OPERATOR))
def verify_audit(store: StoreDep) -> dict:
    """Check the whole hash chain: ``ok``, the entry count, the head hash and any problems."""
    v = store.read(lambda s: audit.verify(session=s))
    problems = [{"seq": p.seq, "reason": p.reason} for p in v.problems]
    return {"ok": v.ok, "entries": v.entries, "head": v.head, "problems": problems}
