"""One marketplace, read in place on every engine: the same answers as ingesting it.

The reference is the usual path — the simulator's files loaded with ``tianping ingest`` into
tianping's own DuckDB. The same rows, reshaped as a company's own tables (other names, fen,
local times; see ``byow.py``), are then mapped with a sources file and read where they lie:
Parquet and CSV files on DuckDB, tables and a query on PostgreSQL, Parquet on Spark in local
mode and on a standalone cluster. Monthly metrics, an experiment analysis with CUPED, a race
step's aggregates and buyers' credit features must agree: money exactly, floats to 1e-9.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "simulate"))

from byow import EVENT_TABLES, MAPPINGS, answers, same, sources_yaml  # noqa: E402

from sparkcluster import run_on_cluster  # noqa: E402
from tianping.settings import Settings  # noqa: E402
from tianping.warehouse import connect  # noqa: E402
from tianping.warehouse.check import check_sources  # noqa: E402


def _write_sources(folder: Path, origin: dict) -> Path:
    path = folder / "sources.yaml"
    path.write_text(sources_yaml(origin), encoding="utf-8")
    return path


def _files_origin(m, *, csv_reviews: bool) -> dict:
    origin = {n: {"path": str(m["paths"][MAPPINGS[n][0]])} for n in MAPPINGS}
    origin["orders"]["hive_partitioning"] = True
    if csv_reviews:
        origin["reviews"] = {"path": str(m["csv"])}
    return origin


def _check_clean(wh) -> None:
    result = check_sources(wh, sample=2000)
    assert result.ok, [str(p) for p in result.problems]
    assert {t.name for t in result.tables} == set(EVENT_TABLES)


def test_duckdb_reads_parquet_and_csv_in_place(marketplace, tmp_path):
    sources = _write_sources(tmp_path, _files_origin(marketplace, csv_reviews=True))
    wh = connect(Settings(home=tmp_path / "home", sources=str(sources)))
    try:
        assert wh.mapped.keys() == set(EVENT_TABLES)
        assert same(marketplace["expected"], answers(wh)) == []
        _check_clean(wh)
    finally:
        wh.close()
    assert not (tmp_path / "home").exists(), "reading in place must not create a home"


@pytest.mark.postgres
def test_postgres_tables_and_a_query_in_place(marketplace, pg_cluster, tmp_path):
    import ibis

    url = pg_cluster.create_database(f"shop_{tmp_path.name[-12:].lower().replace('-', '_')}")
    pg = ibis.connect("postgres://" + url.split("://", 1)[1])
    pg.raw_sql("CREATE SCHEMA sales")
    for name, table in marketplace["foreign"].items():
        pg.create_table(name, table, database="sales")
    pg.raw_sql("ANALYZE")  # as autovacuum would: a planner without statistics picks nested loops
    pg.disconnect()
    origin = {n: {"table": f"sales.{MAPPINGS[n][0]}"} for n in MAPPINGS}
    origin["nps"] = {"sql": "SELECT response_id, buyer_id, score, created_at FROM sales.nps"}
    sources = _write_sources(tmp_path, origin)
    wh = connect(Settings(home=tmp_path / "home", warehouse=url, sources=str(sources)))
    try:
        assert wh.kind == "ibis"
        assert same(marketplace["expected"], answers(wh)) == []
        _check_clean(wh)
    finally:
        wh.close()


@pytest.mark.spark
@pytest.mark.slow
def test_spark_local_reads_parquet_in_place(marketplace, spark_session, tmp_path):
    sources = _write_sources(tmp_path, _files_origin(marketplace, csv_reviews=False))
    wh = connect(Settings(home=tmp_path / "home", warehouse="local[2]", sources=str(sources)))
    assert wh.kind == "spark"
    assert same(marketplace["expected"], answers(wh)) == []
    _check_clean(wh)


CLUSTER_CHILD = """
import json
import sys

from typer.testing import CliRunner

url, sources, home, helpers = sys.argv[1:5]
sys.path.insert(0, helpers)
from byow import answers
from sparkcluster import executor_tasks
from tianping.cli.main import app
from tianping.settings import load_settings
from tianping.warehouse import connect

settings = load_settings({"warehouse": url, "sources": sources, "home": home})
wh = connect(settings)
session = wh.con._session
session.sparkContext.setLogLevel("ERROR")
got = answers(wh)
checked = CliRunner().invoke(
    app, ["--warehouse", url, "--sources", sources, "--home", home, "sources", "check",
          "--sample", "2000", "--format", "json"]
)
print(json.dumps({
    "master": session.sparkContext.master,
    "executor_tasks": executor_tasks(session),
    "answers": got,
    "check_exit": checked.exit_code,
    "check": checked.output,
}))
session.stop()
"""


@pytest.mark.spark
@pytest.mark.spark_cluster
@pytest.mark.slow
def test_spark_standalone_cluster_reads_parquet_in_place(marketplace, spark_cluster, tmp_path):
    sources = _write_sources(tmp_path, _files_origin(marketplace, csv_reviews=False))
    out = run_on_cluster(
        spark_cluster.url,
        CLUSTER_CHILD,
        args=[str(sources), str(tmp_path / "home"), str(Path(__file__).parent)],
        timeout=600,
    )
    assert out["master"] == spark_cluster.url
    assert sum(out["executor_tasks"].values()) > 0, "the work ran on the cluster's executor"
    assert same(marketplace["expected"], out["answers"]) == []
    assert out["check_exit"] == 0, out["check"]
    checked = json.loads(out["check"])
    assert checked["ok"] and {t["table"] for t in checked["tables"]} == set(EVENT_TABLES)
