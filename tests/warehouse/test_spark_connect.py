"""tianping's own warehouse through a Spark Connect server (``--warehouse sc://host:port``).

The server (``tianping spark connect-server``'s launch, local mode) holds the one Spark
driver; each command below is a separate ``tianping`` process that opens a thin session to
it. The simulator writes its tables (Parquet under the home, read by the server), and the
commands answer exactly as the same simulation on DuckDB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.spark_cluster, pytest.mark.slow]

TIANPING = str(Path(sys.executable).parent / "tianping")
SIMULATE = ["simulate", "--buyers", "1500", "--days", "40", "--seed", "3"]


def _run(home: Path, warehouse: str, *args: str) -> tuple[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [TIANPING, "--home", str(home), "--warehouse", warehouse, *args],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, time.perf_counter() - started


def test_commands_through_a_connect_server_answer_as_on_duckdb(spark_connect, tmp_path):
    remote, local = tmp_path / "remote", tmp_path / "local"
    _run(remote, spark_connect.url, *SIMULATE)
    _run(local, "duckdb", *SIMULATE)
    assert any((remote / "spark" / "orders").glob("*.parquet")), "the tables live in the home"
    for question in (
        ["metrics", "--grain", "month", "--format", "json"],
        ["metrics", "--grain", "week", "--by", "category", "--format", "json"],
    ):
        got, _ = _run(remote, spark_connect.url, *question)
        want, _ = _run(local, "duckdb", *question)
        assert json.loads(got) == json.loads(want), question


def test_the_spark_connect_server_command_line(tmp_path):
    from typer.testing import CliRunner

    from tianping.cli.main import app

    shown = CliRunner().invoke(
        app, ["spark", "connect-server", "--master", "local[2]", "--port", "15123",
              "--conf", "spark.driver.memory=2g", "--dry-run"]
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    line = shown.output.strip()
    assert "org.apache.spark.sql.connect.service.SparkConnectServer" in line
    assert "--master 'local[2]'" in line and "spark.connect.grpc.binding.port=15123" in line
    assert "spark.sql.session.timeZone=UTC" in line and "spark.driver.memory=2g" in line
    bad = CliRunner().invoke(app, ["spark", "connect-server", "--conf", "novalue", "--dry-run"])
    assert bad.exit_code == 2 and "expected KEY=VALUE" in bad.output
