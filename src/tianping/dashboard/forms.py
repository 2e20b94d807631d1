"""The dashboard's propose form: which fields each kind reads, and the proposal they make."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tianping.errors import InvalidInput
from tianping.governance.service import Proposal

#: Kinds a browser may propose, with a label, in the order the form offers them.
KINDS = {
    "spend": "Spend request",
    "refund_policy": "Refund policy change",
    "goal_change": "Goal change",
    "ship_experiment": "Ship an experiment",
    "ship_race_winner": "Ship a race winner",
}
#: The form fields each kind reads (the others are ignored).
FIELDS = {
    "spend": ("amount", "currency", "purpose"),
    "refund_policy": ("policy",),
    "goal_change": ("goal", "metric", "target", "deadline", "grain", "reason"),
    "ship_experiment": ("experiment", "variant"),
    "ship_race_winner": ("race", "variant"),
}
#: Every field of the form, for re-showing what was typed after an error.
ALL_FIELDS = ("title", "kind", "evidence", "override",
              *dict.fromkeys(f for fs in FIELDS.values() for f in fs))  # fmt: skip


def proposal_of(form: Mapping[str, str]) -> Proposal:
    """The proposal a submitted form describes.

    Raises:
        InvalidInput: an unknown kind, or a field of the kind that is missing or malformed
            (named in the message); the governance service checks the rest.
    """
    kind = (form.get("kind") or "").strip()
    if kind not in KINDS:
        raise InvalidInput(f"choose what kind of decision to propose: {', '.join(KINDS)}",
                           field="kind")  # fmt: skip
    values = {f: (form.get(f) or "").strip() for f in FIELDS[kind]}
    payload: dict[str, Any] = {k: v for k, v in values.items() if v}
    if kind == "spend":
        payload = _spend(values)
    if kind == "goal_change":
        payload["target"] = _number(values["target"], "target")
        payload["grain"] = values["grain"] or "month"
    refs = tuple(r.strip() for r in (form.get("evidence") or "").splitlines() if r.strip())
    return Proposal((form.get("title") or "").strip(), kind, payload, refs,
                    override=kind == "spend" and bool(form.get("override")))  # fmt: skip


def _spend(values: Mapping[str, str]) -> dict[str, Any]:
    from tianping.money import to_minor

    currency = values["currency"] or "CNY"
    if not values["amount"]:
        raise InvalidInput("a spend request needs an amount (in yuan, e.g. 800000.00)",
                           field="amount")  # fmt: skip
    return {"amount_minor": to_minor(values["amount"], currency, field="amount"),
            "currency": currency, "purpose": values["purpose"]}  # fmt: skip


def _number(text: str, field: str) -> float:
    from tianping.inputs import number_text

    if not text:
        raise InvalidInput(f"{field} must be a number", field=field)
    return number_text(text, field=field)
