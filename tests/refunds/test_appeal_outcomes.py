"""Decided merchant appeals in the store (SQLite and PostgreSQL) judge a replay's two-sided
errors where the warehouse has no ground truth."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from refund_helpers import T0, make_env, order_in, refund_in, use_lifecycle_policy
from tianping.aftersales.policy import parse_policy
from tianping.aftersales.replay import replay, report_sections
from tianping.aftersales.two_sided import APPEALS
from tianping.events.schema import TABLES
from tianping.ledger import service as ledger
from tianping.refunds import orders as refund_orders
from tianping.refunds import service
from tianping.refunds.export import export_refunds
from tianping.refunds.schemas import AppealIn, ReviewIn

ORDERS = ("o1", "o2", "o3")
REJECT_ALL_DOC = {
    "name": "reject-all",
    "title": "Refuses every request",
    "source": "tests",
    "currency": "CNY",
    "reasons": {"r": {"buyer": "test", "merchant": "test"}},
    "rules": [{"id": "no", "then": {"action": "reject", "reasons": ["r"]}}],
}
REJECT_ALL = parse_policy(REJECT_ALL_DOC)


@pytest.fixture
def appealed(session):
    """o1 appealed and upheld (abuse), o2 appealed and dismissed (honest), o3 not appealed."""
    env = make_env()
    use_lifecycle_policy(session, env)
    for o in ORDERS:
        refund_orders.record_order(order_in(o, 10_000), session=session, env=env)
    # the protection fund pays the upheld appeal in the merchant's place
    ledger.fund_top_up(1, 10_000, "CNY", session=session, now=env.clock.now())
    session.commit()
    ids = {}
    for o in ORDERS:
        ids[o] = service.request_refund(refund_in(o, 4_000), session=session, env=env).id
    session.commit()
    env.clock.advance(days=1)
    for o, verdict in (("o1", "uphold_appeal"), ("o2", "dismiss_appeal")):
        service.appeal(ids[o], AppealIn(note="disputed"), session=session, env=env)
        service.review(ids[o], ReviewIn(action=verdict), reviewer="ops", session=session, env=env)
    session.commit()
    return ids


def test_appeal_outcomes_read_each_decided_appeal(session, appealed):
    assert service.appeal_outcomes(session=session) == {appealed["o1"]: True, appealed["o2"]: False}


def _fill(session, wh) -> None:
    """The store's settled requests and their orders into the warehouse (no ground truth)."""
    assert export_refunds(session=session, wh=wh).written == 3
    names = TABLES["orders"].names
    rows = [
        {"order_id": o, "buyer_id": "b1", "merchant_id": "m1", "product_id": "p1",
         "category": "food", "amount": Decimal("100.00"),
         "created_at": (T0 - timedelta(days=5)).replace(tzinfo=None),
         "delivered_at": (T0 - timedelta(days=3)).replace(tzinfo=None)}
        for o in ORDERS
    ]  # fmt: skip
    wh.append("orders", pa.table({n: [r.get(n) for r in rows] for n in names}))


def test_replay_judges_by_the_store_appeals(session, appealed, duckdb_warehouse):
    wh = duckdb_warehouse
    _fill(session, wh)
    outcomes = service.appeal_outcomes(session=session)
    from refund_helpers import LIFECYCLE_POLICY

    report = replay(
        wh, LIFECYCLE_POLICY, against=REJECT_ALL, start=T0.date(), end=T0.date(), appeals=outcomes
    )
    pays, refuses = (o.errors for o in report.outcomes)
    # The lifecycle policy refunds every "quality" claim at once, the merchant paying.
    assert pays.source == refuses.source == APPEALS
    assert (pays.abusive_paid.count, pays.abusive_paid.of, pays.merchant_loss_minor) == (1, 1, 4000)
    assert (pays.honest_refused.count, pays.honest_refused.of) == (0, 1)
    assert (refuses.honest_refused.count, refuses.honest_refused_minor) == (1, 4000)
    assert refuses.abusive_paid.count == 0
    rows = report_sections(report)["two-sided errors"]
    assert rows[0]["source"] == APPEALS and rows[0]["merchant_loss"] == "40.00"
    assert any("1 of 3" not in n and "2 of 3 request(s)" in n for n in report.notes)
    # Without appeal outcomes the same figures are unknown, not zero.
    blind = report_sections(replay(wh, LIFECYCLE_POLICY, start=T0.date(), end=T0.date()))
    row = blind["two-sided errors"][0]
    assert row["honest_refused"] == row["abusive_paid_rate"] == row["merchant_loss"] == "unknown"
    assert row["platform_cost"] == "0.00"


def test_the_cli_reads_the_appeals_from_the_store(
    session, appealed, duckdb_warehouse, store_url, tmp_path
):
    from typer.testing import CliRunner

    from tianping.cli.main import app

    _fill(session, duckdb_warehouse)
    session.commit()  # the command opens its own session
    duckdb_warehouse.close()
    base = ["--home", str(tmp_path / "home"), "--store", store_url,
            "--warehouse", f"duckdb://{tmp_path / 'w.duckdb'}", "policy", "replay",
            "reject-all.yaml", "--from", str(T0.date()), "--to", str(T0.date()),
            "--format", "json"]  # fmt: skip
    import yaml

    (tmp_path / "reject-all.yaml").write_text(yaml.safe_dump(REJECT_ALL_DOC), encoding="utf-8")
    base[base.index("reject-all.yaml")] = str(tmp_path / "reject-all.yaml")
    runner = CliRunner()
    out = runner.invoke(app, base)
    assert out.exit_code == 0, out.output
    row = json.loads(out.stdout)["two-sided errors"][0]
    assert (row["source"], row["honest_refused"], row["honest_refused_amount"]) == (
        APPEALS,
        1,
        "40.00",
    )
    assert (row["abusive_paid"], row["abusive_paid_rate"]) == (0, 0.0)
    blind = runner.invoke(app, [*base, "--no-appeals"])
    assert blind.exit_code == 0, blind.output
    assert json.loads(blind.stdout)["two-sided errors"][0]["honest_refused"] == "unknown"
