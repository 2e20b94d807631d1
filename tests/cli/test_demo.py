"""``tianping demo`` end to end on a small marketplace in a temporary home."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from tianping.cli.main import app
from tianping.metrics.service import compute_metrics
from tianping.report.html import fmt
from tianping.settings import Settings
from tianping.warehouse import connect

runner = CliRunner()
SIZE = ["--buyers", "1500", "--days", "50", "--seed", "3"]


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo") / ".tianping"
    result = runner.invoke(app, ["--home", str(home), "demo", *SIZE])
    assert result.exit_code == 0, result.output
    return home, result.stdout


def warehouse_totals(home) -> dict:
    wh = connect(Settings(home=home))
    try:
        return compute_metrics(wh, "year")[0]
    finally:
        wh.close()


def test_report_is_written_self_contained_with_the_headline_numbers(demo_home):
    home, _ = demo_home
    html = (home / "report.html").read_text(encoding="utf-8")
    totals = warehouse_totals(home)
    for key, kind in (
        ("gmv", "money"),
        ("orders", "count"),
        ("refund_rate", "pct"),
        ("nps", "nps"),
    ):
        assert fmt(totals[key], kind) in html, key
    assert "checkout_red_packet" in html and "taobao-2024-08" in html
    assert "Horse race: homepage_feed_race, after 3 steps" in html
    assert "not in this demo yet" in html  # what the demo cannot show is said, not faked
    # self-contained: no script, stylesheet or image fetched from anywhere
    assert not re.search(r"<script|<link|src=|https?://", html)
    assert "<svg" in html and "<style>" in html


def test_stdout_has_the_headline_metrics_and_how_to_open_the_report(demo_home):
    home, out = demo_home
    totals = warehouse_totals(home)
    assert fmt(totals["gmv"], "money") in out
    assert "market 2024-04 (competitors simulated at our scale" in " ".join(out.split())
    assert "A/B test checkout_red_packet" in out
    assert "refund decisions replayed" in out
    assert "horse race homepage_feed_race after 3 steps" in out
    assert "report.html" in out


def test_demo_leaves_usable_data_and_truth(demo_home):
    home, _ = demo_home
    assert (home / "ground_truth" / "truth.json").is_file()
    listed = runner.invoke(app, ["--home", str(home), "experiment", "list", "--format", "json"])
    assert listed.exit_code == 0 and "checkout_red_packet" in listed.stdout
    race = runner.invoke(app, ["--home", str(home), "race", "report", "homepage_feed_race"])
    assert race.exit_code == 0 and "phase racing" in race.stdout


def test_competitors_are_simulated_at_our_scale_for_the_months_we_cover(demo_home):
    import json

    home, _ = demo_home
    periods = json.loads(runner.invoke(app, ["--home", str(home), "market", "periods",
                                             "--format", "json"]).stdout)  # fmt: skip
    assert [(p["period"], p["covered_days"], p["days"]) for p in periods] == [
        ("2024-04", 30, 30), ("2024-05", 20, 31)]  # fmt: skip
    doc = json.loads(runner.invoke(app, ["--home", str(home), "market", "compare",
                                         "--format", "json"]).stdout)  # fmt: skip
    assert doc["period"] == "2024-04" and not doc["projected"]
    gmv = next(c for c in doc["comparisons"] if c["metric"] == "gmv")
    wh = connect(Settings(home=home))
    try:
        april = compute_metrics(wh, "month")[0]
    finally:
        wh.close()
    assert gmv["ours"] == pytest.approx(float(april["gmv"]))
    assert 0.3 < gmv["share"] < 0.6 and gmv["rank"] == 1  # the seeds' 8 : 4 : 3 : 2.6
    csv_text = (home / "market_simulated.csv").read_text(encoding="utf-8")
    assert csv_text.count("simulated at the demo marketplace's scale") == 6


def test_rerun_is_refused_then_rebuild_replaces_without_doubling(demo_home):
    home, _ = demo_home
    before = warehouse_totals(home)["orders"]
    again = runner.invoke(app, ["--home", str(home), "demo", *SIZE])
    assert again.exit_code != 0
    assert "already holds data" in again.output and "--rebuild" in again.output
    assert "Traceback" not in again.output
    rebuilt = runner.invoke(app, ["--home", str(home), "demo", *SIZE, "--rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert warehouse_totals(home)["orders"] == before  # same seed: same data, not twice
    periods = runner.invoke(app, ["--home", str(home), "market", "periods", "--format", "json"])
    assert periods.stdout.count('"period"') == 2


def test_bad_sizes_are_one_line_errors(tmp_path):
    result = runner.invoke(app, ["--home", str(tmp_path), "demo", "--days", "10"])
    assert result.exit_code != 0
    assert "--days must be at least" in result.output and "Traceback" not in result.output


def test_demo_honours_the_warehouse_and_store_options(tmp_path):
    home, wh_file, store_file = (
        tmp_path / "home",
        tmp_path / "elsewhere.duckdb",
        tmp_path / "s.sqlite",
    )
    result = runner.invoke(
        app,
        ["--home", str(home), "--warehouse", f"duckdb://{wh_file}", "--store",
         f"sqlite:///{store_file}", "demo", "--buyers", "600", "--days", "45"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert wh_file.is_file() and store_file.is_file()
    assert not (home / "warehouse.duckdb").exists() and not (home / "store.sqlite").exists()
    assert (home / "report.html").is_file()
    wh = connect(Settings(home=home, warehouse=f"duckdb://{wh_file}"))
    try:
        assert wh.row_count("orders") > 0
    finally:
        wh.close()


def test_demo_fills_the_store_through_the_real_services(demo_home):
    """Orders, refund requests in every state a person meets, appeals, a review queue, named
    approvers with keys, a goal revised by decision and a decision waiting for a vote."""
    import json
    import stat

    from sqlalchemy import func, select

    from tianping.refunds.models import Order, RefundRequest
    from tianping.store import session_scope

    home, out = demo_home

    def cli(*args):
        result = runner.invoke(app, ["--home", str(home), *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    with session_scope(Settings(home=home).store) as s:
        orders = s.scalar(select(func.count()).select_from(Order))
        statuses = dict(s.execute(select(RefundRequest.status, func.count())
                                  .group_by(RefundRequest.status)).all())  # fmt: skip
        orphans = s.scalar(select(func.count()).select_from(RefundRequest)
                           .where(RefundRequest.order_id.not_in(select(Order.id))))  # fmt: skip
    assert orders > 100 and orphans == 0
    assert {"refunded", "closed"} & statuses.keys() and len(statuses) >= 4, statuses
    cli("ledger", "check")  # every transfer balances, no order over-refunded (else exit 1)
    assert runner.invoke(app, ["--home", str(home), "audit", "--verify"]).exit_code == 0
    keys = {k["name"]: k for k in json.loads(cli("keys", "list", "--format", "json"))}
    assert {"Li Na", "Wang Fang", "Zhang Wei", "Chen Jing"} <= keys.keys()
    keys_file = home / "demo-keys.txt"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700  # store, secret and keys inside
    assert keys_file.read_text().count("tp_") == len(keys)  # each key once, for signing in
    decisions = json.loads(cli("decision", "list", "--format", "json"))
    assert sorted(d["status"] for d in decisions) == ["approved"] * 3 + ["pending"]
    pending = next(d for d in decisions if d["status"] == "pending")
    assert pending["kind"] == "ship_experiment" and pending["approvals"] == "1/2"
    # the approvers filled the merchant protection fund at the month's start (decision #1)
    first = next(d for d in decisions if d["id"] == 1)
    assert (first["kind"], first["status"]) == ("spend", "approved")
    fund = json.loads(cli("ledger", "fund", "show", "--format", "json"))
    (cny,) = fund["funds"]
    assert (cny["currency"], cny["top_ups"], cny["topped_up"]) == ("CNY", 1, "5000.00")
    assert cny["balance_minor"] == cny["topped_up_minor"] - cny["paid_out_minor"]
    assert fund["movements"][-1]["transfer"] == "fund:top-up:decision:1"
    history = json.loads(cli("goal", "history", "dac-year-end", "--format", "json"))
    assert [h["revision"] for h in history] == [1, 2]
    assert (
        history[1]["reason"].endswith("(decision #2)")
        and history[1]["target"] > history[0]["target"]
    )
    race = json.loads(cli("race", "report", "homepage_feed_race", "--format", "json"))
    assert len(race["steps"]) == 3  # stepped several times: its charts have lines
    assert "Li Na's key" in out and "demo-keys.txt" in out
