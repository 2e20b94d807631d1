"""Shared values of the governance tests: a start time and rules naming three leaders."""

from __future__ import annotations

from datetime import UTC, datetime

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LEADERS = ["ana", "bo", "chen"]
RULES = {
    "default": {"approvers": LEADERS, "required": 2, "veto": True, "expiry_days": 7},
    "kinds": {"spend": {"veto": False}},
    "spend_cap": {
        "cap_minor": 150_000_000,
        "currency": "CNY",
        "override_approvers": ["ceo", "cfo", "coo", "cto"],
        "override_required": 3,
    },
}


def drop_append_only(conn) -> None:
    """What someone with DDL rights can do: remove the triggers that refuse edits of the
    audit log (the hash chain must still find what they change next)."""
    from sqlalchemy import text

    if conn.dialect.name == "sqlite":
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("DROP TRIGGER audit_log_no_delete"))
    else:
        conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
