"""The Spark session of the warehouse: one per process, never silently on another master."""

from __future__ import annotations

import time

import pytest

from tianping.errors import UsageError

pytestmark = pytest.mark.spark


def test_asking_for_another_master_while_a_session_is_open_is_refused(spark_session):
    from tianping.warehouse.backend import spark_session as open_session

    started = time.perf_counter()
    with pytest.raises(UsageError) as caught:
        open_session("spark://127.0.0.1:1")
    assert time.perf_counter() - started < 5  # refused up front, no attempt to reach the master
    err = caught.value
    assert err.field == "warehouse"
    assert "spark://127.0.0.1:1" in err.message
    assert "local[2]" in err.message and "one per process" in err.message
    assert spark_session.sparkContext.master == "local[2]"  # the open session is untouched


def test_a_master_given_in_spark_conf_is_checked_too(spark_session):
    from tianping.warehouse.backend import spark_session as open_session

    with pytest.raises(UsageError, match="local\\[2\\]"):
        open_session("local[2]", {"spark.master": "local[1]"})


def test_the_same_master_gives_back_the_open_session(spark_session):
    from tianping.warehouse.backend import spark_session as open_session

    assert open_session("local[2]").sparkContext is spark_session.sparkContext


def test_a_long_lived_session_keeps_its_views_until_the_files_change(spark_session, tmp_path):
    """connect() in a process that already registered a home's tables keeps the views (the
    server does not re-read every footer per page) but sees files another process added,
    a view dropped behind its back, and a drop and replace of its own."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tianping.events.schema import TABLES
    from tianping.settings import Settings
    from tianping.warehouse import connect
    from tianping.warehouse.backend import arrow_schema

    settings = Settings(home=tmp_path, warehouse="local[2]")
    schema = arrow_schema(TABLES["nps"])

    def rows(*ids: str) -> pa.Table:
        n = len(ids)
        return pa.table({"response_id": list(ids), "buyer_id": ["b"] * n, "score": [9] * n,
                         "created_at": [None] * n}, schema=schema)  # fmt: skip

    wh = connect(settings)
    wh.append("nps", rows("n1"))
    assert connect(settings).row_count("nps") == 1
    pq.write_table(rows("n2", "n3"), tmp_path / "spark" / "nps" / "part-other.parquet")
    assert connect(settings).row_count("nps") == 3  # another process's file is seen
    spark_session.catalog.dropTempView("nps")
    assert connect(settings).row_count("nps") == 3  # a view dropped behind its back comes back
    wh.replace("nps", rows("n9"))
    again = connect(settings)
    assert again.row_count("nps") == 1
    assert again.to_arrow(again.table("nps"))["response_id"].to_pylist() == ["n9"]
