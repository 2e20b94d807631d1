"""The injected clock: every 'now' in tianping comes from one of these, always UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current UTC time."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The system's current instant, in UTC."""
        return datetime.now(UTC)


class FixedClock:
    """A clock tests and replays move by hand.

    >>> c = FixedClock(datetime(2024, 1, 1, tzinfo=UTC)); c.advance(hours=2); c.now().hour
    2
    """

    def __init__(self, at: datetime):
        self._at = ensure_utc(at)

    def now(self) -> datetime:
        """The instant the clock was set or moved to."""
        return self._at

    def advance(self, **delta: float) -> None:
        """Move the clock forward (or back, with negative values) by ``timedelta`` keywords."""
        self._at += timedelta(**delta)

    def set(self, at: datetime) -> None:
        """Put the clock at ``at`` (naive means UTC)."""
        self._at = ensure_utc(at)


def ensure_utc(at: datetime) -> datetime:
    """Aware UTC datetime; a naive one is taken as UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
