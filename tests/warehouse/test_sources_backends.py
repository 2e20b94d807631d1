"""One marketplace, read in place on every engine: the same answers as ingesting it.

The reference is the usual path — the simulator's files loaded with ``tianping ingest`` into
tianping's own DuckDB. The same rows, reshaped as a company's own tables (other names, fen,
local times; see ``byow.py``), are then mapped with a sources file and read where they lie:
Parquet and CSV files on DuckDB, tables and a query on PostgreSQL, Parquet on Spark in local
mode, on a standalone cluster and through a Spark Connect server. Monthly metrics, an experiment analysis with CUPED, a race
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


def _check(wh) -> dict:
    result = check_sources(wh, sample=2000)
    return {"ok": result.ok, "problems": [str(p) for p in result.problems],
            "tables": sorted(t.name for t in result.tables)}  # fmt: skip


def _in_process(settings: Settings) -> tuple[dict, dict]:
    wh = connect(settings)
    try:
        assert wh.mapped.keys() == set(EVENT_TABLES)
        return answers(wh), _check(wh)
    finally:
        wh.close()


def _duckdb_files(m, tmp_path, request):
    """Parquet (orders Hive-partitioned by month) and one CSV, read by DuckDB in memory."""
    sources = _write_sources(tmp_path, _files_origin(m, csv_reviews=True))
    out = _in_process(Settings(home=tmp_path / "home", sources=str(sources)))
    assert not (tmp_path / "home").exists(), "reading in place must not create a home"
    return out


def _postgres(m, tmp_path, request):
    """Tables in a schema and one query, on a throw-away PostgreSQL cluster."""
    import ibis

    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database(f"shop_{tmp_path.name[-12:].lower().replace('-', '_')}")
    pg = ibis.connect("postgres://" + url.split("://", 1)[1])
    pg.raw_sql("CREATE SCHEMA sales")
    for name, table in m["foreign"].items():
        pg.create_table(name, table, database="sales")
    pg.raw_sql("ANALYZE")  # as autovacuum would: a planner without statistics picks nested loops
    pg.disconnect()
    origin = {n: {"table": f"sales.{MAPPINGS[n][0]}"} for n in MAPPINGS}
    origin["nps"] = {"sql": "SELECT response_id, buyer_id, score, created_at FROM sales.nps"}
    sources = _write_sources(tmp_path, origin)
    return _in_process(Settings(home=tmp_path / "home", warehouse=url, sources=str(sources)))


def _spark_local(m, tmp_path, request):
    """The same files on Spark in local mode (the suite's one in-process session)."""
    request.getfixturevalue("spark_session")
    sources = _write_sources(tmp_path, _files_origin(m, csv_reviews=True))
    return _in_process(Settings(home=tmp_path / "home", warehouse="local[2]", sources=str(sources)))


def _spark_cluster(m, tmp_path, request):
    """The same files on a standalone master and worker, driven from a child process (one
    Spark context per process); the CLI's own --warehouse spark://… path."""
    cluster = request.getfixturevalue("spark_cluster")
    out = _run_child(m, tmp_path, cluster.url, CLUSTER_CHILD)
    assert out["master"] == cluster.url
    assert sum(out["executor_tasks"].values()) > 0, "the work ran on the cluster's executor"
    return _child_answers(out)


def _run_child(m, tmp_path, url: str, script: str) -> dict:
    """The marketplace's files mapped by a sources file, read by ``script`` in a child."""
    sources = _write_sources(tmp_path, _files_origin(m, csv_reviews=True))
    return run_on_cluster(
        url, script, args=[str(sources), str(tmp_path / "home"), str(Path(__file__).parent)],
        timeout=600,
    )  # fmt: skip


def _child_answers(out: dict) -> tuple[dict, dict]:
    """A child's answers and its CLI ``sources check`` (JSON, problems listed per table)."""
    assert out["check_exit"] in (0, 1), out["check"]
    checked = json.loads(out["check"])
    return out["answers"], {
        "ok": checked["ok"] and out["check_exit"] == 0,
        "problems": [p for t in checked["tables"] for p in t["problems"]],
        "tables": sorted(t["table"] for t in checked["tables"]),
    }


def _spark_connect(m, tmp_path, request):
    """The same files through a Spark Connect server (``--warehouse sc://…``): the driver is
    the server's, this client process starts no JVM. Driven from a child process, as a CLI
    command would be."""
    server = request.getfixturevalue("spark_connect")
    out = _run_child(m, tmp_path, server.url, CONNECT_CHILD)
    assert out["remote"] and not out["jvm"], "a Connect client starts no Spark driver of its own"
    return _child_answers(out)


CONNECT_CHILD = """
import json
import sys

from typer.testing import CliRunner

url, sources, home, helpers = sys.argv[1:5]
sys.path.insert(0, helpers)
from byow import answers
from pyspark import SparkContext
from tianping.cli.main import app
from tianping.settings import load_settings
from tianping.warehouse import connect

wh = connect(load_settings({"warehouse": url, "sources": sources, "home": home}))
got = answers(wh)
checked = CliRunner().invoke(
    app, ["--warehouse", url, "--sources", sources, "--home", home, "sources", "check",
          "--sample", "2000", "--format", "json"]
)
print(json.dumps({
    "remote": type(wh.con._session).__module__.startswith("pyspark.sql.connect"),
    "jvm": SparkContext._active_spark_context is not None,
    "answers": got,
    "check_exit": checked.exit_code,
    "check": checked.output,
}))
"""


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


ENGINES = [
    pytest.param(_duckdb_files, id="duckdb-files"),
    pytest.param(_postgres, id="postgres", marks=pytest.mark.postgres),
    pytest.param(_spark_local, id="spark-local", marks=[pytest.mark.spark, pytest.mark.slow]),
    pytest.param(
        _spark_cluster,
        id="spark-cluster",
        marks=[pytest.mark.spark, pytest.mark.spark_cluster, pytest.mark.slow],
    ),
    pytest.param(
        _spark_connect,
        id="spark-connect",
        marks=[pytest.mark.spark, pytest.mark.spark_cluster, pytest.mark.slow],
    ),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_reads_in_place_what_ingest_loads(marketplace, engine, tmp_path, request):
    got, checked = engine(marketplace, tmp_path, request)
    assert same(marketplace["expected"], got) == []
    assert checked["ok"], checked["problems"]
    assert checked["tables"] == sorted(EVENT_TABLES)
