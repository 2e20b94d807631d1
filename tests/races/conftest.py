"""Fixtures of the race tests: a store session with the race tables, a small warehouse."""

from __future__ import annotations

import pytest


@pytest.fixture
def race_session(engine):
    """A store session whose schema surely has the race tables (created if a migration does
    not cover them yet; a no-op when it does)."""
    from tianping.races.models import Race, RaceStep
    from tianping.store import Base, make_sessionmaker

    Base.metadata.create_all(engine, tables=[Race.__table__, RaceStep.__table__])
    s = make_sessionmaker(engine)()
    yield s
    s.rollback()
    s.close()
