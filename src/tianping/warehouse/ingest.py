"""Load an event file into the warehouse: validate every row, reject with reasons, dedupe by key.

DuckDB scans the file where it lies (CSV, Parquet) or reads it into Arrow (JSON Lines, and CSV
files with malformed records, whose rows Arrow's reader numbers); the rules of
:mod:`tianping.events.validation` type and check every column in one SQL pass into a staging
table that DuckDB keeps within a memory limit (spilling to disk beyond it); rows
whose key repeats in the file or is already loaded are counted as duplicates (identical) or
rejected (different values). Then either nothing is written (the default, when any row is
invalid) or the valid rows are appended in one transaction and the invalid ones written to a
rejects file. Every input row is accounted for: read = loaded + rejected + duplicates.
"""

from __future__ import annotations

import csv
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from tianping.errors import InvalidInput, UsageError
from tianping.events.schema import TABLES, TableSchema
from tianping.events.validation import column_sql, lit, q
from tianping.warehouse.backend import Warehouse, arrow_schema

MAX_LISTED = 20
#: DuckDB's memory limit while ingesting: staged rows beyond it spill to temporary files.
MEMORY_LIMIT = "2GB"
FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}

Progress = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason one input row is invalid. ``row`` is the 1-based data row (header excluded)."""

    row: int
    column: str
    value: str | None
    reason: str

    def __str__(self) -> str:
        shown = "(empty)" if self.value is None else repr(self.value)
        return f"row {self.row}, column {self.column}, value {shown}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Malformed:
    """A CSV record that cannot be split into the header's fields (bad quoting, a wrong field
    count). ``row`` is its 1-based data row (header excluded), as in :class:`Problem`."""

    row: int
    text: str
    reason: str


@dataclass(frozen=True)
class IngestReport:
    """What an ingest did; ``read == loaded + rejected + duplicates`` always holds."""

    table: str
    path: str
    read: int
    loaded: int
    rejected: int
    duplicates: int
    problems: tuple[Problem, ...] = ()
    problem_count: int = 0
    ignored_columns: tuple[str, ...] = ()
    rejects_path: str | None = None

    def to_dict(self) -> dict:
        """The result as JSON-ready data (what ``tianping ingest --json`` prints)."""
        return {
            "table": self.table,
            "path": self.path,
            "read": self.read,
            "loaded": self.loaded,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "problem_count": self.problem_count,
            "ignored_columns": list(self.ignored_columns),
            "rejects_path": self.rejects_path,
            "problems": [_problem_dict(p) for p in self.problems],
        }


def _problem_dict(p: Problem) -> dict:
    return {"row": p.row, "column": p.column, "value": p.value, "reason": p.reason}


class IngestRejected(InvalidInput):
    """The file has invalid rows and ``--rejects`` was not given: nothing was loaded."""

    code = "invalid_rows"

    def __init__(self, report: IngestReport):
        listed = "\n".join(f"  {p}" for p in report.problems)
        more = report.problem_count - len(report.problems)
        tail = f"\n  … and {more} more problem(s)" if more > 0 else ""
        super().__init__(
            f"{report.rejected} of {report.read} rows in {report.path} are invalid "
            f"({report.problem_count} problem(s)); nothing was loaded. Fix them, or pass "
            f"--rejects PATH to load the valid rows and write the invalid ones there.\n"
            f"{listed}{tail}",
            field=report.path,
        )
        self.report = report


def ingest_file(
    wh: Warehouse,
    table: str,
    path: str | Path,
    *,
    tz: str = "UTC",
    rejects: str | Path | None = None,
    file_format: str | None = None,
    progress: Progress | None = None,
    memory_limit: str | None = MEMORY_LIMIT,
) -> IngestReport:
    """Validate ``path`` against event table ``table`` and load it into ``wh``.

    Args:
        wh: the warehouse to load into.
        table: one of the event tables (orders, refunds, reviews, nps, activity, exposures).
        path: a CSV (with header), Parquet or JSON Lines file.
        tz: time zone of timestamps that carry no offset (IANA name, e.g. ``Asia/Shanghai``).
        rejects: when given, load the valid rows and write the invalid ones here (CSV with a
            ``reason`` column); otherwise any invalid row means nothing is loaded.
        file_format: ``csv``, ``parquet`` or ``jsonl``; by default from the file's extension.
        progress: called with (stage, rows) as the stages complete.
        memory_limit: DuckDB's memory limit while ingesting (e.g. ``1GB``); staged rows beyond
            it spill to temporary files, so memory stays flat however large the file. None:
            the engine's own limit (80 % of RAM by default).

    Raises:
        UsageError: unknown table, a table mapped by the sources file, unreadable file,
            missing required columns, bad time zone.
        IngestRejected: invalid rows and no ``rejects`` path.
    """
    schema = _schema(table)
    wh.check_writable(schema.name)  # a table read in place from the user's own is never loaded
    path = Path(path)
    step = progress or (lambda stage, rows: None)
    # Staging tables live in a private in-memory database. On a DuckDB warehouse that database
    # is attached to a cursor of the warehouse, so the valid rows go in with one
    # INSERT ... SELECT without leaving the engine; other engines get the rows as Arrow.
    con, target, restore = _staging(wh, memory_limit)
    try:
        _check_tz(con, tz)
        read, present, ignored = _stage(con, schema, path, file_format)
        if read is not None:
            step("read", read)
        try:
            _type_and_check(con, schema, scale=wh.scale, tz=tz)
            again = read is None and _set_aside(con)
        except duckdb.Error:
            if read is not None:
                raise
            again = True  # the Arrow reader names what is wrong with the file
        if again:
            # DuckDB's CSV scan set malformed records aside: Arrow's reader numbers them and
            # reads again the lines a stray quote swallowed (:func:`_read_csv`).
            _unstage(con)
            read, present, ignored = _stage(con, schema, path, file_format, scan=False)
            step("read", read)
            _type_and_check(con, schema, scale=wh.scale, tz=tz)
        if read is None:  # a scan reads and validates in one pass
            read = con.execute("SELECT count(*) FROM _typed").fetchone()[0]
            step("read", read)
        step("validated", read)
        _mark_duplicates(con, wh, schema)
        step("deduplicated", read)
        report = _report(con, schema, path, read, ignored)
        if report.rejected and rejects is None:
            raise IngestRejected(report)
        pending = _write_rejects(con, present, Path(rejects)) if rejects is not None else None
        try:
            _load(con, wh, schema, every_row=report.loaded == report.read, target=target)
        except BaseException:
            if pending is not None:
                pending.unlink(missing_ok=True)
            raise
        if pending is not None:
            os.replace(pending, rejects)
            report = replace(report, rejects_path=str(rejects))
        step("loaded", report.loaded)
        return report
    except duckdb.OutOfMemoryException as exc:
        first = str(exc).strip().splitlines()[0]
        raise UsageError(
            f"{path}: the ingest needed more than its memory limit ({memory_limit}) and could "
            f"not spill to disk ({first}); nothing was loaded — raise --memory-limit",
            field="memory_limit",
        ) from None
    finally:
        restore()  # first: under a limit too small, even the clean-up below would fail
        if target is not None:
            # Attached databases belong to the whole DuckDB instance, not the cursor: detach
            # so the staging tables are freed now and never seen by other connections.
            stage = con.execute("SELECT current_database()").fetchone()[0]
            con.execute(f"USE {q(target)}")
            con.execute(f"DETACH {q(stage)}")
        con.close()


def _staging(
    wh: Warehouse, memory_limit: str | None
) -> tuple[duckdb.DuckDBPyConnection, str | None, Callable[[], None]]:
    """A connection whose default database is a fresh in-memory one, the name of the
    warehouse's database when that connection reaches it too (DuckDB), and a function that
    puts back the memory limit (a setting of the whole DuckDB instance)."""
    if wh.kind != "duckdb":
        con = duckdb.connect()
        spill = tempfile.TemporaryDirectory(prefix="tianping-ingest-")
        con.execute(f"SET temp_directory = {lit(spill.name)}")
        if memory_limit is not None:
            _set_memory_limit(con, memory_limit)
        return con, None, spill.cleanup
    con = wh.con.con.cursor()
    target = con.execute("SELECT current_database()").fetchone()[0]
    before = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    stage = f"tp_stage_{uuid.uuid4().hex}"
    con.execute(f"ATTACH ':memory:' AS {stage}")
    con.execute(f"USE {stage}")
    if memory_limit is not None:  # last: whatever runs under it is inside ingest's clean-up
        try:
            _set_memory_limit(con, memory_limit)
        except UsageError:
            con.execute(f"USE {q(target)}")
            con.execute(f"DETACH {q(stage)}")
            raise

    def restore() -> None:
        # SET, not RESET: DuckDB 1.4's RESET reports the default but keeps enforcing the last
        # limit. The value reads back rounded (18.8 GiB), so it may come back a hair lower.
        con.execute(f"SET memory_limit = {lit(before)}")

    return con, target, restore


def _set_memory_limit(con: duckdb.DuckDBPyConnection, limit: str) -> None:
    try:
        con.execute(f"SET memory_limit = {lit(limit)}")
    except duckdb.Error:
        raise UsageError(
            f"memory limit {limit!r} is not a size DuckDB understands (e.g. 1GB, 512MB)",
            field="memory_limit",
        ) from None


def _stage(con, schema: TableSchema, path: Path, file_format: str | None, *, scan: bool = True):
    """Expose the file as ``_raw`` (the schema's columns present plus a 1-based ``_row``).

    Parquet is scanned by DuckDB's reader where it lies (a view: nothing is copied up
    front); so is CSV (``scan``), every value as text and without ``_row``: the rows keep
    their file order, so the staged row's position is its row (:func:`_type_and_check`),
    as long as DuckDB set no malformed record aside (:func:`_set_aside`); JSON Lines, and
    CSV without ``scan``, are read into Arrow first, every value as text.
    Returns (rows read, None when only the scan will tell, columns present, columns ignored)."""
    fmt = file_format or FORMATS.get(path.suffix.lower())
    if fmt == "csv" and scan and path.is_file() and os.access(path, os.R_OK):
        header = _csv_header(path)
        present, ignored = _check_columns(schema, header, path)
        types = "{" + ", ".join(f"{lit(h)}: 'VARCHAR'" for h in header) + "}"
        # The dialect is fixed (RFC 4180, as Arrow's reader): nothing is sniffed.
        source = (
            f"read_csv({lit(str(path))}, header = true, auto_detect = false, delim = ',', "
            f"quote = '\"', escape = '\"', columns = {types}, store_rejects = true, "
            f"rejects_table = '_csv_rejects', rejects_scan = '_csv_scans')"
        )
        cols = ", ".join(q(c) for c in present)
        con.execute(f"CREATE VIEW _raw AS SELECT {cols} FROM {source}")
        return None, present, ignored
    if fmt == "parquet" and path.is_file():
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(path)
            names, rows = meta.schema_arrow.names, meta.metadata.num_rows
        except (pa.ArrowException, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"{path}: cannot read as parquet: {first}", field="path") from None
        present, ignored = _check_columns(schema, names, path)
        cols = ", ".join(q(c) for c in present)
        con.execute(
            f"CREATE VIEW _raw AS SELECT {cols}, file_row_number + 1 AS _row "
            f"FROM read_parquet({lit(str(path))}, file_row_number = true)"
        )
        return rows, present, ignored
    data, rows, malformed = _read_text(path, file_format, con)
    present, ignored = _check_columns(schema, data.column_names, path)
    staged = data.select(present).append_column("_row", rows)
    con.register("_raw", staged)
    con.register("_malformed", pa.table({
        "_row": pa.array([m.row for m in malformed], pa.int64()),
        "text": pa.array([m.text for m in malformed], pa.string()),
        "reason": pa.array([m.reason for m in malformed], pa.string()),
    }))  # fmt: skip
    return data.num_rows + len(malformed), present, ignored


def _row_numbers(table: pa.Table) -> pa.Array:
    return pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))


def _schema(table: str) -> TableSchema:
    schema = TABLES.get(table)
    if schema is None:
        raise UsageError(f"unknown table {table!r}; tables are: {', '.join(TABLES)}", field="table")
    return schema


def _check_tz(con: duckdb.DuckDBPyConnection, tz: str) -> None:
    try:
        con.execute(
            f"SELECT timezone('UTC', timezone({lit(tz)}, TIMESTAMP '2000-01-01'))"
        ).fetchall()
    except duckdb.Error:
        raise UsageError(
            f"unknown time zone {tz!r} (use an IANA name such as Asia/Shanghai)", field="tz"
        ) from None


def read_file(path: Path, file_format: str | None, con: duckdb.DuckDBPyConnection) -> pa.Table:
    """Read a CSV/Parquet/JSONL file into Arrow; text formats keep every value as text.

    Raises:
        UsageError: unreadable, or a CSV record that cannot be split into fields (named by
            its data row).
    """
    data, _rows, malformed = _read_text(path, file_format, con)
    if malformed:
        m = malformed[0]
        raise UsageError(f"{path}: row {m.row}: {m.reason}: {m.text[:200]!r}", field="path")
    return data


def _read_text(
    path: Path, file_format: str | None, con: duckdb.DuckDBPyConnection
) -> tuple[pa.Table, pa.Array, list[Malformed]]:
    """The file as Arrow, each row's 1-based data row, and (CSV) the records that could not
    be split into fields."""
    fmt = file_format or FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(
            f"{path}: cannot tell the format from the extension; use --format csv|parquet|jsonl",
            field="path",
        )
    if not path.is_file() or not os.access(path, os.R_OK):
        raise UsageError(f"{path}: no such readable file", field="path")
    try:
        if fmt == "csv":
            return _read_csv(path)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            data = pq.read_table(path)
            return data, _row_numbers(data), []
        if fmt == "jsonl":
            data = _read_jsonl(path, con)
            return data, _row_numbers(data), []
    except (pa.ArrowInvalid, pa.ArrowException, duckdb.Error, UnicodeDecodeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{path}: cannot read as {fmt}: {first}", field="path") from None
    raise UsageError(f"unknown format {fmt!r}; use csv, parquet or jsonl", field="format")


def _read_csv(path: Path) -> tuple[pa.Table, pa.Array, list[Malformed]]:
    """Every value as text, each record's 1-based data row, and the malformed records.

    A record with too few or too many fields (a stray quote, a stray delimiter) is set aside
    with its row instead of ending the read, and becomes a rejected row like any other invalid
    one. A stray opening quote makes a CSV parser read on to the next quote, swallowing the
    lines after it into one record: those lines are read again on their own, so one bad line
    costs one row, not the rest of the file.
    """
    header = _csv_header(path)
    tables, rows, malformed = [], [], []
    todo: list[tuple[object, int]] = [(path, 1)]  # (source, data row of its first record)
    while todo:
        source, first = todo.pop()
        table, bad = _parse_csv(source, header, skip_header=source is path)
        placed, found, rests = _place(table.num_rows, bad, first)
        tables.append(table)
        rows.append(placed)
        malformed.extend(found)
        todo.extend(rests)
    if len(tables) == 1:
        return tables[0], pa.array(rows[0], pa.int64()), malformed
    order = np.argsort(np.concatenate(rows), kind="stable")
    data = pa.concat_tables(tables).take(pa.array(order))
    return data, pa.array(np.concatenate(rows)[order]), sorted(malformed, key=lambda m: m.row)


def _csv_header(path: Path) -> list[str]:
    """The CSV's column names (blanks around them dropped), checked: present and distinct."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: cannot read as csv: {exc}", field="path") from None
    if not header:
        raise UsageError(f"{path}: empty file (a CSV needs a header row)", field="path")
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise UsageError(
            f"{path}: repeated column(s) in the header: {', '.join(dupes)}", field="path"
        )
    return header


