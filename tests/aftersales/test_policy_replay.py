"""What-if replay on a small hand-built warehouse with known numbers."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
import yaml
from typer.testing import CliRunner

from tianping.aftersales import features
from tianping.aftersales.policy import parse_policy
from tianping.aftersales.replay import ABUSE_TRUTH_TABLE, replay, replay_inputs, report_sections
from tianping.errors import UsageError
from tianping.events.schema import TABLES

WINDOW = {"start": date(2024, 3, 1), "end": date(2024, 3, 31)}
REASONS = {"r": {"buyer": "b", "merchant": "m"}}


def _rows(table: str, rows: list[dict]) -> pa.Table:
    names = TABLES[table].names
    return pa.table({n: [r.get(n) for r in rows] for n in names})


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s)


ORDERS = [
    # order, buyer, merchant, category, amount, created, delivered, product
    ("o0", "b1", "m1", "food", "20.00", "2024-02-01", "2024-02-03", "p1"),
    ("o1", "b1", "m1", "food", "15.00", "2024-03-01", "2024-03-02T10:00", "p1"),
    ("o2", "b1", "m1", "food", "50.00", "2024-03-01", "2024-03-03", "p2"),
    ("o3", "b2", "m2", "electronics", "300.00", "2024-03-02", None, "p3"),
    ("o4", "b3", "m2", "apparel", "25.00", "2024-03-02", "2024-03-04T12:00", "p4"),
    ("o5", "b3", "m1", "apparel", "80.00", "2024-02-27", "2024-02-28", "p4"),
]
REFUNDS = [
    # refund, order, requested, reason, amount
    ("r0", "o0", "2024-02-10", "quality", "20.00"),  # before the window: history only
    ("r1", "o1", "2024-03-05T09:00", "quality", "15.00"),
    ("r2", "o2", "2024-03-10", "Changed mind", "50.00"),
    ("r3", "o3", "2024-03-06", "not_received", "300.00"),
    ("r4", "o4", "2024-03-07T12:00", "empty-parcel", "25.00"),
    ("r5", "o5", "2024-03-08", "empty_parcel", "80.00"),
    ("r6", "o5", "2024-03-09", "not_received", "10.00"),
    ("r7", "o99", "2024-03-09", "quality", "10.00"),  # order unknown: left out, counted
    ("r8", "o1", "2024-04-02", "quality", "15.00"),  # after the window
]


@pytest.fixture
def wh(duckdb_warehouse):
    orders = [
        {"order_id": o, "buyer_id": b, "merchant_id": m, "category": c, "amount": Decimal(a),
         "created_at": _t(cr), "delivered_at": _t(dl) if dl else None, "product_id": p}
        for o, b, m, c, a, cr, dl, p in ORDERS
    ]  # fmt: skip
    refunds = [
        {
            "refund_id": r,
            "order_id": o,
            "requested_at": _t(at),
            "reason": why,
            "requested_amount": Decimal(a),
        }
        for r, o, at, why, a in REFUNDS
    ]
    duckdb_warehouse.append("orders", _rows("orders", orders))
    duckdb_warehouse.append("refunds", _rows("refunds", refunds))
    return duckdb_warehouse


def _policy(small_below: int, undelivered: dict, abnormal: str) -> dict:
    return {
        "name": f"test-{small_below}",
        "title": "replay test",
        "source": "test",
        "currency": "CNY",
        "reasons": REASONS,
        "rules": [
            {"id": "abnormal", "priority": 10, "when": {"abnormal_behaviour": True}, "then": {"action": abnormal, "reasons": ["r"]}},
            {"id": "undelivered", "priority": 5, "when": {"delivered": False}, "then": undelivered | {"reasons": ["r"]}},
            {"id": "small", "when": {"delivered": True, "amount_minor": {"lt": small_below}},
             "then": {"action": "refund_only", "payer": "merchant", "reasons": ["r"]}},
            {"id": "return", "when": {"delivered": True, "amount_minor": {"gte": small_below}, "days_since_delivery": {"lte": 7}},
             "then": {"action": "return_and_refund", "payer": "merchant", "reasons": ["r"]}},
            {"id": "late", "when": {"delivered": True, "amount_minor": {"gte": small_below}, "days_since_delivery": {"gt": 7}},
             "then": {"action": "manual_review", "reasons": ["r"]}},
        ],
    }  # fmt: skip


A = _policy(3000, {"action": "refund_only", "payer": "platform"}, "reject")
B = _policy(
    6000, {"action": "partial_refund", "fraction": 0.5, "payer": "platform"}, "manual_review"
)


def test_inputs_are_derived_per_request(wh):
    inputs = replay_inputs(wh, **WINDOW)
    assert list(inputs.refund_ids) == ["r1", "r2", "r3", "r4", "r5", "r6"]
    assert inputs.unmatched == 1
    c = inputs.columns
    assert c["amount_minor"].tolist() == [1500, 5000, 30000, 2500, 8000, 1000]
    assert [c["reason"].labels[i] for i in c["reason"].codes] == [
        "quality", "changed_mind", "not_received", "empty_parcel", "empty_parcel", "not_received",
    ]  # fmt: skip
    assert c["delivered"].tolist() == [True, True, False, True, True, True]
    assert c["days_since_delivery"].tolist() == [2, 7, 0, 3, 9, 10]
    # r0 (24 and 29 days earlier) counts for r1 and r2; b3's claims pile up on r5, r6.
    assert c["buyer_recent_claims"].tolist() == [1, 2, 0, 0, 1, 2]
    assert c["abnormal_behaviour"].tolist() == [False, False, False, False, False, True]
    assert inputs.abusive is None and any("abuse loss unavailable" in n for n in inputs.notes)


def test_scores_come_from_the_scoring_modules_as_of_the_window_start(wh):
    inputs = replay_inputs(wh, **WINDOW)
    as_of = datetime(2024, 3, 1)
    credit = features.buyer_credit(wh, buyer_ids=["b1", "b1", "b2", "b3", "b3", "b3"], as_of=as_of)
    assert inputs.columns["buyer_score"].tolist() == credit.score.astype(float).tolist()
    quality = features.merchant_quality(
        wh, merchant_ids=["m1", "m1", "m2", "m2", "m1", "m1"], as_of=as_of
    )
    assert np.allclose(inputs.columns["merchant_score"], quality.score)
    signals = features.product_defects(wh, as_of=as_of)
    flagged = set(signals.product_id[signals.flagged].tolist())
    assert inputs.columns["defect_flag"].tolist() == [
        p in flagged for p in ["p1", "p2", "p3", "p4", "p4", "p4"]
    ]


def test_replay_numbers_and_changes(wh):
    truth = pa.table({"refund_id": ["r1", "r4", "r6"], "abusive": [False, True, True]})
    wh.append(ABUSE_TRUTH_TABLE, truth)
    report = replay(wh, parse_policy(A), against=parse_policy(B), **WINDOW, sample=10)
    a, b = report.outcomes
    assert (report.requests, report.unmatched) == (6, 1)
    # A: r1 refund_only 1500, r2 return 5000, r3 platform 30000, r4 refund_only 2500,
    #    r5 manual review (9 days), r6 rejected (abnormal).
    assert (a.automatic, a.auto_decision_rate) == (5, 5 / 6)
    assert a.by_action["refund_only"] == 3 and a.by_action["reject"] == 1
    assert a.refunded_minor == {"merchant": 9000, "platform": 30000}
    assert (a.abusive_requests, a.abuse_loss_minor, a.abuse_refunded_with_return_minor) == (
        2,
        2500,
        0,
    )
    # B: r2 refunded without return, r3 half by the platform, r6 to manual review.
    assert b.refunded_minor == {"merchant": 9000, "platform": 15000}
    # r1, r2, r4 refund only, r3 partial (automatic); r5 late and r6 abnormal go to a person.
    assert (b.automatic, b.abuse_loss_minor) == (4, 2500)
    c = report.comparison
    assert c.changed == 3
    assert c.transitions == [
        {
            "from": "refund_only",
            "to": "partial_refund",
            "requests": 1,
            "refund_change_minor": -15000,
        },
        {"from": "reject", "to": "manual_review", "requests": 1, "refund_change_minor": 0},
        {"from": "return_and_refund", "to": "refund_only", "requests": 1, "refund_change_minor": 0},
    ]
    assert [s["refund_id"] for s in c.sample] == ["r2", "r3", "r6"]
    assert c.sample[1] | {} == {
        "refund_id": "r3", "from_rule": "undelivered", "from_action": "refund_only", "from_refund_minor": 30000,
        "from_payer": "platform", "to_rule": "undelivered", "to_action": "partial_refund",
        "to_refund_minor": 15000, "to_payer": "platform",
    }  # fmt: skip
    sections = report_sections(report)
    assert sections["outcome"][0]["refunded_by_platform"] == "300.00"
    assert sections["changes by action"][0]["refund_change"] == "-150.00"


def test_sample_is_seeded_and_bounded(wh):
    first = replay(wh, parse_policy(A), against=parse_policy(B), **WINDOW, sample=2, seed=7)
    again = replay(wh, parse_policy(A), against=parse_policy(B), **WINDOW, sample=2, seed=7)
    assert len(first.comparison.sample) == 2 and first.comparison.sample == again.comparison.sample


def test_empty_window_and_bad_window(wh):
    report = replay(wh, parse_policy(A), start=date(2023, 1, 1), end=date(2023, 1, 31))
    assert report.requests == 0 and report.outcomes[0].auto_decision_rate == 0.0
    with pytest.raises(UsageError, match="ends"):
        replay(wh, parse_policy(A), start=date(2024, 3, 2), end=date(2024, 3, 1))
    with pytest.raises(UsageError, match="decides in CNY"):
        replay(wh, parse_policy(A), **WINDOW, currency="USD")


def test_shipped_policies_replay(wh):
    from tianping.aftersales.policy import load_builtin

    report = replay(
        wh, load_builtin("taobao-2023-12"), against=load_builtin("taobao-2024-08"), **WINDOW
    )
    assert [o.requests for o in report.outcomes] == [6, 6]
    # r6 is abnormal: rejected under August 2024; undelivered r3 is refunded by both.
    assert report.outcomes[1].by_action["reject"] >= 1
    assert report.outcomes[0].refunded_minor["merchant"] >= 30000


def test_cli_replay_and_policy_commands(wh, tmp_path):
    from tianping.cli.main import app

    db = wh.con.con
    db.execute("CHECKPOINT")
    path_a, path_b = tmp_path / "a.yaml", tmp_path / "b.json"
    path_a.write_text(yaml.safe_dump(A), encoding="utf-8")
    path_b.write_text(json.dumps(B), encoding="utf-8")
    warehouse = next(
        iter(
            db.execute(
                "select path from duckdb_databases() where database_name = current_database()"
            ).fetchone()
        )
    )
    wh.close()
    runner = CliRunner()
    base = ["--home", str(tmp_path), "--warehouse", f"duckdb://{warehouse}", "policy"]
    out = runner.invoke(
        app,
        [
            *base,
            "replay",
            str(path_a),
            "--against",
            str(path_b),
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-31",
            "--format",
            "json",
        ],
    )
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert body["outcome"][0]["refunded_by_merchant"] == "90.00"
    assert body["comparison"][0]["changed"] == 3
    # No ground truth and no store: the errors are unknown, the platform's cost is not.
    errors = body["two-sided errors"][0]
    assert (errors["source"], errors["honest_refused_rate"]) == ("unknown", "unknown")
    assert errors["platform_cost"] == "300.00"
    table = runner.invoke(
        app, [*base, "replay", str(path_a), "--from", "2024-03-01", "--to", "2024-03-31"]
    )
    assert table.exit_code == 0 and "auto_decision_rate" in table.output
    assert runner.invoke(app, [*base, "validate", str(path_a)]).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(A | {"rules": A["rules"][2:]}), encoding="utf-8")
    result = runner.invoke(app, [*base, "validate", str(bad)])
    assert result.exit_code == 1 and "no rule covers inputs where" in result.output
    assert "delivered = false" in result.output
    shown = runner.invoke(app, [*base, "show", "taobao-2024-08", "--format", "json"])
    rows = {r["rule"]: r for r in json.loads(shown.output)}
    assert list(rows)[0] == "abnormal-behaviour"
    assert rows["data-judged-defect"]["negotiation"] == "first at merchant_score >= 4.8"
    assert rows["abnormal-behaviour"]["negotiation"] == rows["not-delivered"]["negotiation"] == ""
    checked = runner.invoke(app, [*base, "validate", "taobao-2024-08"])
    assert "negotiation first: merchants scoring >= 4.8" in checked.output
    assert "after 48 h" in checked.output and "not-delivered pay at once" in checked.output
    request = {"amount_minor": 1999, "currency": "CNY", "category": "food", "reason": "quality",
               "buyer_score": 600, "merchant_score": 4.5, "defect_flag": False, "delivered": True,
               "days_since_delivery": 1, "buyer_recent_claims": 0}  # fmt: skip
    decided = runner.invoke(
        app, [*base, "evaluate", "pinduoduo-2021", "--input", json.dumps(request)]
    )
    assert decided.exit_code == 0 and json.loads(decided.output)["rule_id"] == "small-order"
    broken = runner.invoke(app, [*base, "evaluate", "pinduoduo-2021", "--input", "{"])
    assert broken.exit_code == 1 and "not valid JSON" in broken.output
    listed = runner.invoke(app, [*base, "list", "--format", "csv"])
    assert "taobao-2024-08" in listed.output


def test_replay_reports_the_two_sided_errors(wh):
    wh.append(ABUSE_TRUTH_TABLE, pa.table({"refund_id": ["r1", "r4", "r6"], "abusive": [False, True, True]}))  # fmt: skip
    report = replay(wh, parse_policy(A), against=parse_policy(B), **WINDOW, split="errs")
    a, b = (o.errors for o in report.outcomes)
    # Honest: r1, r2, r3, r5 (absent from the truth table = not abusive); abusive: r4, r6.
    # A pays r1 (0 h), r2 after a return (408 h), r3 (0 h); sends r5 to review; pays abusive r4
    # (merchant, 25.00) without a return and rejects abusive r6.
    assert (a.honest_requests, a.abusive_requests) == (4, 2)
    assert (a.honest_refused.count, a.abusive_paid.count, a.abusive_paid.of) == (0, 1, 2)
    assert (a.abusive_paid_minor, a.merchant_loss_minor, a.platform_cost_minor) == (
        2500,
        2500,
        30000,
    )
    assert (a.to_a_person, a.honest_paid) == (1, 3)
    assert (a.time_to_money_median_hours, a.time_to_money_p90_hours) == (0.0, 408.0)
    # B refunds r2 without a return (0 h everywhere), halves r3 and sends r6 to a person.
    assert (b.to_a_person, b.time_to_money_p90_hours, b.platform_cost_minor) == (2, 0.0, 15000)
    sections = report_sections(report)
    rows = sections["two-sided errors"]
    assert [r["policy"] for r in rows] == [r["policy"] for r in sections["outcome"]]
    assert rows[0]["abusive_paid_rate"] == 0.5 and rows[0]["merchant_loss"] == "25.00"
    assert rows[0]["abusive_paid_rate_low"] < 0.5 < rows[0]["abusive_paid_rate_high"]
    assert rows[0]["source"] == "ground truth (refund_truth)"
    arms = sections["two-sided errors by arm (experiment errs)"]
    assert sum(r["honest_requests"] for r in arms) == 4
