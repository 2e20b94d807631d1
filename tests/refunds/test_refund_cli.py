"""``tianping ledger check``, ``tianping export refunds`` and ``tianping serve``."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text
from typer.testing import CliRunner

from refund_helpers import make_env, order_in, refund_in, use_lifecycle_policy
from tianping.cli.main import app
from tianping.refunds import orders as refund_orders
from tianping.refunds import service
from tianping.settings import Settings
from tianping.store import init_schema, make_engine, make_sessionmaker
from tianping.warehouse import connect

runner = CliRunner()


def _run(tmp_path, store_url, *args):
    return runner.invoke(app, ["--home", str(tmp_path), "--store", store_url, *args])


def _fill(store_url):
    engine = make_engine(store_url)
    init_schema(engine)
    session = make_sessionmaker(engine)()
    env = make_env()
    use_lifecycle_policy(session, env)
    for i, reason in enumerate(["quality", "fraud", "changed_mind", "wrong_size"]):
        refund_orders.record_order(order_in(f"o{i}", 10_000), session=session, env=env)
        service.request_refund(refund_in(f"o{i}", 10_000, reason), session=session, env=env)
    session.commit()
    return engine, session


def test_ledger_check_passes_then_reports_a_violation(tmp_path, store_url):
    engine, session = _fill(store_url)
    ok = _run(tmp_path, store_url, "ledger", "check")
    assert ok.exit_code == 0, ok.output
    assert "ok:" in ok.output and "orders" in ok.output
    # A row written behind the service's back: an unbalanced transfer on o0.
    session.execute(
        text(
            "INSERT INTO ledger_transfers (id, kind, currency, order_id, memo, created_at) "
            "VALUES ('bad', 'refund', 'CNY', 'o0', '', '2025-01-01 00:00:00')"
        )
    )
    session.execute(
        text(
            "INSERT INTO ledger_entries (transfer_id, account_kind, account_owner, amount_minor, "
            "currency) VALUES ('bad', 'buyer_payment', 'b1', 5, 'CNY')"
        )
    )
    session.commit()
    bad = _run(tmp_path, store_url, "ledger", "check", "--format", "json")
    assert bad.exit_code == 1
    assert '"check": "balanced"' in bad.output and '"subject": "bad"' in bad.output
    assert '"check": "over_refund"' in bad.output
    session.close()
    engine.dispose()


def test_export_refunds_writes_each_settled_request_once(tmp_path, store_url):
    engine, session = _fill(store_url)
    first = _run(tmp_path, store_url, "export", "refunds")
    assert first.exit_code == 0, first.output
    assert "exported 3 refund request(s)" in first.output  # the return is still open
    again = _run(tmp_path, store_url, "export", "refunds")
    assert "exported 0 refund request(s)" in again.output and "3 already there" in again.output
    wh = connect(Settings(home=tmp_path))
    rows = wh.execute(wh.table("refunds").order_by("order_id")).to_dict("records")
    wh.close()
    assert [(r["order_id"], r["decision"], r["refunded_amount"]) for r in rows] == [
        ("o0", "refund_only", Decimal("100.00")),
        ("o1", "reject", Decimal("0.00")),
        ("o3", "partial_refund", Decimal("50.00")),
    ]
    session.close()
    engine.dispose()


def test_serve_is_a_command():
    out = runner.invoke(app, ["serve", "--help"])
    assert out.exit_code == 0 and "--port" in out.output and "--tick-seconds" in out.output
