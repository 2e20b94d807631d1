"""Ingest: every bad-file behaviour of issue 2, on all three formats, and on both engines."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tianping.errors import UsageError
from tianping.warehouse.ingest import IngestRejected, ingest_file

HEADER = ["order_id", "buyer_id", "merchant_id", "category", "amount", "created_at"]
GOOD = [
    ["o1", "b1", "m1", "food", "12.34", "2024-06-18T10:00:00+08:00"],
    ["o2", "b2", "m1", "food", "0.1", "2024-06-18 10:00"],
    ["o3", "b3", "m2", "toys", "7", "2024-06-18"],
]


def write_csv(path, rows, header=HEADER):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def loaded(wh, table="orders"):
    if not wh.has_table(table):
        return []
    return sorted(wh.to_arrow(wh.table(table)).to_pylist(), key=lambda r: str(list(r.values())))


def test_valid_csv_loads_exactly(warehouse, tmp_path):
    report = ingest_file(warehouse, "orders", write_csv(tmp_path / "o.csv", GOOD))
    assert (report.read, report.loaded, report.rejected, report.duplicates) == (3, 3, 0, 0)
    rows = {r["order_id"]: r for r in loaded(warehouse)}
    assert rows["o1"]["amount"] == Decimal("12.34")
    assert rows["o2"]["amount"] == Decimal("0.10")
    # +08:00 is converted to UTC; naive times are UTC by default; a date is midnight.
    assert rows["o1"]["created_at"] == datetime(2024, 6, 18, 2, 0)
    assert rows["o2"]["created_at"] == datetime(2024, 6, 18, 10, 0)
    assert rows["o3"]["created_at"] == datetime(2024, 6, 18, 0, 0)


def test_reingesting_the_same_file_changes_nothing(duckdb_warehouse, tmp_path):
    path = write_csv(tmp_path / "o.csv", GOOD)
    ingest_file(duckdb_warehouse, "orders", path)
    before = loaded(duckdb_warehouse)
    again = ingest_file(duckdb_warehouse, "orders", path)
    assert (again.read, again.loaded, again.duplicates, again.rejected) == (3, 0, 3, 0)
    assert loaded(duckdb_warehouse) == before


def test_naive_times_follow_tz(duckdb_warehouse, tmp_path):
    ingest_file(duckdb_warehouse, "orders", write_csv(tmp_path / "o.csv", GOOD), tz="Asia/Shanghai")
    rows = {r["order_id"]: r for r in loaded(duckdb_warehouse)}
    assert rows["o1"]["created_at"] == datetime(2024, 6, 18, 2, 0)  # had an offset: unchanged
    assert rows["o2"]["created_at"] == datetime(2024, 6, 18, 2, 0)  # 10:00 in Shanghai


BAD = [
    (["o4", "b4", "m1", "food", "12.345", "2024-06-18"], "amount", "more than 2 decimal places"),
    (["o5", "b5", "m1", "food", "-1", "2024-06-18"], "amount", "must be >= 0"),
    (["o6", "b6", "m1", "food", "abc", "2024-06-18"], "amount", "not a number"),
    (["o7", "", "m1", "food", "1", "2024-06-18"], "buyer_id", "missing value"),
    (["o8", "b8", "m1", "food", "1", "yesterday"], "created_at", "not an ISO 8601 timestamp"),
    (["o9", "b9", "m1", "food", "1", "2024-02-30"], "created_at", "not a valid date/time"),
]


def test_any_invalid_row_loads_nothing_and_names_row_column_reason(duckdb_warehouse, tmp_path):
    path = write_csv(tmp_path / "o.csv", GOOD + [r for r, _, _ in BAD])
    with pytest.raises(IngestRejected) as err:
        ingest_file(duckdb_warehouse, "orders", path)
    report = err.value.report
    assert (report.read, report.rejected) == (9, 6)
    got = {(p.row, p.column, p.reason) for p in report.problems}
    want = {(4 + i, col, reason) for i, (_, col, reason) in enumerate(BAD)}
    assert got == want
    assert err.value.exit_code == 1
    assert "row 4, column amount, value '12.345': more than 2 decimal places" in err.value.message
    assert not duckdb_warehouse.has_table("orders")


def test_message_lists_at_most_twenty_problems_plus_the_total(duckdb_warehouse, tmp_path):
    rows = [[f"o{i}", f"b{i}", "m", "c", "-5", "2024-01-01"] for i in range(30)]
    with pytest.raises(IngestRejected) as err:
        ingest_file(duckdb_warehouse, "orders", write_csv(tmp_path / "o.csv", rows))
    assert len(err.value.report.problems) == 20
    assert err.value.report.problem_count == 30
    assert "and 10 more problem(s)" in err.value.message


def test_rejects_loads_valid_rows_and_writes_the_rest(duckdb_warehouse, tmp_path):
    path = write_csv(tmp_path / "o.csv", GOOD + [r for r, _, _ in BAD] + [GOOD[0]])
    rejects = tmp_path / "out" / "rejects.csv"
    report = ingest_file(duckdb_warehouse, "orders", path, rejects=rejects)
    assert (report.read, report.loaded, report.rejected, report.duplicates) == (10, 3, 6, 1)
    assert report.read == report.loaded + report.rejected + report.duplicates
    with rejects.open() as f:
        written = list(csv.DictReader(f))
    assert [r["order_id"] for r in written] == ["o4", "o5", "o6", "o7", "o8", "o9"]
    assert written[0]["amount"] == "12.345"  # original text kept
    assert written[0]["reason"] == "amount: more than 2 decimal places"
    assert written[0]["row"] == "4"


def test_conflicting_duplicates_in_file_are_rejected_together(duckdb_warehouse, tmp_path):
    rows = [GOOD[0], ["o1", "b1", "m1", "food", "99.00", "2024-06-18"]]
    report = ingest_file(
        duckdb_warehouse, "orders", write_csv(tmp_path / "o.csv", rows), rejects=tmp_path / "r.csv"
    )
    assert (report.loaded, report.rejected) == (0, 2)
    assert "appears in rows 1, 2 with different values" in report.problems[0].reason


def test_identical_copies_in_file_load_once_in_file_order(warehouse, tmp_path):
    rows = [GOOD[0], GOOD[1], GOOD[0], GOOD[2], GOOD[0]]
    report = ingest_file(warehouse, "orders", write_csv(tmp_path / "o.csv", rows))
    assert (report.read, report.loaded, report.duplicates, report.rejected) == (5, 3, 2, 0)
    assert sorted(r["order_id"] for r in loaded(warehouse)) == ["o1", "o2", "o3"]


def test_parquet_loads_in_file_order_with_duplicates_and_known_keys(duckdb_warehouse, tmp_path):
    first = pa.table({h: [r[i] for r in GOOD[:2]] for i, h in enumerate(HEADER)})
    pq.write_table(first, tmp_path / "a.parquet")
    ingest_file(duckdb_warehouse, "orders", tmp_path / "a.parquet")
    rows = [GOOD[2], GOOD[0], GOOD[2], ["o4", "b4", "m2", "toys", "1.50", "2024-06-19"]]
    pq.write_table(
        pa.table({h: [r[i] for r in rows] for i, h in enumerate(HEADER)}), tmp_path / "b.parquet"
    )
    report = ingest_file(duckdb_warehouse, "orders", tmp_path / "b.parquet")
    assert (report.read, report.loaded, report.duplicates, report.rejected) == (4, 2, 2, 0)
    order = duckdb_warehouse.con.con.execute("SELECT order_id FROM orders").fetchall()
    assert [r[0] for r in order] == ["o1", "o2", "o3", "o4"]


def test_changed_row_for_a_loaded_key_is_rejected_not_updated(duckdb_warehouse, tmp_path):
    ingest_file(duckdb_warehouse, "orders", write_csv(tmp_path / "a.csv", GOOD))
    changed = [["o1", "b1", "m1", "food", "99.99", "2024-06-18T10:00:00+08:00"]]
    with pytest.raises(IngestRejected, match="already loaded with different values"):
        ingest_file(duckdb_warehouse, "orders", write_csv(tmp_path / "b.csv", changed))
    assert {r["amount"] for r in loaded(duckdb_warehouse)} == {
        Decimal("12.34"),
        Decimal("0.10"),
        Decimal("7.00"),
    }


@pytest.mark.parametrize(
    ("table", "path_kind", "match"),
    [
        ("order", "good", "unknown table 'order'"),
        ("orders", "missing", "no such readable file"),
        ("orders", "nocols", "missing required column"),
        ("orders", "empty", "empty file"),
        ("orders", "badext", "cannot tell the format"),
        ("orders", "garbage_parquet", "cannot read as parquet"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(duckdb_warehouse, tmp_path, table, path_kind, match):
    paths = {
        "good": write_csv(tmp_path / "o.csv", GOOD),
        "missing": tmp_path / "nope.csv",
        "nocols": write_csv(tmp_path / "n.csv", [["o1", "1"]], header=["order_id", "amount"]),
        "empty": tmp_path / "e.csv",
        "badext": tmp_path / "o.xlsx",
        "garbage_parquet": tmp_path / "g.parquet",
    }
    paths["empty"].write_text("")
    paths["badext"].write_text("x")
    paths["garbage_parquet"].write_bytes(b"not parquet")
    with pytest.raises(UsageError, match=match) as err:
        ingest_file(duckdb_warehouse, table, paths[path_kind])
    assert err.value.exit_code == 2
    assert not duckdb_warehouse.has_table("orders")


def test_unknown_time_zone_is_a_usage_error(duckdb_warehouse, tmp_path):
    with pytest.raises(UsageError, match="unknown time zone"):
        ingest_file(duckdb_warehouse, "orders", write_csv(tmp_path / "o.csv", GOOD), tz="Mars/Base")


def test_parquet_with_native_types(warehouse, tmp_path):
    table = pa.table(
        {
            "order_id": ["p1", "p2", "p3"],
            "buyer_id": ["b1", "b2", "b3"],
            "merchant_id": ["m", "m", "m"],
            "category": ["c", "c", "c"],
            "amount": pa.array([12.34, 0.1 + 0.2, 5.0]),  # floats that round exactly to cents
            "created_at": pa.array([datetime(2024, 1, 1, 8)] * 3, pa.timestamp("us", tz="UTC")),
            "delivery_mode": ["door", "station", None],
        }
    )
    pq.write_table(table, tmp_path / "o.parquet")
    report = ingest_file(warehouse, "orders", tmp_path / "o.parquet")
    assert report.loaded == 3
    amounts = sorted(r["amount"] for r in loaded(warehouse))
    assert amounts == [Decimal("0.30"), Decimal("5.00"), Decimal("12.34")]


def test_parquet_float_money_with_fractions_of_a_cent_is_rejected(duckdb_warehouse, tmp_path):
    table = pa.table(
        {
            "order_id": ["p1"],
            "buyer_id": ["b"],
            "merchant_id": ["m"],
            "category": ["c"],
            "amount": [1.005],
            "created_at": ["2024-01-01"],
        }
    )
    pq.write_table(table, tmp_path / "o.parquet")
    with pytest.raises(IngestRejected, match="more than 2 decimal places"):
        ingest_file(duckdb_warehouse, "orders", tmp_path / "o.parquet")


def test_jsonl_with_mixed_value_types(duckdb_warehouse, tmp_path):
    lines = [
        {"review_id": "v1", "order_id": "o1", "rating": 5, "created_at": "2024-01-01T00:00:00Z"},
        {"review_id": "v2", "order_id": "o1", "rating": "4", "created_at": "2024-01-02"},
        {"review_id": "v3", "order_id": "o2", "rating": 6, "created_at": "2024-01-02"},
        {"review_id": "v4", "order_id": "o2", "rating": 4.5, "created_at": "2024-01-02"},
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    report = ingest_file(duckdb_warehouse, "reviews", path, rejects=tmp_path / "rej.csv")
    assert (report.loaded, report.rejected) == (2, 2)
    assert {(p.row, p.reason) for p in report.problems} == {
        (3, "must be <= 5"),
        (4, "not a whole number"),
    }


def test_other_tables_ranges_enums_and_bools(duckdb_warehouse, tmp_path):
    nps = write_csv(
        tmp_path / "n.csv",
        [["n1", "b1", "11", "2024-01-01"], ["n2", "b1", "0", "2024-01-01"]],
        header=["response_id", "buyer_id", "score", "created_at"],
    )
    report = ingest_file(duckdb_warehouse, "nps", nps, rejects=tmp_path / "r1.csv")
    assert (report.loaded, [p.reason for p in report.problems]) == (1, ["must be <= 10"])
    refunds = write_csv(
        tmp_path / "f.csv",
        [
            ["r1", "o1", "2024-01-01", "quality", "5", "yes"],
            ["r2", "o1", "2024-01-01", "q", "5", "maybe"],
        ],
        header=["refund_id", "order_id", "requested_at", "reason", "requested_amount", "returned"],
    )
    report = ingest_file(duckdb_warehouse, "refunds", refunds, rejects=tmp_path / "r2.csv")
    assert report.loaded == 1 and report.problems[0].reason == "not true/false"
    activity = write_csv(
        tmp_path / "a.csv",
        [["b1", "2024-01-01"], ["b1", "2024-01-01T10:00"]],
        header=["buyer_id", "date"],
    )
    report = ingest_file(duckdb_warehouse, "activity", activity, rejects=tmp_path / "r3.csv")
    assert report.loaded == 1 and "YYYY-MM-DD" in report.problems[0].reason


def test_unknown_columns_are_reported_not_silently_dropped(duckdb_warehouse, tmp_path):
    path = write_csv(tmp_path / "o.csv", [[*GOOD[0], "x"]], header=[*HEADER, "colour"])
    report = ingest_file(duckdb_warehouse, "orders", path)
    assert report.ignored_columns == ("colour",)


def _raw_csv(path, lines):
    path.write_text("\n".join([",".join(HEADER), *lines]) + "\n")
    return path


def test_malformed_csv_records_are_rejected_rows_with_their_row_numbers(warehouse, tmp_path):
    lines = [
        "o1,b1,m1,food,12.34,2024-06-18",
        'o2,b2,m1,food,"5.00,2024-06-18',  # a stray quote: the parser reads on to the end
        "o3,b3,m2,toys,7,2024-06-18",
        "o4,b4,m2,toys,7",  # a field short
        "o5,b5,m2,toys,7,2024-06-18,extra",  # a field too many
        "o6,b6,m2,toys,8,2024-06-18",
        'o7,b7,"m2,toys,9,2024-06-18',  # a stray quote on the last line
    ]
    path = _raw_csv(tmp_path / "o.csv", lines)
    with pytest.raises(IngestRejected) as e:
        ingest_file(warehouse, "orders", path)
    assert [p.row for p in e.value.report.problems] == [2, 4, 5, 7]
    assert "row 2, column (row)" in e.value.message and "expected 6 fields" in e.value.message
    assert loaded(warehouse) == []  # all or nothing
    rejects = tmp_path / "bad.csv"
    report = ingest_file(warehouse, "orders", path, rejects=rejects)
    assert (report.read, report.loaded, report.rejected, report.duplicates) == (7, 3, 4, 0)
    assert [r["order_id"] for r in loaded(warehouse)] == ["o1", "o3", "o6"]
    with rejects.open(newline="") as f:
        written = list(csv.DictReader(f))
    assert [int(r["row"]) for r in written] == [2, 4, 5, 7]
    assert written[0]["reason"].endswith('o2,b2,m1,food,"5.00,2024-06-18')
    assert "found 7" in written[2]["reason"]


def test_a_malformed_record_in_a_large_file_is_found_by_the_parallel_reader(
    duckdb_warehouse, tmp_path
):
    good = [f"o{i},b{i},m1,food,1.00,2024-06-18" for i in range(60_000)]  # ~2 MB, many blocks
    lines = [*good[:40_000], "broken,line", *good[40_000:]]
    report = ingest_file(duckdb_warehouse, "orders", _raw_csv(tmp_path / "o.csv", lines),
                         rejects=tmp_path / "bad.csv")  # fmt: skip
    assert (report.read, report.loaded, report.rejected) == (60_001, 60_000, 1)
    assert [p.row for p in report.problems] == [40_001]


@settings(max_examples=400, deadline=None)
@given(
    st.text(
        alphabet=st.one_of(
            st.sampled_from(" \t\r\n\x00\x01\xa0\u1680\u2000\u200a\u202f\u205f\u3000\ufeff"),
            st.characters(codec="utf-8"),
        ),
        max_size=30,
    )
)
def test_the_text_of_a_value_is_duckdbs_trim_of_it(value):
    """The cheap trim (ASCII values that need none are passed through) is DuckDB's TRIM for
    every string: spaces, Unicode space separators, tabs, control characters, empty."""
    import duckdb

    from tianping.events.validation import _text

    got, want = duckdb.execute(
        f"SELECT {_text('$v')}, NULLIF(TRIM($v), '')", {"v": value}
    ).fetchone()
    assert got == want


def test_a_large_scanned_csv_names_the_rows_of_bad_values_in_file_order(duckdb_warehouse, tmp_path):
    """DuckDB scans a CSV in parallel; a staged row's position is still its data row: bad
    values spread over a file of many scan blocks are named by their rows, and the valid
    rows load in file order."""
    rows = [[f"o{i}", f"b{i}", "m1", "food", "1.00", "2024-06-18"] for i in range(300_000)]
    bad = [7, 123_457, 250_001, 299_999]
    for r in bad:
        rows[r - 1][4] = "1.005"  # more than two decimal places
    rows[99_999][0] = 'quoted, "id"\nwith a line break'  # a record over two lines
    path = write_csv(tmp_path / "big.csv", rows)
    with pytest.raises(IngestRejected) as e:
        ingest_file(duckdb_warehouse, "orders", path)
    assert [p.row for p in e.value.report.problems] == bad
    report = ingest_file(duckdb_warehouse, "orders", path, rejects=tmp_path / "bad.csv")
    assert (report.read, report.loaded, report.rejected) == (300_000, 299_996, 4)
    ids = duckdb_warehouse.con.con.execute("SELECT order_id FROM orders").fetchall()
    expected = [r[0] for i, r in enumerate(rows, start=1) if i not in bad]
    assert [i for (i,) in ids] == expected
    with (tmp_path / "bad.csv").open(newline="") as f:
        assert [(int(r["row"]), r["amount"]) for r in csv.DictReader(f)] == [
            (r, "1.005") for r in bad
        ]


HOSTILE = st.sampled_from([
    "", " ", "\u3000", "\x00", "a\x00b", "\x01\x1b[31m", "\t7\t", " 12.34 ", "12.345", "-0.00",
    "1e400", "NaN", "inf", "-inf", "99999999999999999999.99", "0x1F", "１２", "7.", ".5",
    "0001-01-01", "9999-12-31T23:59:59.999999", "10000-01-01", "2024-02-30", "2024-06-18 25:00",
    "2024-06-18T10:00:00+14:00", "2024-06-18T10:00:00-12:00Z", "2024-06-18 10:00:00 BC",
    "infinity", "epoch", "2024-6-1", "door", "station", "DOOR", "teleport", "😀" * 50,
    "x" * 5000, 'quo"te', "line\nbreak", "comma,inside", "\ufeffbom", "NULL", "null",
])  # fmt: skip
COLUMNS = ["order_id", "buyer_id", "merchant_id", "category", "amount", "created_at",
           "coupon_amount", "delivered_at", "delivery_mode"]  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(HOSTILE, st.text(max_size=12)), min_size=9, max_size=9),
        min_size=1,
        max_size=6,
    ),  # fmt: skip
    st.lists(st.sampled_from(range(6)), max_size=3),
)
def test_scanned_csv_answers_as_arrows_reader_on_hostile_values(tmp_path_factory, rows, copies):
    """Whatever the values — NUL and control characters, blanks, huge and non-finite numbers,
    far-past and far-future dates, unknown codes, quotes and line breaks inside fields, repeated
    keys — DuckDB's scan of a CSV gives the report and the loaded rows Arrow's reader gives."""
    from functools import partial

    from tianping.settings import Settings
    from tianping.warehouse import connect, ingest

    rows = rows + [list(rows[i]) for i in copies if i < len(rows)]  # repeated keys too
    folder = tmp_path_factory.mktemp("hostile")
    path = write_csv(folder / "o.csv", rows, header=COLUMNS)
    outcomes = []
    for scan in (True, False):
        home = folder / f"scan-{scan}"
        wh = connect(Settings(home=home, warehouse=f"duckdb://{home}.duckdb"))
        stage = ingest._stage
        ingest._stage = partial(stage, scan=scan)
        try:
            rejects = folder / f"bad-{scan}.csv"
            report = ingest.ingest_file(wh, "orders", path, rejects=rejects)
            written = rejects.read_text(encoding="utf-8") if rejects.exists() else None
            outcome = (report.to_dict() | {"path": None, "rejects_path": None}, loaded(wh), written)
        except UsageError as exc:
            outcome = ("usage", exc.message)
        finally:
            ingest._stage = stage
            wh.close()
        outcomes.append(outcome)
    assert outcomes[0] == outcomes[1]


def test_the_memory_limit_holds_during_an_ingest_only(duckdb_warehouse, tmp_path):
    """Staging spills beyond the limit (a 96 MB limit still loads 200k rows); the warehouse's
    own limit is back afterwards; a size DuckDB cannot read is a usage error naming it."""
    raw = duckdb_warehouse.con.con
    before = raw.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    rows = [[f"o{i}", f"b{i % 97}", "m1", "food", "1.00", "2024-06-18"] for i in range(200_000)]
    path = write_csv(tmp_path / "o.csv", rows)
    report = ingest_file(duckdb_warehouse, "orders", path, memory_limit="96MB")
    assert report.loaded == 200_000 == duckdb_warehouse.row_count("orders")
    assert _gib(raw.execute("SELECT current_setting('memory_limit')").fetchone()[0]) == (
        pytest.approx(_gib(before), rel=0.01)
    )
    with pytest.raises(UsageError, match="memory limit 'lots' is not a size"):
        ingest_file(duckdb_warehouse, "orders", path, memory_limit="lots")
    with pytest.raises(UsageError, match=r"more than its memory limit \(1MB\).*nothing was loaded"):
        ingest_file(duckdb_warehouse, "orders", write_csv(tmp_path / "p.csv", rows[:10]),
                    memory_limit="1MB")  # fmt: skip
    assert duckdb_warehouse.row_count("orders") == 200_000  # a query as before: limit back
    grouped = "SELECT count(*) FROM (SELECT buyer_id, order_id, count(*) FROM orders GROUP BY ALL)"
    assert raw.execute(grouped).fetchone()[0] == 200_000


def _gib(size: str) -> float:
    number, unit = size.split()
    return float(number) * {"KiB": 2**-20, "MiB": 2**-10, "GiB": 1.0, "TiB": 2**10}[unit]


def test_orders_load_their_optional_identity_attributes(duckdb_warehouse, tmp_path):
    header = [*HEADER, "device_id", "address_hash", "payment_fingerprint"]
    rows = [[*GOOD[0], "D1", "a9f3", "F7"], [*GOOD[1], "", "", ""]]
    report = ingest_file(duckdb_warehouse, "orders", write_csv(tmp_path / "o.csv", rows, header))
    assert report.loaded == 2
    got = {r["order_id"]: r for r in loaded(duckdb_warehouse)}
    assert (got["o1"]["device_id"], got["o1"]["address_hash"], got["o1"]["payment_fingerprint"]) == (
        "D1", "a9f3", "F7"
    )  # fmt: skip
    # an empty cell is unknown (null), never a shared value
    assert got["o2"]["device_id"] is None and got["o2"]["payment_fingerprint"] is None
