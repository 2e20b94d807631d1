"""The foundation's commands end to end through the real CLI (exit codes, formats, no tracebacks)."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta

import pytest
from typer.testing import CliRunner

from tianping.cli.main import app

runner = CliRunner()


def run(home, *args):
    return runner.invoke(app, ["--home", str(home), *args])


@pytest.fixture
def orders_csv(tmp_path):
    path = tmp_path / "orders.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["order_id", "buyer_id", "merchant_id", "category", "amount", "created_at"])
        w.writerow(["o1", "b1", "m1", "food", "10.10", "2024-03-01T10:00:00Z"])
        w.writerow(["o2", "b2", "m1", "toys", "20.20", "2024-03-02T10:00:00Z"])
        w.writerow(["o3", "b1", "m2", "food", "30.30", "2024-03-02T11:00:00Z"])
    return path


def test_help_and_version(tmp_path):
    assert run(tmp_path, "--help").exit_code == 0
    out = run(tmp_path, "--version")
    assert out.exit_code == 0 and out.stdout.startswith("tianping ")


def test_ingest_then_metrics_json(tmp_path, orders_csv):
    home = tmp_path / "h"
    out = run(home, "ingest", "orders", str(orders_csv))
    assert out.exit_code == 0, out.output
    assert "read 3 = loaded 3 + rejected 0 + duplicates skipped 0" in out.stdout
    out = run(home, "metrics", "--grain", "day", "--format", "json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert [r["period"] for r in rows] == ["2024-03-01", "2024-03-02"]
    assert rows[1]["gmv"] == 50.5 and rows[1]["orders"] == 2
    assert '"gmv": 50.50' in out.stdout  # money keeps 2 decimals in JSON
    assert rows[0]["nps"] is None  # no NPS data: null, not 0
    out = run(home, "metrics", "--grain", "month", "--by", "category", "--format", "csv")
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("period,category,gmv,orders")
    assert lines[1].startswith("2024-03-01,food,40.40,2")


def test_ingest_invalid_file_exit_1_lists_problems(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "order_id,buyer_id,merchant_id,category,amount,created_at\no1,b1,m1,food,-3,2024-03-01\n"
    )
    out = run(tmp_path / "h", "ingest", "orders", str(bad))
    assert out.exit_code == 1
    assert "row 1, column amount, value '-3': must be >= 0" in out.output
    assert "Traceback" not in out.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "clicks", "x.csv"], "unknown table 'clicks'"),
        (["ingest", "orders", "missing.csv"], "no such readable file"),
        (["metrics", "--grain", "hour"], "unknown grain"),
        (["metrics", "--from", "yesterday"], "is not a date"),
        (["--warehouse", "oracle", "metrics"], "unknown warehouse"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, args, message):
    out = run(tmp_path / "h", *args)
    assert out.exit_code == 2, out.output
    assert message in out.output and "Traceback" not in out.output


def test_explain_market_and_goal(tmp_path, orders_csv):
    home = tmp_path / "h"
    run(home, "ingest", "orders", str(orders_csv))
    out = run(
        home,
        "metrics",
        "explain",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-02",
        "--grain",
        "day",
        "--format",
        "json",
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["gmv_change"] == pytest.approx(40.4)
    assert sum(report["contributions"].values()) == pytest.approx(40.4, abs=0.02)
    assert report["movers"][0]["category"] == "food"
    assert run(home, "market", "import").exit_code == 0
    out = run(home, "market", "compare", "--format", "json")
    assert out.exit_code == 0 and json.loads(out.stdout)["period"] == "2023"
    out = run(
        home,
        "goal",
        "set",
        "g",
        "--metric",
        "gmv",
        "--target",
        "100",
        "--by",
        (date.today() + timedelta(days=365)).isoformat(),
        "--reason",
        "plan",
    )
    assert out.exit_code == 0, out.output
    out = run(home, "goal", "status", "--format", "json")
    assert json.loads(out.stdout)[0]["times_changed"] == 0
