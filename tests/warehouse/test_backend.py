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
