"""Sources files: mapping errors name ``table.column``; values are converted exactly; nothing
runs half-way; tianping never writes to a mapped table. On DuckDB files and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tianping.cli.main import app
from tianping.errors import InvalidInput, UsageError
from tianping.settings import Settings, load_settings
from tianping.warehouse import connect
from tianping.warehouse.check import check_sources
from tianping.warehouse.mapped import SourcesInvalid
from tianping.warehouse.sources import parse_sources, read_sources

runner = CliRunner()


def _orders(**overrides) -> pa.Table:
    cols = {
        "id": pa.array([101, 102, 103], pa.int64()),
        "user_id": ["b1", "b2", "b1"],
        "shop": ["m1", "m1", "m2"],
        "category": ["food", "food", "toys"],
        "pay_fen": pa.array([1234, 500, 99_999_999_999_999], pa.int64()),
        "paid_at": pa.array(
            [
                dt.datetime(2024, 6, 1, 7, 30),
                dt.datetime(2024, 3, 10, 3, 30),
                dt.datetime(2024, 1, 10, 12),
            ],
            pa.timestamp("us"),
        ),
        "mode": ["door", "station", None],
    }
    cols.update(overrides)
    return pa.table(cols)


ORDERS_MAP = {
    "timezone": "Asia/Shanghai",
    "columns": {
        "order_id": "id",
        "buyer_id": "user_id",
        "merchant_id": "shop",
        "amount": {"column": "pay_fen", "money": "minor"},
        "created_at": "paid_at",
        "delivery_mode": "mode",
    },
}


@pytest.fixture(
    params=[
        "duckdb",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("spark", marks=[pytest.mark.spark, pytest.mark.slow]),
    ]
)
def place(request, tmp_path):
    """Put named Arrow tables where a sources file can map them: Parquet files on DuckDB and
    on Spark (local mode), tables on PostgreSQL. Returns ``put(tables, mapping) -> Settings``."""
    if request.param in ("duckdb", "spark"):
        warehouse = "duckdb"
        if request.param == "spark":
            request.getfixturevalue("spark_session")
            warehouse = "local[2]"

        def put(tables: dict[str, pa.Table], mapping: dict[str, dict]) -> Settings:
            origin = {}
            for logical, (name, spec) in mapping.items():
                path = tmp_path / f"{name}.parquet"
                pq.write_table(tables[name], path)
                origin[logical] = {"path": str(path), **spec}
            return _settings(tmp_path, origin, warehouse=warehouse)

        return put
    import ibis

    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database(f"src_{abs(hash(str(tmp_path))) % 10**9}")

    def put(tables: dict[str, pa.Table], mapping: dict[str, dict]) -> Settings:
        con = ibis.connect("postgres://" + url.split("://", 1)[1])
        origin = {}
        for logical, (name, spec) in mapping.items():
            con.create_table(name, tables[name], overwrite=True)
            origin[logical] = {"table": name, **spec}
        con.disconnect()
        return _settings(tmp_path, origin, warehouse=url)

    return put


def _settings(folder: Path, tables: dict, warehouse: str = "duckdb", **top) -> Settings:
    path = folder / "sources.yaml"
    path.write_text(json.dumps({**top, "tables": tables}), encoding="utf-8")
    return Settings(home=folder / "home", warehouse=warehouse, sources=str(path))


def _rows(settings: Settings, table: str) -> list[dict]:
    """Every row of ``table`` as tianping reads it, in key order."""
    wh = connect(settings)
    try:
        rows = wh.to_arrow(wh.table(table)).to_pylist()
    finally:
        wh.close()
    key = {"orders": "order_id", "reviews": "review_id"}[table]
    return sorted(rows, key=lambda r: r[key])


def _mapped_orders(tmp_path: Path, orders: pa.Table) -> Path:
    """``orders`` as a Parquet file and a sources file mapping it with ORDERS_MAP."""
    pq.write_table(orders, tmp_path / "o.parquet")
    return Path(
        _settings(tmp_path, {"orders": {"path": str(tmp_path / "o.parquet"), **ORDERS_MAP}}).sources
    )


def _problems(settings: Settings) -> list[str]:
    with pytest.raises(SourcesInvalid) as caught:
        connect(settings)
    return [str(p) for p in caught.value.problems]


# -- values come across exactly ------------------------------------------------------------


def test_minor_units_zones_and_integer_ids_convert_exactly(place):
    settings = place({"shop_orders": _orders()}, {"orders": ("shop_orders", ORDERS_MAP)})
    rows = _rows(settings, "orders")
    assert [r["order_id"] for r in rows] == ["101", "102", "103"]
    assert [r["amount"] for r in rows] == [
        Decimal("12.34"),
        Decimal("5.00"),
        Decimal("999999999999.99"),
    ]
    # Asia/Shanghai is UTC+8 all year: local 07:30 on June 1st is 23:30 UTC the day before.
    assert [r["created_at"] for r in rows] == [
        dt.datetime(2024, 5, 31, 23, 30),
        dt.datetime(2024, 3, 9, 19, 30),
        dt.datetime(2024, 1, 10, 4, 0),
    ]
    assert [r["delivery_mode"] for r in rows] == ["door", "station", None]
    assert rows[0]["coupon_amount"] is None and rows[0]["channel"] is None


def test_a_zone_with_daylight_saving_converts_each_instant(place):
    mapping = {**ORDERS_MAP, "timezone": "America/New_York"}
    settings = place({"o": _orders()}, {"orders": ("o", mapping)})
    got = _rows(settings, "orders")
    # 2024-03-10 03:30 is just after the spring-forward gap (EDT, UTC-4); January is EST (UTC-5).
    assert [r["created_at"] for r in got] == [
        dt.datetime(2024, 6, 1, 11, 30),
        dt.datetime(2024, 3, 10, 7, 30),
        dt.datetime(2024, 1, 10, 17, 0),
    ]


def test_outside_2000_2100_the_zone_rules_still_decide(place):
    # Shanghai kept daylight saving from 1986 to 1991: 1988-07-01 12:00 local was UTC+9. Inside
    # 2000-2100 its offset never changes, and rows there take a cheaper path (a subtraction).
    old = pa.array(
        [dt.datetime(1988, 7, 1, 12), dt.datetime(1988, 1, 1, 12), dt.datetime(2100, 7, 1, 12)],
        pa.timestamp("us"),
    )
    settings = place({"o": _orders(paid_at=old)}, {"orders": ("o", ORDERS_MAP)})
    got = _rows(settings, "orders")
    assert [r["created_at"] for r in got] == [
        dt.datetime(1988, 7, 1, 3),
        dt.datetime(1988, 1, 1, 4),
        dt.datetime(2100, 7, 1, 4),
    ]


def test_time_zone_aware_sources_need_no_declared_zone(place):
    aware = pa.array(
        [dt.datetime(2024, 6, 1, 7, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))] * 3,
        pa.timestamp("us", tz="Asia/Shanghai"),
    )
    mapping = {
        "columns": {**ORDERS_MAP["columns"], "amount": {"column": "pay_fen", "money": "minor"}}
    }
    settings = place({"o": _orders(paid_at=aware)}, {"orders": ("o", mapping)})
    got = {r["created_at"] for r in _rows(settings, "orders")}
    assert got == {dt.datetime(2024, 5, 31, 23, 30)}


# -- mapping errors, all at once, one line each ---------------------------------------------


def test_every_mapping_problem_is_one_line_naming_table_and_column(place):
    orders = _orders(pay_fen=pa.array(["12.34", "5", "1"]))  # a string amount
    reviews = pa.table(
        {
            "review_id": ["r1"],
            "order_id": ["101"],
            "stars": ["five"],  # text where a whole number belongs
            "created_at": pa.array([dt.datetime(2024, 6, 1)], pa.timestamp("us")),  # naive
        }
    )
    no_zone = {k: v for k, v in ORDERS_MAP.items() if k != "timezone"}
    settings = place(
        {"o": orders, "r": reviews},
        {
            "orders": ("o", {**no_zone, "columns": {**no_zone["columns"], "buyer_id": "buyer"}}),
            "reviews": ("r", {"columns": {"rating": "stars"}}),
        },
    )
    problems = _problems(settings)
    assert any(p.startswith("orders.buyer_id: no column 'buyer'") for p in problems), problems
    assert any(p.startswith("orders.amount: pay_fen is text") for p in problems), problems
    assert any(p.startswith("orders.created_at: paid_at holds naive timestamps") for p in problems)
    assert any(p.startswith("reviews.rating: stars is string") for p in problems), problems
    assert any(p.startswith("reviews.created_at: holds naive timestamps") for p in problems)
    assert len(problems) == 5, problems


def test_a_cast_declared_in_the_sources_is_applied(place):
    reviews = pa.table(
        {
            "review_id": ["r1", "r2"],
            "order_id": ["101", "102"],
            "stars": ["5", "3"],
            "created_at": pa.array([dt.datetime(2024, 6, 1)] * 2, pa.timestamp("us")),
        }
    )
    mapping = {"timezone": "UTC", "columns": {"rating": {"column": "stars", "cast": "int64"}}}
    settings = place({"r": reviews}, {"reviews": ("r", mapping)})
    assert sorted(r["rating"] for r in _rows(settings, "reviews")) == [3, 5]


def test_another_currency_is_refused(place):
    settings = place({"o": _orders()}, {"orders": ("o", {**ORDERS_MAP, "currency": "USD"})})
    problems = _problems(settings)
    assert problems == [
        "orders.currency: amounts are in USD but tianping's currency is CNY; one marketplace "
        "has one currency (set `currency` in tianping.toml, or map the CNY rows with a sql query)"
    ]


def test_a_table_that_cannot_be_read_is_named(tmp_path):
    settings = _settings(
        tmp_path,
        {"orders": {"path": str(tmp_path / "nowhere.parquet")}, "nps": {"table": "x; DROP y"}},
    )
    assert _problems(settings) == [
        f"orders: cannot read path {tmp_path / 'nowhere.parquet'}: no such file or folder "
        f"{tmp_path / 'nowhere.parquet'}",
        "nps: cannot read table x; DROP y: no such table or view on the warehouse",
    ]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"tables": {"order": {"path": "x"}}}, "unknown table 'order' (did you mean 'orders'?)"),
        (
            {"tables": {"orders": {"path": "x", "columns": {"amout": "a"}}}},
            "orders has no column 'amout' (did you mean 'amount'?)",
        ),
        (
            {"tables": {"orders": {"path": "x", "table": "y"}}},
            "give exactly one of table, path or sql (found table, path)",
        ),
        ({"tables": {"orders": {}}}, "give exactly one of table, path or sql"),
        (
            {"tables": {"orders": {"path": "x", "columns": {"buyer_id": {"money": "minor"}}}}},
            "orders.buyer_id: money applies to money columns only",
        ),
        (
            {"tables": {"orders": {"path": "x", "columns": {"amount": {"cast": "money"}}}}},
            "cast must be one of",
        ),
        (
            {"tables": {"orders": {"sql": "select 1", "format": "csv"}}},
            "format and hive_partitioning apply to path only",
        ),
        ({"tables": {}}, "map at least one table"),
        ({"tabels": {}}, "unknown key 'tabels' (did you mean 'tables'?)"),
        ({"tables": {"orders": {"table": "a\x00b"}}}, "contains a control character (U+0000)"),
        ({"tables": {"orders": {"sql": "SELECT 1\x1b"}}}, "contains a control character (U+001B)"),
        (
            {"timezone": "Asia/Shangai", "tables": {"orders": {"path": "x"}}},
            "unknown time zone 'Asia/Shangai'",
        ),
    ],
)
def test_a_sources_file_that_does_not_parse_says_where(doc, message):
    with pytest.raises(InvalidInput) as caught:
        parse_sources(doc, source="sources.yaml")
    assert message in caught.value.message
    assert caught.value.message.startswith("sources.yaml")


def test_yaml_errors_name_the_line(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text("tables:\n  orders:\n    path: a.parquet\n    colums: {}\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        read_sources(path)
    assert caught.value.message.startswith(f"{path}:4: unknown key 'tables.orders.colums'")


# -- the check: whole-table counts, then ingest's rules on a sample --------------------------


def test_check_finds_what_ingest_would_refuse(place):
    orders = pa.table(
        {
            "order_id": ["o1", "o2", "o2", "o4", "o5"],
            "buyer_id": ["b1", None, "b2", "b3", "b4"],
            "merchant_id": ["m1"] * 5,
            "category": ["food"] * 5,
            "amount": pa.array(
                [
                    Decimal("1.234"),
                    Decimal("-2.000"),
                    Decimal("3.000"),
                    Decimal("4.000"),
                    Decimal("5.000"),
                ],
                pa.decimal128(18, 3),
            ),
            "created_at": pa.array([dt.datetime(2024, 6, 1)] * 5, pa.timestamp("us")),
            "delivery_mode": ["door", "drone", None, None, None],
            "cur": ["CNY", "CNY", "CNY", "USD", "CNY"],
        }
    )
    reviews = pa.table(
        {
            "review_id": ["r1", "r2"],
            "order_id": ["o1", "o2"],
            "rating": pa.array([5, 9], pa.int64()),
            "created_at": pa.array([dt.datetime(2024, 6, 2)] * 2, pa.timestamp("us")),
        }
    )
    settings = place(
        {"o": orders, "r": reviews},
        {
            "orders": ("o", {"timezone": "UTC", "currency": {"column": "cur"}}),
            "reviews": ("r", {"timezone": "UTC"}),
        },
    )
    wh = connect(settings)  # the columns and types fit: only the values are wrong
    try:
        result = check_sources(wh, currency="CNY")
    finally:
        wh.close()
    problems = [str(p) for p in result.problems]
    expected_starts = [
        "orders.buyer_id: 1 of 5 rows have no value (required)",
        "orders.amount: 1 rows are negative (amounts must be >= 0)",
        "orders.currency: 1 rows are not in CNY: USD (1)",
        "orders.order_id: 1 keys appear more than once (1 extra rows; e.g. order_id=o2, 2 times)",
        "orders.amount: more than 2 decimal places in 1 of 5 sampled rows (e.g. order_id o1: '1.234')",
        "orders.delivery_mode: must be one of door, station in 1 of 5 sampled rows (e.g. order_id o2: 'drone')",
        "reviews.rating: must be <= 5 in 1 of 2 sampled rows (e.g. review_id r2: '9')",
    ]
    for start in expected_starts:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert len(problems) == len(expected_starts), problems
    assert not result.ok and [t.rows for t in result.tables] == [5, 2]


# -- tianping never writes to a mapped table --------------------------------------------------


def test_writes_to_a_mapped_table_are_refused_and_others_still_work(tmp_path):
    pq.write_table(_orders(), tmp_path / "o.parquet")
    settings = _settings(
        tmp_path,
        {"orders": {"path": str(tmp_path / "o.parquet"), **ORDERS_MAP}},
        warehouse=f"duckdb://{tmp_path / 'own.duckdb'}",
    )
    wh = connect(settings)
    try:
        with pytest.raises(UsageError, match="orders is read in place from path"):
            wh.append("orders", pa.table({}))
        with pytest.raises(UsageError, match="never writes to your tables"):
            wh.drop("orders")
        nps = pa.table(
            {
                "response_id": ["n1"],
                "buyer_id": ["b1"],
                "score": pa.array([9], pa.int64()),
                "created_at": pa.array([dt.datetime(2024, 6, 1)], pa.timestamp("us")),
            }
        )
        wh.append("nps", nps)  # not mapped: tianping's own table, as without sources
        assert wh.row_count("nps") == 1 and wh.row_count("orders") == 3
    finally:
        wh.close()


# -- settings and the command line ------------------------------------------------------------


def test_sources_come_from_flag_env_or_file(tmp_path):
    (tmp_path / "tianping.toml").write_text('sources = "from-file.yaml"\n', encoding="utf-8")
    assert load_settings({}, environ={}, cwd=tmp_path).sources == "from-file.yaml"
    env = {"TIANPING_SOURCES": "from-env.yaml"}
    assert load_settings({}, environ=env, cwd=tmp_path).sources == "from-env.yaml"
    flag = load_settings({"sources": "flag.yaml"}, environ=env, cwd=tmp_path)
    assert flag.sources == "flag.yaml"


def test_an_engine_url_without_sources_says_what_it_needs(tmp_path):
    settings = Settings(home=tmp_path, warehouse="postgresql://ana:s3cret@db.internal/shop")
    assert settings.warehouse_kind == "ibis"
    with pytest.raises(UsageError) as caught:
        settings.check_warehouse(write=False)
    assert "--sources FILE" in caught.value.message
    assert "s3cret" not in caught.value.message and "ana:***@" in caught.value.message


@pytest.mark.spark
def test_a_spark_connect_url_nobody_answers_is_named_at_once(tmp_path):
    """``sc://`` is a Spark warehouse; with no server there the error says so in seconds
    instead of the client's minutes of retries."""
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(home=tmp_path, warehouse=f"sc://127.0.0.1:{port}")
    assert settings.warehouse_kind == "spark"
    result = runner.invoke(app, ["--home", str(tmp_path), "--warehouse", settings.warehouse,
                                 "ingest", "orders", str(tmp_path / "none.csv")])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"sc://127.0.0.1:{port}: no Spark Connect server answers there" in result.output


