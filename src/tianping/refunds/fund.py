"""The merchant protection fund as every surface shows it (CLI, API, dashboard: one view).

The fund is a ledger account per currency (``protection_fund``). Approved spend decisions
that name it fill it (``docs/refunds.md#merchant-protection-fund``); an upheld merchant
appeal against a refund the platform decided pays the buyer's refund from it in the
merchant's place. This module only reads.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tianping.ledger import postings as P
from tianping.ledger import service as ledger
from tianping.money import format_major


def view(*, session: Session, limit: int = 20) -> dict[str, Any]:
    """Balances per currency, totals in and out, and the latest movements (newest first)."""
    rows, total = ledger.fund_movements(session=session, limit=limit)
    balances = ledger.fund_balances(session=session)
    totals: dict[str, dict[str, int]] = {}
    for currency, kind, count, amount in ledger.fund_totals(session=session):
        t = totals.setdefault(currency, {"top_ups": 0, "topped_up_minor": 0, "payouts": 0,
                                         "paid_out_minor": 0})  # fmt: skip
        if kind == P.FUND_TOP_UP:
            t["top_ups"] += count
            t["topped_up_minor"] += amount
        elif kind == P.FUND_PAYOUT:
            t["payouts"] += count
            t["paid_out_minor"] -= amount
    funds = []
    for currency in sorted(set(balances) | set(totals)):
        t = totals.get(currency, {"top_ups": 0, "topped_up_minor": 0, "payouts": 0,
                                  "paid_out_minor": 0})  # fmt: skip
        held = balances.get(currency, 0)
        funds.append({
            "currency": currency,
            "balance_minor": held,
            "balance": format_major(held, currency),
            **t,
            "topped_up": format_major(t["topped_up_minor"], currency),
            "paid_out": format_major(t["paid_out_minor"], currency),
        })  # fmt: skip
    movements = [
        {
            "transfer": transfer_id,
            "kind": "top-up" if kind == P.FUND_TOP_UP else "payout",
            "at": at,
            "currency": currency,
            "amount_minor": amount,
            "amount": format_major(amount, currency),
            "refund_id": _refund_of(transfer_id) if kind == P.FUND_PAYOUT else None,
            "order_id": order_id,
            "memo": memo,
        }
        for transfer_id, kind, currency, amount, at, memo, order_id in rows
    ]
    return {"funds": funds, "movements": movements, "movement_count": total}


def _refund_of(transfer_id: str) -> str | None:
    prefix, suffix = "refund:", ":fund"
    if transfer_id.startswith(prefix) and transfer_id.endswith(suffix):
        return transfer_id[len(prefix) : -len(suffix)]
    return None
