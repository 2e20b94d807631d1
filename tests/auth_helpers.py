"""Shared by the API tests: API keys made straight in a running app's store."""

from __future__ import annotations

from datetime import UTC, datetime

from tianping.auth import service


def make_key(app, role: str = "admin", *, merchant_id: str | None = None, name=None) -> str:
    """A new key of ``role`` in ``app``'s store (the app must be started)."""
    store = app.state.store
    now = datetime.now(UTC)
    return store.transact(
        lambda s: service.create(role, session=s, now=now, merchant_id=merchant_id, name=name)[1]
    )


def bearer(app, role: str = "admin", *, merchant_id: str | None = None, name=None) -> dict:
    """``Authorization`` headers with a new key of ``role``."""
    return {"Authorization": f"Bearer {make_key(app, role, merchant_id=merchant_id, name=name)}"}
