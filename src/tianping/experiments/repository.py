"""Every store query of the experiments domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from tianping.experiments.models import Experiment


def get_by_name(name: str, *, session: Session, lock: bool = False) -> Experiment | None:
    """The experiment, its row locked for the transaction when ``lock``."""
    q = select(Experiment).where(Experiment.name == name)
    if lock:
        q = q.with_for_update().execution_options(populate_existing=True)
    return session.scalar(q)


def list_experiments(*, session: Session, status: str | None = None) -> Sequence[Experiment]:
    """Every stored experiment by name, or those in ``status``."""
    query = select(Experiment).order_by(Experiment.name)
    if status is not None:
        query = query.where(Experiment.status == status)
    return session.scalars(query).all()


def served(*, session: Session) -> Sequence[Experiment]:
    """What assignment serves: running experiments and shipped ones, by name."""
    query = select(Experiment).where(
        (Experiment.status == "running") | Experiment.shipped_variant.is_not(None)
    )
    return session.scalars(query.order_by(Experiment.name)).all()


def running_in_layer(layer: str, *, session: Session) -> Sequence[Experiment]:
    """The running experiments of ``layer`` (their traffic ranges must not overlap)."""
    query = select(Experiment).where(Experiment.layer == layer, Experiment.status == "running")
    return session.scalars(query).all()
