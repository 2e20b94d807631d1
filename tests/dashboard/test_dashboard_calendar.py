"""The overview with the marketplace calendar: event peaks marked on GMV per day, the months
that hold an event named, and the change bridge showing the CLI's parts, to the fen."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
from dashboard_world import populate
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from refund_helpers import make_env
from tianping.cli.main import app as cli
from tianping.report.figures import money
from tianping.server.app import create_app
from tianping.settings import Settings
from tianping.warehouse import connect

CALENDAR = "campaigns:\n  may_sale: {name: May sale, date: '05-20', after_days: 1}\n"


def _orders(first: date, days: int) -> pa.Table:
    rng = np.random.default_rng(4)
    rows = []
    for k in range(days):
        day = first + timedelta(k)
        lift = 3 if day in (date(2024, 6, 18), date(2024, 5, 20)) else 1
        for i in range(int(rng.poisson(20 * lift))):
            rows.append((f"o{k}-{i}", f"b{rng.integers(300)}", int(rng.integers(1_000, 30_000)),
                         datetime(day.year, day.month, day.day, 10)))  # fmt: skip
    n = len(rows)
    ids, buyers, fen, at = zip(*rows, strict=True)
    return pa.table({
        "order_id": list(ids), "buyer_id": list(buyers), "merchant_id": ["m1"] * n,
        "category": ["food"] * n,
        "amount": pa.array([f"{f / 100:.2f}" for f in fen]).cast(pa.decimal128(18, 2)),
        "created_at": pa.array(list(at), pa.timestamp("us")),
        "channel": pa.nulls(n, pa.string()), "delivery_mode": pa.nulls(n, pa.string()),
        "product_id": pa.nulls(n, pa.string()), "coupon_amount": pa.nulls(n, pa.decimal128(18, 2)),
        "delivered_at": pa.nulls(n, pa.timestamp("us")),
    })  # fmt: skip


def test_the_overview_marks_events_and_shows_the_clis_bridge(tmp_path):
    home = tmp_path / "home"
    calendar = tmp_path / "calendar.yaml"
    calendar.write_text(CALENDAR, encoding="utf-8")
    wh = connect(Settings(home=home), write=True)
    wh.append("orders", _orders(date(2024, 5, 1), 61))
    wh.close()
    app = create_app(Settings(home=home, calendar=str(calendar)), env=make_env())
    with TestClient(app) as client:
        keys = populate(app, client)["keys"]
        client.post("/dashboard/sign-in", data={"key": keys["analyst"], "next": "/dashboard/"})
        page = client.get("/dashboard/").text
    # the chart marks both peaks, the list names the months' events with the aligned command
    labels = re.findall(r'<text class="mark-label"[^>]*>([^<]+)</text>', page)
    assert labels == ["May sale", "618"]
    assert "tianping metrics why --event 618 --year 2024" in page
    assert 'data-event="may_sale"' in page
    # the bridge: the CLI's question, the CLI's parts
    out = CliRunner().invoke(cli, ["--home", str(home), "--calendar", str(calendar), "metrics",
                                   "bridge", "--from", "2024-05", "--to", "2024-06",
                                   "--format", "json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    shown = json.loads(out.stdout)
    rows = re.findall(r'<tr data-part="([^"]+)" data-kind="([^"]+)">.*?<td class="amount">'
                      r"([^<]+)</td>", page)  # fmt: skip
    assert [(part, kind) for part, kind, _ in rows] == [
        (p["part"], p["kind"]) for p in shown["parts"]
    ]
    assert [amount for _, _, amount in rows] == [
        ("+" if p["amount_minor"] > 0 else "") + money(p["amount_minor"], minor=True)
        for p in shown["parts"]
    ]
    assert {p["part"] for p in shown["parts"]} >= {"May sale", "618", "30 days against 31"}
    assert money(shown["change_minor"], minor=True) in page
