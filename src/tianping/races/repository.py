"""Every store query of the races domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from tianping.races.models import Race, RaceStep


def get_by_name(name: str, *, session: Session, lock: bool = False) -> Race | None:
    """The race ``name`` (``lock``: under a row lock, for a step), or None."""
    query = select(Race).where(Race.name == name)
    if lock:
        query = query.with_for_update()
    return session.scalar(query)


def owning(experiment: str, *, session: Session) -> Race | None:
    """The race whose adaptive or confirmation experiment this is, if any."""
    query = select(Race).where(
        (Race.experiment == experiment) | (Race.confirm_experiment == experiment)
    )
    return session.scalar(query.limit(1))


def list_races(*, session: Session) -> Sequence[Race]:
    """Every race, by name."""
    return session.scalars(select(Race).order_by(Race.name)).all()


def steps_of(race_id: int, *, session: Session) -> Sequence[RaceStep]:
    """A race's steps, first to last."""
    query = select(RaceStep).where(RaceStep.race_id == race_id).order_by(RaceStep.number)
    return session.scalars(query).all()


def last_step(race_id: int, *, session: Session) -> RaceStep | None:
    """A race's latest step, or None before its first."""
    query = (
        select(RaceStep)
        .where(RaceStep.race_id == race_id)
        .order_by(RaceStep.number.desc())
        .limit(1)
    )
    return session.scalar(query)
