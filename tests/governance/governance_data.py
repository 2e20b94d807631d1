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
