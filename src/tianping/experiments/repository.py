"""Every store query of the experiments domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from tianping.experiments.models import Experiment


def get_by_name(name: str, *, session: Session) -> Experiment | None:
    return session.scalar(select(Experiment).where(Experiment.name == name))


def list_experiments(*, session: Session, status: str | None = None) -> Sequence[Experiment]:
    query = select(Experiment).order_by(Experiment.name)
    if status is not None:
        query = query.where(Experiment.status == status)
    return session.scalars(query).all()


def running_in_layer(layer: str, *, session: Session) -> Sequence[Experiment]:
    query = select(Experiment).where(Experiment.layer == layer, Experiment.status == "running")
    return session.scalars(query).all()
