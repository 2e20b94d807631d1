"""One marketplace, read in place on every engine: the same answers as ingesting it.

The reference is the usual path — the simulator's files loaded with ``tianping ingest`` into
tianping's own DuckDB. The same rows, reshaped as a company's own tables (other names, fen,
local times; see ``byow.py``), are then mapped with a sources file and read where they lie:
Parquet and CSV files on DuckDB, tables and a query on PostgreSQL, Parquet on Spark in local
mode and on a standalone cluster. Monthly metrics, an experiment analysis with CUPED, a race
step's aggregates and buyers' credit features must agree: money exactly, floats to 1e-9.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "simulate"))

from byow import MAPPINGS, answers, foreign_tables, same, sources_yaml, write_parquet  # noqa: E402
from sim_helpers import simulate_to  # noqa: E402

from tianping.settings import Settings  # noqa: E402
from tianping.simulate.service import load_scenario  # noqa: E402
from tianping.warehouse import connect  # noqa: E402
from tianping.warehouse.check import check_sources  # noqa: E402
from tianping.warehouse.ingest import ingest_file  # noqa: E402

EVENT_TABLES = ("orders", "refunds", "reviews", "nps", "activity", "exposures")


@pytest.fixture(scope="module")
def marketplace(tmp_path_factory):
    """The simulator's files, the reference answers from ingesting them, and the foreign
    shapes of the same rows as Parquet (orders Hive-partitioned by month) and one CSV."""
    root = tmp_path_factory.mktemp("byow")
    tables = simulate_to(
        root / "sim", buyers=3000, days=60, seed=3, scenario=load_scenario("default")
    )
    ref = connect(Settings(home=root, warehouse=f"duckdb://{root / 'ingested.duckdb'}"))
    for name in EVENT_TABLES:
        ingest_file(ref, name, root / "sim" / f"{name}.parquet")
    expected = answers(ref)
    ref.close()
    foreign = foreign_tables({n: tables[n] for n in EVENT_TABLES})
    paths = write_parquet(foreign, root / "lake")
    csv = root / "lake" / "reviews.csv"
    pacsv.write_csv(foreign["reviews"], csv)
    return {"root": root, "expected": expected, "foreign": foreign, "paths": paths, "csv": csv}


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
