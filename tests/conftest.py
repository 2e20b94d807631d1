"""Fixtures every test suite shares.

- ``settings``: settings rooted in a temp folder (DuckDB file + SQLite file there).
- ``warehouse``: parametrised over ``duckdb`` and ``spark`` (local mode, one session for the
  whole run, views reset per test). Spark tests carry the ``spark`` marker.
- ``spark_cluster``: a Spark standalone master and worker (``tests/sparkcluster.py``), one for
  the whole run; reached from child processes with ``run_on_cluster``, since this process
  holds the local session. Tests using it carry the ``spark_cluster`` marker.
- ``spark_connect``: a Spark Connect server in local mode, one for the whole run (``sc://…``);
  its tests carry the ``spark_cluster`` marker too.
- ``store_url``: parametrised over ``sqlite`` and ``postgres``; each test gets a new, empty
  database. PostgreSQL runs as a throw-away cluster and is skipped, with a message, where
  Debian's ``postgresql`` is not installed.
- ``session``: a store session on ``store_url`` with the schema created; rolled back after.
- ``rng``: the one seeded generator test data comes from.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pgcluster import Cluster, find_bin  # noqa: E402
from sparkcluster import SparkCluster, SparkConnectServer, unavailable  # noqa: E402
from tianping.settings import Settings  # noqa: E402

_db_counter = itertools.count()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20241111)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / ".tianping")


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory):
    pytest.importorskip("pyspark", reason="Spark tests need the [spark] extra")
    from tianping.warehouse.backend import spark_session as make

    session = make("local[2]")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _spark_warehouse(spark_session, home: Path):
    import ibis

    from tianping.money import exponent_of
    from tianping.warehouse.backend import Warehouse

    for t in spark_session.catalog.listTables():
        if t.isTemporary:
            spark_session.catalog.dropTempView(t.name)
    root = home / "spark"
    root.mkdir(parents=True, exist_ok=True)
    return Warehouse(
        ibis.pyspark.connect(spark_session), "spark", spark_root=root, scale=exponent_of("CNY")
    )


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def warehouse(request, tmp_path: Path):
    """An empty warehouse on each engine."""
    if request.param == "duckdb":
        from tianping.warehouse import connect

        wh = connect(Settings(home=tmp_path, warehouse=f"duckdb://{tmp_path / 'w.duckdb'}"))
    else:
        wh = _spark_warehouse(request.getfixturevalue("spark_session"), tmp_path)
    yield wh
    wh.close()


@pytest.fixture
def duckdb_warehouse(tmp_path: Path):
    from tianping.warehouse import connect

    wh = connect(Settings(home=tmp_path, warehouse=f"duckdb://{tmp_path / 'w.duckdb'}"))
    yield wh
    wh.close()


@pytest.fixture(scope="session")
def pg_cluster():
    if find_bin() is None:
        pytest.skip(
            "PostgreSQL tests skipped: Debian's postgresql package is not installed "
            "(apt-get install postgresql)"
        )
    cluster = Cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def spark_cluster():
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    cluster = SparkCluster(cores=2, memory="2g")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def spark_connect():
    """A Spark Connect server (local mode) for the whole run: ``.url`` is ``sc://…``."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    server = SparkConnectServer("local[2]")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path: Path) -> str:
    """A new, empty store database on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return request.getfixturevalue("pg_cluster").create_database(f"t{next(_db_counter)}")


@pytest.fixture
def engine(store_url: str):
    from tianping.store import init_schema, make_engine

    eng = make_engine(store_url)
    init_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine):
    from tianping.store import make_sessionmaker

    s = make_sessionmaker(engine)()
    yield s
    s.rollback()
    s.close()
