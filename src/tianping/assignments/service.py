"""Assign a unit to every running experiment; queue reported exposures."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from tianping import inputs
from tianping.assignments.models import QueuedExposure
from tianping.assignments.schemas import ExposureIn
from tianping.clock import ensure_utc
from tianping.errors import NotFound
from tianping.experiments import service as experiments
from tianping.experiments.client import Client


def assignments(unit_id: str, *, session: Session) -> list[tuple[str, str]]:
    """``(experiment, variant)`` for every running experiment the unit is in, and the
    shipped variant of every shipped experiment, by name."""
    client = Client(experiments.snapshot(session=session))
    pairs = ((e.name, client.variant(e.name, unit_id)) for e in client.snapshot.experiments)
    return sorted((name, v) for name, v in pairs if v is not None)


def queue_exposures(
    batch: list[ExposureIn], *, session: Session, now: datetime, key_id: str | None
) -> tuple[int, int]:
    """Queue each unit's first exposure; returns ``(accepted, duplicates)``.

    Only running experiments take exposures: a shipped one is no longer analysed."""
    running = {
        c.name: set(c.variant_names)
        for c in experiments.snapshot(session=session).experiments
        if c.shipped is None
    }
    for i, e in enumerate(batch):
        if e.variant not in running.get(e.experiment, ()):
            raise NotFound(
                f"no running experiment {e.experiment!r} with variant {e.variant!r}",
                field=f"exposures.{i}",
            )
        inputs.instant(e.exposed_at, field=f"exposures.{i}.exposed_at", now=now)
    firsts: dict[tuple[str, str], ExposureIn] = {}
    for e in sorted(batch, key=lambda e: ensure_utc(e.exposed_at)):
        firsts.setdefault((e.experiment, e.unit_id), e)
    seen = set(session.execute(
        select(QueuedExposure.experiment, QueuedExposure.unit_id)
        .where(tuple_(QueuedExposure.experiment, QueuedExposure.unit_id).in_(list(firsts)))
    ).tuples())  # fmt: skip
    new = [e for k, e in firsts.items() if k not in seen]
    session.add_all(
        QueuedExposure(experiment=e.experiment, variant=e.variant, unit_id=e.unit_id,
                       exposed_at=ensure_utc(e.exposed_at), received_at=now, key_id=key_id)
        for e in new
    )  # fmt: skip
    session.flush()
    return len(new), len(batch) - len(new)


def queued(*, session: Session, after_id: int = 0) -> list[dict]:
    """Queued exposures with ``id > after_id``, oldest first, as rows of the ``exposures`` table."""
    rows = session.execute(
        select(QueuedExposure.experiment, QueuedExposure.variant, QueuedExposure.unit_id,
               QueuedExposure.exposed_at)
        .where(QueuedExposure.id > after_id).order_by(QueuedExposure.id)
    ).all()  # fmt: skip
    return [
        {"experiment": e, "variant": v, "unit_id": u, "exposed_at": ensure_utc(t).isoformat()}
        for e, v, u, t in rows
    ]