def test_cli_check_lists_problems_and_exits_1_and_reports_read_nothing(tmp_path):
    sources = _mapped_orders(tmp_path, _orders(pay_fen=pa.array(["1", "2", "3"])))
    home = tmp_path / "home"
    checked = runner.invoke(
        app, ["--home", str(home), "sources", "check", "--sources", str(sources)]
    )
    assert checked.exit_code == 1
    assert "orders.amount: pay_fen is text" in checked.output
    metrics = runner.invoke(app, ["--home", str(home), "--sources", str(sources), "metrics"])
    assert metrics.exit_code == 1
    assert "orders.amount: pay_fen is text" in metrics.output
    assert "nothing was read" in metrics.output
    assert not home.exists()


def test_cli_check_passes_and_metrics_read_in_place(tmp_path):
    sources = _mapped_orders(tmp_path, _orders())
    home = tmp_path / "home"
    checked = runner.invoke(
        app,
        ["--sources", str(sources), "--home", str(home), "sources", "check", "--format", "json"],
    )
    assert checked.exit_code == 0, checked.output
    body = json.loads(checked.output)
    assert body["ok"] and body["tables"][0]["rows"] == 3
    out = runner.invoke(
        app,
        [
            "--sources",
            str(sources),
            "--home",
            str(home),
            "metrics",
            "--grain",
            "month",
            "--format",
            "json",
        ],
    )
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output, parse_float=Decimal)
    gmv = {row["period"]: row["gmv"] for row in rows}
    assert gmv == {
        "2024-01-01": Decimal("999999999999.99"),
        "2024-03-01": Decimal("5.00"),
        "2024-05-01": Decimal("12.34"),
    }


