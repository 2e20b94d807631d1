"""Fixtures of the warehouse tests: one simulated marketplace shared by the sources suites."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "simulate"))

from byow import EVENT_TABLES, answers, foreign_tables, write_parquet  # noqa: E402
from sim_helpers import simulate_to  # noqa: E402

from tianping.settings import Settings  # noqa: E402
from tianping.simulate.service import load_scenario  # noqa: E402
from tianping.warehouse import connect  # noqa: E402
from tianping.warehouse.ingest import ingest_file  # noqa: E402


@pytest.fixture(scope="session")
def marketplace(tmp_path_factory):
    """The simulator's files, the reference answers from ingesting them, and the foreign
    shapes of the same rows as Parquet (orders Hive-partitioned by month) and one CSV."""
    root = tmp_path_factory.mktemp("byow")
    tables = simulate_to(  # the simulator's own files: the ingest path's input
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
    return {
        "root": root,
        "sim": root / "sim",
        "expected": expected,
        "foreign": foreign,
        "paths": paths,
        "csv": csv,
    }
