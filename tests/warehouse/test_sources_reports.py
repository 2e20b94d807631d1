"""Every report, read in place from a company's PostgreSQL, prints what the ingested home prints.

Two homes see the same marketplace: one had the simulator's files loaded with
``tianping ingest``; the other has no warehouse of its own, only ``--warehouse postgres://…``
and a sources file mapping the company's differently shaped tables (``byow.py``). Each report
command runs in both through the CLI, and the JSON outputs must be equal (floats to 1e-9).
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from byow import EVENT_TABLES, MAPPINGS, same, sources_yaml
from typer.testing import CliRunner

from tianping.cli.main import app

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
runner = CliRunner()

EXPERIMENT = """
name: checkout_red_packet
variants: [control, red_packet]
primary_metric: conversion
secondary_metrics: [gmv, aov, refund_rate, order_value_p90]
cupac: true
start_date: 2024-04-08
end_date: 2024-05-31
"""
NEXT_YEAR = f"{date.today().year + 1}-12-31"
MARKET = "platform,period,gmv,buyers\nrival,2024-04,90000,2000\nrival,2024-05,95000,2100\n"

REPORTS = {
    "metrics by month": ["metrics", "--grain", "month"],
    "metrics by week and channel": ["metrics", "--grain", "week", "--by", "channel"],
    "why GMV moved": ["metrics", "explain", "--from", "2024-04-01", "--to", "2024-05-01",
                      "--grain", "month", "--by", "category"],
    "market comparison": ["market", "compare"],
    "goal status": ["goal", "status", "--as-of", "2024-05-31"],
    "experiment analysis": ["experiment", "analyze", "checkout_red_packet"],
    "A/A on the warehouse": ["experiment", "aa", "--metric", "gmv", "--splits", "50",
                             "--from", "2024-05-01", "--to", "2024-05-28"],
    "buyer credit": ["credit", "expert", "--as-of", "2024-06-01", "--limit", "0"],
    "merchant quality": ["merchants", "quality", "--as-of", "2024-06-01", "--limit", "0"],
    "defect signal": ["products", "defects", "--as-of", "2024-06-01", "--all", "--limit", "0"],
    "policy replay": ["policy", "replay", "pinduoduo-2021", "--against", "taobao-2024-08",
                      "--from", "2024-05-01", "--to", "2024-05-31"],
}  # fmt: skip


def _run(base: list[str], args: list[str]) -> str:
    out = runner.invoke(app, [*base, *args], env={"COLUMNS": "200"})
    assert out.exit_code == 0, (args, out.output)
    return out.output


def _prepare(base: list[str], folder) -> None:
    (folder / "exp.yaml").write_text(EXPERIMENT, encoding="utf-8")
    (folder / "market.csv").write_text(MARKET, encoding="utf-8")
    _run(base, ["experiment", "create", str(folder / "exp.yaml")])
    _run(base, ["market", "import", str(folder / "market.csv")])
    _run(base, ["goal", "set", "gmv-next", "--metric", "gmv", "--target", "500000",
                "--by", NEXT_YEAR, "--reason", "plan"])  # fmt: skip


@pytest.fixture(scope="module")
def homes(marketplace, pg_cluster, tmp_path_factory):
    import ibis

    root = tmp_path_factory.mktemp("reports")
    ingested = root / "ingested"
    ingested_base = ["--home", str(ingested)]
    for name in EVENT_TABLES:
        _run(ingested_base, ["ingest", name, str(marketplace["sim"] / f"{name}.parquet")])
    _prepare(ingested_base, root)

    url = pg_cluster.create_database("company_reports")
    pg = ibis.connect("postgres://" + url.split("://", 1)[1])
    pg.raw_sql("CREATE SCHEMA shop")
    for name, table in marketplace["foreign"].items():
        pg.create_table(name, table, database="shop")
    pg.raw_sql("ANALYZE")
    pg.disconnect()
    sources = root / "sources.yaml"
    sources.write_text(
        sources_yaml({n: {"table": f"shop.{MAPPINGS[n][0]}"} for n in MAPPINGS}), encoding="utf-8"
    )
    in_place = root / "in-place"
    in_place_base = ["--home", str(in_place), "--warehouse", url, "--sources", str(sources)]
    _prepare(in_place_base, root)
    return ingested_base, in_place_base, in_place


@pytest.mark.parametrize("report", list(REPORTS))
def test_report_reads_in_place_and_matches_the_ingested_home(homes, report):
    ingested, in_place, _ = homes
    args = [*REPORTS[report], "--format", "json"]
    expected = json.loads(_run(ingested, args))
    got = json.loads(_run(in_place, args))
    assert expected, "the report has something to compare"
    assert same(expected, got) == []


def test_the_in_place_home_holds_no_copy_of_the_events(homes):
    *_, in_place = homes
    assert not (in_place / "warehouse.duckdb").exists()
    assert not (in_place / "spark").exists()
