"""The warehouse on a real Spark standalone cluster (a master and a worker started from pyspark).

The suite's own process holds the local Spark session, so the cluster is driven from a child
process (``run_on_cluster``), which opens ``spark_session(cluster.url)`` as tianping does.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkcluster import run_on_cluster

pytestmark = [pytest.mark.spark, pytest.mark.spark_cluster, pytest.mark.slow]

CHILD = """
import json
import sys

import ibis

from sparkcluster import executor_tasks
from tianping.warehouse.backend import spark_session

url, path = sys.argv[1:3]
session = spark_session(url)
session.sparkContext.setLogLevel("ERROR")
con = ibis.pyspark.connect(session)
orders = con.read_parquet(path)
by_category = orders.group_by("category").aggregate(
    orders=orders.count(), amount=orders.amount.sum()
)
rows = con.to_pyarrow(by_category).to_pylist()
print(json.dumps({
    "master": session.sparkContext.master,
    "app_id": session.sparkContext.applicationId,
    "executor_tasks": executor_tasks(session),
    "rows": {r["category"]: [r["orders"], str(r["amount"])] for r in rows},
}))
session.stop()
"""


def test_ibis_reads_and_aggregates_parquet_on_the_cluster(spark_cluster, tmp_path, rng):
    n = 2_000
    categories = [str(c) for c in rng.choice(["food", "toys", "books"], size=n)]
    amounts_fen = rng.integers(1, 500_000, size=n)
    amounts = [Decimal(int(f)).scaleb(-2) for f in amounts_fen]
    path = tmp_path / "orders.parquet"
    pq.write_table(
        pa.table(
            {
                "category": pa.array(categories),
                "amount": pa.array(amounts, type=pa.decimal128(18, 2)),
            }
        ),
        path,
        row_group_size=500,
    )
    want_count = Counter(categories)
    want_sum: dict[str, Decimal] = defaultdict(Decimal)
    for category, amount in zip(categories, amounts, strict=True):
        want_sum[category] += amount

    result = run_on_cluster(spark_cluster.url, CHILD, args=[str(path)])

    assert result["rows"] == {c: [want_count[c], f"{want_sum[c]:.2f}"] for c in want_count}
    assert result["master"] == spark_cluster.url
    # The tasks ran on the worker's executor, not in the driver, for an application of this master.
    assert sum(result["executor_tasks"].values()) > 0
    seen = {app["id"]: app["name"] for app in spark_cluster.applications()}
    assert seen.get(result["app_id"]) == "tianping"
