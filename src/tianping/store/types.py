"""Column types shared by the store's domains, portable between SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

from tianping.clock import ensure_utc


class UTCDateTime(TypeDecorator[datetime]):
    """A UTC instant: stored naive (same bytes on every backend), returned timezone-aware."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        """Store ``value`` as naive UTC (an aware value is converted; a naive one is taken as UTC)."""
        return None if value is None else ensure_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        """Return the stored naive value as an aware UTC instant."""
        return None if value is None else value.replace(tzinfo=UTC)
