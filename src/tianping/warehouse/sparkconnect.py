"""A long-running Spark Connect server for tianping: one driver for every command.

A classic Spark warehouse (``local[N]``, ``spark://…``) starts a driver JVM inside each
``tianping`` command, ~15 s before the first query. A Spark Connect server keeps one driver
running; a command then opens a thin gRPC session to it (``--warehouse sc://host:port``) and
pays a connection, not a JVM start.

pyspark's wheel carries the server (its jars) but not Spark's ``start-connect-server.sh``;
:func:`server_command` is the same launch through ``spark-submit``, with tianping's session
settings as the server's defaults. Production clusters run their own Connect server (Spark 4,
Databricks, EMR…); tianping needs only its URL and the data folder at the same path.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path

from tianping.errors import UsageError

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
DEFAULT_PORT = 15002


def spark_home() -> Path:
    """The installed pyspark package folder, which is a complete ``SPARK_HOME``."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise UsageError(
            "a Spark Connect server needs PySpark: pip install 'tianping[spark]'",
            field="warehouse",
        )
    return Path(spec.origin).parent


def server_command(
    master: str = "local[*]",
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    conf: Mapping[str, str] | None = None,
) -> list[str]:
    """The ``spark-submit`` command line of a Connect server on ``host:port`` whose driver
    runs ``master``'s executors, with tianping's session settings as its defaults.

    Args:
        master: where the work runs: ``local[N]`` or a cluster's master URL.
        host: the address the server listens on (``0.0.0.0`` for every interface).
        port: its gRPC port.
        conf: more Spark settings for the server (memory, executors, …).
    """
    from tianping.warehouse.backend import SESSION_SQL_CONF

    settings = {
        "spark.connect.grpc.binding.address": host,
        "spark.connect.grpc.binding.port": str(port),
        "spark.ui.enabled": "false",
        **SESSION_SQL_CONF,
        **(conf or {}),
    }
    cmd = [str(spark_home() / "bin" / "spark-submit"), "--class", SERVER_CLASS]
    cmd += ["--master", master, "--name", "tianping-connect"]
    for key, value in settings.items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, "spark-internal"]


__all__ = ["DEFAULT_PORT", "SERVER_CLASS", "server_command", "spark_home"]