def test_the_notebook_reads_in_place_too(tmp_path):
    import tianping.notebook as tp

    sources = _mapped_orders(tmp_path, _orders())
    df = tp.headline_metrics("month", home=tmp_path / "home", sources=sources)
    assert [Decimal(str(v)) for v in df["gmv"]] == [
        Decimal("999999999999.99"),
        Decimal("5.00"),
        Decimal("12.34"),
    ]


def test_ingest_beside_sources_keeps_tianpings_own_table_in_the_home(tmp_path):
    sources = _mapped_orders(tmp_path, _orders())
    nps = tmp_path / "nps.csv"
    nps.write_text("response_id,buyer_id,score,created_at\nn1,b1,9,2024-06-01\n", encoding="utf-8")
    base = ["--home", str(tmp_path / "home"), "--sources", str(sources)]
    loaded = runner.invoke(app, [*base, "ingest", "nps", str(nps)])
    assert loaded.exit_code == 0, loaded.output
    assert (tmp_path / "home" / "warehouse.duckdb").exists()
    refused = runner.invoke(app, [*base, "ingest", "orders", str(nps)])
    assert refused.exit_code == 2 and "orders is read in place" in refused.output
    out = runner.invoke(app, [*base, "metrics", "--grain", "month", "--format", "json"])
    assert out.exit_code == 0, out.output
    rows = {r["period"]: r for r in json.loads(out.output)}
    assert rows["2024-06-01"]["nps"] == 100.0  # the ingested answer, beside the mapped orders
    simulated = runner.invoke(app, [*base, "simulate", "--buyers", "100", "--days", "3"])
    assert simulated.exit_code == 2 and "never writes to them" in simulated.output


def test_a_sources_file_that_is_not_there_is_one_line(tmp_path):
    out = runner.invoke(app, ["--sources", str(tmp_path / "nope.yaml"), "metrics"])
    assert out.exit_code == 2
    assert (
        f"--sources: cannot read {tmp_path / 'nope.yaml'}: No such file or directory" in out.output
    )
