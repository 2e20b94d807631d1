"""Settled refund requests into the warehouse's ``refunds`` table (``tianping export refunds``).

A request is exported once its money can no longer change: refunded (and maybe appealed or
closed since), rejected or cancelled. Each request is written once: ids already in the
warehouse are skipped, so running the export again only adds what settled since.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from sqlalchemy.orm import Session

from tianping.events.schema import REFUNDS
from tianping.money import to_major
from tianping.refunds import lifecycle as L
from tianping.refunds import repository as repo
from tianping.warehouse.backend import Warehouse, arrow_schema

#: Statuses whose row in the warehouse will not change any more.
SETTLED = frozenset({L.REFUNDED, L.APPEALED, *L.FINAL})
BATCH = 10_000


@dataclass(frozen=True)
class ExportReport:
    """How many settled requests were read and how many were new to the warehouse."""

    settled: int
    written: int


def export_refunds(*, session: Session, wh: Warehouse, batch: int = BATCH) -> ExportReport:
    """Append every settled request the warehouse does not have yet, ``batch`` rows at a time."""
    after, settled, written = None, 0, 0
    while True:
        rows = repo.export_rows(session, SETTLED, after=after, limit=batch)
        if not rows:
            return ExportReport(settled, written)
        settled += len(rows)
        after = rows[-1].id
        new = _new_rows(wh, rows)
        if new:
            wh.append("refunds", _to_arrow(new, wh.scale))
            written += len(new)


def _new_rows(wh: Warehouse, rows: list) -> list:
    if not wh.has_table("refunds"):
        return rows
    t = wh.table("refunds")
    ids = [r.id for r in rows]
    present = wh.to_arrow(t.filter(t.refund_id.isin(ids)).select("refund_id"))
    seen = set(present.column("refund_id").to_pylist())
    return [r for r in rows if r.id not in seen]


def _naive(at):
    return None if at is None else at.replace(tzinfo=None)


def _to_arrow(rows: list, scale: int) -> pa.Table:
    columns = {
        "refund_id": [r.id for r in rows],
        "order_id": [r.order_id for r in rows],
        "requested_at": [_naive(r.created_at) for r in rows],
        "reason": [r.reason for r in rows],
        "requested_amount": [to_major(r.requested_amount_minor, r.currency) for r in rows],
        "decision": [r.action for r in rows],
        "refunded_amount": [to_major(r.refunded_minor, r.currency) for r in rows],
        "returned": [bool(r.returned) for r in rows],
        "decided_at": [_naive(r.decided_at) for r in rows],
    }
    return pa.table(columns, schema=arrow_schema(REFUNDS, scale))
