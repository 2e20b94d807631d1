"""The dashboard over a sources file: the overview's figures come from the mapped tables."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
from dashboard_world import populate
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from refund_helpers import make_env
from serving import TIANPING, running_server
from tianping.cli.main import app as cli
from tianping.server.app import create_app
from tianping.settings import Settings


def _write(tmp_path: Path) -> Path:
    orders = pa.table(
        {
            "id": ["o1", "o2", "o3"],
            "user_id": ["b1", "b2", "b1"],
            "shop": ["m1", "m1", "m2"],
            "category": ["food", "food", "toys"],
            "pay_fen": pa.array([123_456, 500, 7_700], pa.int64()),
            "paid_at": pa.array(
                [dt.datetime(2024, 6, 3, 9), dt.datetime(2024, 6, 4, 10), dt.datetime(2024, 6, 5)],
                pa.timestamp("us"),
            ),
        }
    )
    pq.write_table(orders, tmp_path / "orders.parquet")
    sources = tmp_path / "sources.yaml"
    sources.write_text(json.dumps({"timezone": "Asia/Shanghai", "tables": {"orders": {
        "path": str(tmp_path / "orders.parquet"), "money": "minor",
        "columns": {"order_id": "id", "buyer_id": "user_id", "merchant_id": "shop",
                    "amount": "pay_fen", "created_at": "paid_at"}}}}), encoding="utf-8")  # fmt: skip
    return sources


def test_overview_reads_the_mapped_orders_and_agrees_with_the_cli(tmp_path):
    sources = _write(tmp_path)
    home = tmp_path / "home"
    app = create_app(Settings(home=home, sources=str(sources)), env=make_env())
    with TestClient(app) as client:
        keys = populate(app, client)["keys"]
        client.post("/dashboard/sign-in", data={"key": keys["analyst"], "next": "/dashboard/"})
        page = client.get("/dashboard/")
    assert page.status_code == 200, page.text
    out = CliRunner().invoke(
        cli, ["--home", str(home), "--sources", str(sources), "metrics", "--grain", "month",
              "--format", "json"]
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)[0]["gmv"] == 1316.56
    assert "¥1,316.56" in page.text
    assert not (home / "warehouse.duckdb").exists()


def test_serve_hands_the_sources_to_its_workers_and_refuses_a_broken_mapping(tmp_path):
    sources = _write(tmp_path)
    home = tmp_path / "home"
    made = subprocess.run([TIANPING, "--home", str(home), "keys", "create", "--role", "analyst"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    key = made.stdout.strip()
    broken = tmp_path / "broken.yaml"
    broken.write_text(sources.read_text().replace('"pay_fen"', '"paid_fen"'), encoding="utf-8")
    refused = subprocess.run([TIANPING, "--home", str(home), "--sources", str(broken), "serve"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 1
    assert "orders.amount: no column 'paid_fen'" in refused.stderr
    server = running_server("--home", str(home), "--sources", str(sources))
    with server as base, httpx.Client(base_url=base, follow_redirects=True) as client:
        client.post("/dashboard/sign-in", data={"key": key, "next": "/dashboard/"})
        page = client.get("/dashboard/")
    assert page.status_code == 200, page.text[-2000:]
    assert "¥1,316.56" in page.text
