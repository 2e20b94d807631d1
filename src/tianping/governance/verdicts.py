"""Turn an experiment's rule verdict into a *proposed* ship decision (never an approved one).

When an experiment's pre-registered rule says ship, :func:`propose_ship` proposes a
``ship_experiment`` decision whose evidence is the report frozen at that moment; the quorum
in force decides it, as every decision (docs/governance.md). Any other verdict proposes
nothing and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from tianping.clock import Clock
from tianping.governance.models import Decision


@dataclass(frozen=True)
class ShipProposal:
    """What :func:`propose_ship` did.

    Attributes:
        verdict: the rule's verdict (``ship``, ``do not ship``, ``keep running``, ``investigate``).
        reasons: the verdict's reasons.
        decision: the proposed (or already pending) decision; None when nothing was proposed.
        created: whether this call proposed it (False: one was already pending).
    """

    verdict: str
    reasons: tuple[str, ...]
    decision: Decision | None
    created: bool


def pending_ship(name: str, *, session: Session) -> Decision | None:
    """The pending ``ship_experiment`` decision of experiment ``name``, if any."""
    from tianping.governance import repository

    pending = repository.list_decisions(
        session=session, status="pending", kind="ship_experiment", limit=1000
    )
    return next((d for d in pending if d.payload.get("experiment") == name), None)


def propose_ship(
    name: str,
    *,
    session: Session,
    warehouse: Any,
    actor: str,
    key_id: str | None = None,
    clock: Clock | None = None,
) -> ShipProposal:
    """Analyse experiment ``name``; when its rule says ship, propose shipping that arm with
    the report frozen as evidence (one pending proposal per experiment at most).

    Raises:
        NotFound: no such experiment.
        NoData: nothing to analyse yet.
    """
    from tianping.experiments.service import analyze_experiment
    from tianping.governance.service import Proposal, propose
    from tianping.races.service import weight_schedule

    report = analyze_experiment(
        name, session=session, warehouse=warehouse, weight_history=weight_schedule, clock=clock
    )
    verdict = report.verdict
    if verdict is None or verdict.verdict != "ship":
        said = report.recommendation if verdict is None else verdict.verdict
        return ShipProposal(said, tuple(report.reasons), None, False)
    existing = pending_ship(name, session=session)
    if existing is not None:
        return ShipProposal("ship", verdict.reasons, existing, False)
    proposal = Proposal(
        title=f"Ship {verdict.treatment} of experiment {name}: its decision rule says ship",
        kind="ship_experiment",
        payload={"experiment": name, "variant": verdict.treatment},
        evidence=(f"experiment:{name}",),
    )
    d = propose(proposal, session=session, actor=actor, key_id=key_id, clock=clock,
                warehouse=warehouse)  # fmt: skip
    return ShipProposal("ship", verdict.reasons, d, True)