def _set_aside(con) -> bool:
    """Whether DuckDB's CSV scan set any record aside (wrong field count, stray quote, bad
    encoding, an overlong line)."""
    return bool(con.execute("SELECT count(*) FROM _csv_rejects").fetchone()[0])


def _unstage(con) -> None:
    """Drop what staging and typing a scanned CSV created, to stage it again."""
    for statement in (
        "DROP VIEW IF EXISTS _raw_text",
        "DROP VIEW IF EXISTS _typed",
        "DROP TABLE IF EXISTS _typed_rows",
        "DROP VIEW IF EXISTS _raw",
    ):
        con.execute(statement)


def _parse_csv(source, header: list[str], *, skip_header: bool):
    """``(table, [(record number, expected, actual, text)])`` of one CSV source, every value
    as text; the records that do not split into the header's fields are set aside."""
    import pyarrow.csv as pcsv

    bad: list[tuple[int | None, int, int, str]] = []

    def set_aside(row) -> str:
        bad.append((row.number, row.expected_columns, row.actual_columns, row.text))
        return "skip"

    def read(threads: bool) -> pa.Table:
        return pcsv.read_csv(
            source,
            read_options=pcsv.ReadOptions(
                column_names=header, skip_rows=1 if skip_header else 0, use_threads=threads
            ),
            parse_options=pcsv.ParseOptions(invalid_row_handler=set_aside),
            convert_options=pcsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    if not skip_header:
        source = pa.BufferReader(source)
    table = read(threads=True)
    if bad and any(number is None for number, *_ in bad):
        # The parallel reader does not know where a record was: read again on one thread,
        # which counts them (only sources with malformed records pay for it).
        bad.clear()
        if not skip_header:
            source.seek(0)
        table = read(threads=False)
    # Record numbers count the skipped header as record 1.
    shift = 1 if skip_header else 0
    return table, sorted((n - shift, want, got, text) for n, want, got, text in bad)


def _place(good: int, bad, first: int):
    """Data rows of the well-formed records, the malformed records as :class:`Malformed`, and
    the lines a stray quote swallowed, to be read again: ``(rows, malformed, rests)``.

    Record ``r`` (1-based) of a source whose first record is data row ``first`` is row
    ``first - 1 + r``, moved down by the extra lines of swallowed records before it.
    """
    records = np.arange(1, good + len(bad) + 1, dtype=np.int64)
    bad_records = np.array([b[0] for b in bad], dtype=np.int64)
    extra = np.zeros(len(records) + 1, dtype=np.int64)
    malformed, rests = [], []
    for record, want, got, text in bad:
        lines = text.replace("\r\n", "\n").split("\n")
        row = first - 1 + record + int(extra[record])
        malformed.append(Malformed(row, lines[0], f"expected {want} fields, found {got}"))
        if len(lines) > 1:
            extra[record + 1 :] += len(lines) - 1
            rests.append(("\n".join(lines[1:]).encode(), row + 1))
    good_records = np.setdiff1d(records, bad_records) if len(bad) else records
    return first - 1 + good_records + extra[good_records], malformed, rests


def _read_jsonl(path: Path, con: duckdb.DuckDBPyConnection) -> pa.Table:
    src = lit(str(path))
    described = con.execute(
        f"DESCRIBE SELECT * FROM read_json({src}, format='newline_delimited', "
        "sample_size=-1, union_by_name=true)"
    ).fetchall()
    columns = "{" + ", ".join(f"{lit(r[0])}: 'VARCHAR'" for r in described) + "}"
    return con.execute(
        f"SELECT * FROM read_json({src}, format='newline_delimited', columns={columns})"
    ).fetch_arrow_table()


def _check_columns(schema: TableSchema, names: list[str], path: Path) -> tuple[list[str], tuple]:
    names = list(names)
    missing = [c for c in schema.required if c not in names]
    if missing:
        raise UsageError(
            f"{path}: missing required column(s) for {schema.name}: {', '.join(missing)} "
            f"(the file has: {', '.join(names) or 'no columns'})",
            field="columns",
        )
    present = [c for c in schema.names if c in names]
    ignored = tuple(c for c in names if c not in schema.names)
    return present, ignored


def _type_and_check(con, schema: TableSchema, *, scale: int, tz: str) -> None:
    types = dict(
        con.execute("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM _raw)").fetchall()
    )
    typed, problems, raws, conditions = [], [], [], []
    for col in schema.columns:
        sql = column_sql(col, types.get(col.name), scale=scale, tz=tz)
        typed.append(f"{sql.value} AS {q(col.name)}")
        raws.append(f"{sql.raw} AS {q('_raw_' + col.name)}")
        for condition, reason in sql.checks:
            conditions.append(f"coalesce({condition}, false)")
            problems.append(
                f"CASE WHEN {condition} THEN {{'column': {lit(col.name)}, 'reason': {lit(reason)}, "
                f"'value': {sql.raw}}} END"
            )
    # The problem list is built only for rows that fail a check (NULL for the others, which
    # costs nothing to store): most rows are valid, and building a list of structs per row
    # costs more than the checks themselves.
    bad = " OR ".join(conditions) if conditions else "false"
    problem_list = (
        f"CASE WHEN {bad} THEN list_filter([{', '.join(problems)}], p -> p IS NOT NULL) END"
        if problems
        else 'CAST(NULL AS STRUCT("column" VARCHAR, reason VARCHAR, value VARCHAR)[])'
    )
    checked = f"{', '.join(typed)}, {bad} AS _bad, {problem_list} AS _problems"
    if "_row" in types:
        con.execute(f"CREATE TABLE _typed AS SELECT _row, {checked} FROM _raw")
        # The input as text is needed only for rejected rows (the rejects file): a view, so
        # only those rows are ever converted.
        con.execute(f"CREATE VIEW _raw_text AS SELECT _row, {', '.join(raws)} FROM _raw")
        return
    # A scan without row numbers: the staged table keeps the file's order (DuckDB preserves
    # insertion order), so a row's position in it is its data row.
    con.execute(f"CREATE TABLE _typed_rows AS SELECT {checked} FROM _raw")
    con.execute("CREATE VIEW _typed AS SELECT rowid + 1 AS _row, * FROM _typed_rows")
    con.execute(
        f"CREATE VIEW _raw_text AS SELECT row_number() OVER () AS _row, {', '.join(raws)} FROM _raw"
    )


def _row_hash(schema: TableSchema, alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return "hash(" + ", ".join(f"{prefix}{q(c)}" for c in schema.names) + ")"


def _mark_duplicates(con, wh: Warehouse, schema: TableSchema) -> None:
    """Add ``_status``: ok, dup (identical copy, skipped) or conflict reasons in _problems.

    Keys are grouped once; only keys that repeat carry the details (hash range, first row,
    the list of rows), so a file without duplicates costs one hash aggregate. Of identical
    copies the first row (in file order) is kept."""
    keys = [q(k) for k in schema.key]
    key = ", ".join(keys)
    # Row hashes (to tell identical copies from conflicts) are computed only for keys that
    # repeat; an ordered string_agg over every key would be slow too. Without repeated keys
    # (the common case) the status is a view: nothing more is materialised.
    con.execute(
        f"CREATE TABLE _repeated AS SELECT {key} FROM _typed WHERE NOT _bad "
        f"GROUP BY {key} HAVING count(*) > 1"
    )
    if not con.execute("SELECT count(*) FROM _repeated").fetchone()[0]:
        con.execute(
            f"CREATE VIEW _dups AS SELECT _row, {key}, NULL::VARCHAR AS _rows, 'ok' AS _status "
            "FROM _typed WHERE NOT _bad"
        )
    else:
        con.execute(f"""
            CREATE TABLE _dups AS
            WITH multi AS (
                SELECT {key}, min(_h) AS _hmin, max(_h) AS _hmax, min(_row) AS _first,
                       string_agg(_row::VARCHAR, ', ' ORDER BY _row) AS _rows
                FROM (SELECT _row, {key}, {_row_hash(schema)} AS _h
                      FROM _typed JOIN _repeated USING ({key}) WHERE NOT _bad)
                GROUP BY {key}
            )
            SELECT _row, {key}, m._rows,
                CASE WHEN m._hmin <> m._hmax THEN 'conflict'
                     WHEN v._row > m._first THEN 'dup' ELSE 'ok' END AS _status
            FROM (SELECT _row, {key} FROM _typed WHERE NOT _bad) v LEFT JOIN multi m USING ({key})
        """)
    _compare_with_loaded(con, wh, schema)


def _compare_with_loaded(con, wh: Warehouse, schema: TableSchema) -> None:
    """``_checked``: ``_dups`` plus ``_eh``/``_h``, the hashes of the loaded row with the same
    key and of this row (both NULL when the key is new)."""
    if not wh.has_table(schema.name):
        con.execute(
            "CREATE VIEW _checked AS SELECT *, NULL::UBIGINT AS _eh, NULL::UBIGINT AS _h FROM _dups"
        )
        return
    keys = con.execute(
        f"SELECT DISTINCT {', '.join(q(k) for k in schema.key)} FROM _dups WHERE _status = 'ok'"
    ).fetch_arrow_table()
    existing = _existing_rows(con, wh, schema, keys)
    con.register("_loaded", existing)
    on = " AND ".join(f"c.{q(k)} = l.{q(k)}" for k in schema.key)
    con.execute(f"""
        CREATE TABLE _checked AS
        SELECT c.*, l._eh, CASE WHEN l._eh IS NOT NULL THEN {_row_hash(schema, "t")} END AS _h
        FROM _dups c JOIN _typed t USING (_row)
        LEFT JOIN (SELECT *, {_row_hash(schema)} AS _eh FROM _loaded) l ON {on}
    """)


def _existing_rows(con, wh: Warehouse, schema: TableSchema, keys: pa.Table) -> pa.Table:
    if wh.kind == "duckdb":
        # Same engine: join inside the warehouse, bringing back only the matching rows.
        wcon = wh.con.con
        name = f"_tp_keys_{uuid.uuid4().hex}"
        wcon.register(name, keys)
        try:
            on = " AND ".join(f"t.{q(k)} = k.{q(k)}" for k in schema.key)
            return wcon.execute(
                f"SELECT t.* FROM {q(schema.name)} t SEMI JOIN {name} k ON {on}"
            ).fetch_arrow_table()
        finally:
            wcon.unregister(name)
    import ibis

    loaded = wh.table(schema.name)
    return wh.to_arrow(loaded.semi_join(ibis.memtable(keys), list(schema.key)))


def _report(con, schema: TableSchema, path: Path, read: int, ignored) -> IngestReport:
    if not _has(con, "_malformed"):
        con.execute("CREATE TABLE _malformed (_row BIGINT, text VARCHAR, reason VARCHAR)")
    troubled = con.execute(
        "SELECT (SELECT count(*) FROM _typed WHERE _bad) + (SELECT count(*) FROM _checked "
        "WHERE _status <> 'ok' OR _eh IS NOT NULL) + (SELECT count(*) FROM _malformed)"
    ).fetchone()[0]
    if not troubled:
        # Every row is valid and new (the common case): no per-row outcome to work out.
        con.execute(
            "CREATE TABLE _outcome AS SELECT _row, _problems AS problems, 'load' AS outcome "
            "FROM _typed WHERE false"
        )
        return IngestReport(
            table=schema.name, path=str(path), read=read, loaded=read, rejected=0,
            duplicates=0, problems=(), problem_count=0, ignored_columns=tuple(ignored),
        )  # fmt: skip
    con.execute(f"""
        CREATE TABLE _outcome AS
        SELECT t._row,
            CASE
              WHEN t._bad THEN t._problems
              WHEN c._status = 'conflict' THEN [{{'column': {lit(", ".join(schema.key))},
                   'reason': 'the same key appears in rows ' || c._rows || ' with different values',
                   'value': {_key_text(schema, "c")}}}]
              WHEN c._eh IS NOT NULL AND c._eh <> c._h THEN [{{'column': {lit(", ".join(schema.key))},
                   'reason': 'already loaded with different values (ingest never updates rows)',
                   'value': {_key_text(schema, "c")}}}]
              ELSE []
            END AS problems,
            CASE
              WHEN t._bad OR c._status = 'conflict'
                   OR (c._eh IS NOT NULL AND c._eh <> c._h) THEN 'rejected'
              WHEN c._status = 'dup' OR c._eh IS NOT NULL THEN 'duplicate'
              ELSE 'load'
            END AS outcome
        FROM _typed t LEFT JOIN _checked c USING (_row)
        UNION ALL
        SELECT _row, [{{'column': '(row)', 'reason': 'malformed CSV record: ' || reason,
                        'value': text}}], 'rejected'
        FROM _malformed
    """)
    counts = dict(con.execute("SELECT outcome, count(*) FROM _outcome GROUP BY 1").fetchall())
    total_problems = con.execute("SELECT coalesce(sum(len(problems)), 0) FROM _outcome").fetchone()[
        0
    ]
    listed = con.execute(f"""
        SELECT _row, p.column, p.value, p.reason FROM
          (SELECT _row, unnest(problems) AS p FROM _outcome WHERE outcome = 'rejected')
        ORDER BY _row LIMIT {MAX_LISTED}
    """).fetchall()
    return IngestReport(
        table=schema.name,
        path=str(path),
        read=read,
        loaded=int(counts.get("load", 0)),
        rejected=int(counts.get("rejected", 0)),
        duplicates=int(counts.get("duplicate", 0)),
        problems=tuple(Problem(int(r), c, v, reason) for r, c, v, reason in listed),
        problem_count=int(total_problems),
        ignored_columns=tuple(ignored),
    )


def _has(con, name: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND NOT internal", [name]
    ).fetchone()[0]
    return bool(found) or bool(
        con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchone()[
            0
        ]
    )


def _key_text(schema: TableSchema, alias: str) -> str:
    return " || ', ' || ".join(f"CAST({alias}.{q(k)} AS VARCHAR)" for k in schema.key)


def _load(con, wh: Warehouse, schema: TableSchema, *, every_row: bool, target: str | None) -> None:
    """Append the rows marked ``load``, in file order. When every row loads (the common case)
    the typed table is already in file order and no join or sort is needed."""
    cols = ", ".join(q(c) for c in schema.names)
    select = (
        f"SELECT {cols} FROM _typed"
        if every_row
        else f"SELECT {cols} FROM _typed JOIN _outcome USING (_row) WHERE outcome = 'load' "
        "ORDER BY _row"
    )
    if target is not None:
        wh.append(schema.name, arrow_schema(schema, wh.scale).empty_table())  # creates it
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"INSERT INTO {q(target)}.main.{q(schema.name)} ({cols}) {select}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return
    rows = con.execute(select).fetch_arrow_table()
    if rows.num_rows:
        wh.append(schema.name, rows.cast(arrow_schema(schema, wh.scale)))


def _write_rejects(con, present: list[str], target: Path) -> Path:
    """Write invalid rows (original text plus a ``reason`` column) to a temp file beside
    ``target``; the caller renames it into place once the load has committed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    raw_cols = ", ".join(f"{q('_raw_' + c)} AS {q(c)}" for c in present)
    nulls = ", ".join(f"NULL AS {q(c)}" for c in present)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    # A malformed record cannot be split into the columns: its text goes in the reason.
    con.execute(f"""
        COPY (
          SELECT * FROM (
            SELECT t._row AS row, {raw_cols},
                   array_to_string(list_transform(o.problems, p -> p.column || ': ' || p.reason),
                                   '; ') AS reason
            FROM _raw_text t JOIN _outcome o USING (_row) WHERE o.outcome = 'rejected'
            UNION ALL
            SELECT _row, {nulls}, 'malformed CSV record: ' || reason || ': ' || text FROM _malformed
          ) ORDER BY row
        ) TO {lit(str(tmp))} (HEADER, DELIMITER ',')
    """)
    return tmp


__all__ = ["IngestRejected", "IngestReport", "Malformed", "Problem", "ingest_file", "read_file"]
