"""The user's own tables as tianping's event tables: Ibis expressions over a sources file.

Each mapped table becomes one projection over the source — renamed columns, casts, money in
the currency's exact decimal, timestamps as naive UTC — so every analysis built on
:meth:`tianping.warehouse.Warehouse.table` reads the source in place, on whatever engine holds
it. Whatever does not fit (a missing column, a type that cannot hold the value, naive
timestamps with no declared zone, a string amount) is collected as a :class:`Problem`, all at
once, before anything runs.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.datatypes as dt

from tianping.errors import InvalidInput
from tianping.events.schema import TABLES, Column
from tianping.warehouse.sources import SourcesSpec, TableSource

MONEY_PRECISION = 18
#: Engines whose SQL has ``timezone(zone, timestamp)`` with PostgreSQL's meaning.
_TIMEZONE_FUNCTION = ("duckdb", "postgres")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing in the sources that does not fit: ``table.column: what is wrong``."""

    table: str
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"{where}: {self.message}"


class SourcesInvalid(InvalidInput):
    """The sources do not fit the event tables; every problem is listed, one per line."""

    code = "sources_invalid"

    def __init__(self, problems: list[Problem], *, source: str):
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        count = len(self.problems)
        super().__init__(
            f"{source}: {count} problem{'s' if count != 1 else ''} in the sources; nothing was "
            f"read:\n{lines}",
            field=str(self.problems[0]).split(":", 1)[0] if self.problems else source,
        )


@dataclass(frozen=True)
class MappedTable:
    """One logical table read in place.

    Attributes:
        name: the logical table (``orders``).
        source: its entry in the sources file.
        typed: the table in the documented schema (what analyses read).
        raw: the same rows with logical names but the source's own types (after declared
            casts), for checking values by ingest's rules; money in minor units is already
            divided into major units here (a fraction of a minor unit stays visible).
        zones: logical timestamp column → the zone its naive values are in (None: tz-aware).
        currency: the source's currency column, when the currency is per row.
    """

    name: str
    source: TableSource
    typed: ibis.Table
    raw: ibis.Table
    zones: dict[str, str | None]
    currency: str | None


_NAIVE, _UTC = dt.Timestamp(), dt.Timestamp(timezone="UTC")


@ibis.udf.scalar.builtin(name="timezone", signature=((dt.string, _NAIVE), _UTC))
def _zone_to_instant(zone, ts):
    """PostgreSQL/DuckDB ``timezone(zone, timestamp)``: a local time read in ``zone``."""


@ibis.udf.scalar.builtin(name="timezone", signature=((dt.string, _UTC), _NAIVE))
def _instant_to_utc(zone, ts):
    """PostgreSQL/DuckDB ``timezone('UTC', timestamptz)``: the instant as a naive UTC time."""


@ibis.udf.scalar.builtin(name="to_utc_timestamp", signature=((_NAIVE, dt.string), _UTC))
def _spark_to_utc(ts, zone):
    """Spark's ``to_utc_timestamp(ts, zone)``: a local time in ``zone`` as UTC."""


def map_tables(
    con: Any, backend: str, spec: SourcesSpec, *, scale: int, currency: str
) -> tuple[dict[str, MappedTable], list[Problem]]:
    """Build every mapped table; the problems of all of them, not only the first.

    ``backend`` is Ibis's name of the engine (``duckdb``, ``postgres``, ``pyspark``, …);
    ``scale`` the currency's decimals and ``currency`` the marketplace's ISO 4217 code.
    """
    tables: dict[str, MappedTable] = {}
    problems: list[Problem] = []
    if spec.currency is not None and spec.currency.upper() != currency.upper():
        problems.append(Problem("sources", "currency", _other_currency(spec.currency, currency)))
    for name, source in spec.tables.items():
        mapped, found = _map_table(con, backend, spec, name, source, scale=scale, currency=currency)
        problems.extend(found)
        if mapped is not None and not found:
            tables[name] = mapped
    return tables, problems


def open_source(con: Any, backend: str, source: TableSource) -> ibis.Table:
    """The source as an Ibis table, untouched: a table or view, files, or a query.

    Raises:
        LookupError: the table, files or query cannot be read (message says why).
    """
    try:
        if source.table is not None:
            *db, table = source.table.split(".")
            database = None if not db else (db[0] if len(db) == 1 else tuple(db))
            return con.table(table, database=database)
        if source.path is not None:
            return _read_files(con, backend, source)
        return con.sql(source.sql)
    except LookupError:
        raise
    except Exception as exc:  # each engine raises its own: not found, no permission, bad SQL
        if type(exc).__name__ == "TableNotFound":
            raise LookupError("no such table or view on the warehouse") from None
        raise LookupError(_first_line(exc)) from None


def _read_files(con: Any, backend: str, source: TableSource) -> ibis.Table:
    path, fmt = str(source.path), source.file_format
    if backend not in ("duckdb", "pyspark"):
        raise LookupError(
            f"files are read in place on DuckDB or Spark; on {backend}, map a table or a sql query"
        )
    if backend == "duckdb":
        if "://" not in path and os.path.isdir(path):
            path = os.path.join(path, "**", f"*.{fmt}")
        if "://" not in path and not any(ch in path for ch in "*?[") and not os.path.exists(path):
            raise LookupError(f"no such file or folder {path}")
        options = {"hive_partitioning": True} if source.hive_partitioning else {}
        if fmt == "csv":
            return con.read_csv(path, **options)
        return con.read_parquet(path, **options)
    if "://" not in path and not any(ch in path for ch in "*?[") and not os.path.exists(path):
        raise LookupError(f"no such file or folder {path}")
    if fmt == "csv":
        return con.read_csv(path, header=True, inferSchema=True)
    return con.read_parquet(path)


def _map_table(
    con: Any,
    backend: str,
    spec: SourcesSpec,
    name: str,
    source: TableSource,
    *,
    scale: int,
    currency: str,
) -> tuple[MappedTable | None, list[Problem]]:
    schema = TABLES[name]
    try:
        base = open_source(con, backend, source)
        types = dict(base.schema().items())
        # CSV text has no zone: Spark's inferred timestamps are wall-clock times as written.
        spark_typed = backend == "pyspark" and not (source.path and source.file_format == "csv")
        instants = _spark_instants(con, base) if spark_typed else set()
    except LookupError as exc:
        return None, [Problem(name, None, f"cannot read {source.origin}: {exc}")]
    problems: list[Problem] = []
    typed: dict[str, ibis.Value] = {}
    raw: dict[str, ibis.Value] = {}
    zones: dict[str, str | None] = {}
    for col in schema.columns:
        given = source.column(col.name)
        src_name = str(given.column)
        if src_name not in types:
            if col.required or col.name in source.columns:
                problems.append(Problem(name, col.name, _missing(src_name, col, types)))
            typed[col.name] = ibis.null().cast(_target(col, scale))
            raw[col.name] = ibis.null().cast(_target(col, scale))
            continue
        value = base[src_name]
        if given.cast is not None:
            try:
                value = value.cast(_cast_type(given.cast))
            except Exception as exc:  # Ibis refuses casts it knows cannot work
                problems.append(
                    Problem(name, col.name, f"cannot cast to {given.cast}: {_first_line(exc)}")
                )
                continue
        try:
            out, raw_value, zone = _convert(
                col,
                value,
                backend,
                instant=src_name in instants and given.cast is None,
                zone=source.zone(given, spec),
                unit=source.unit(given, spec),
                scale=scale,
            )
        except _Unfit as exc:
            shown = f"{src_name} " if src_name != col.name else ""
            problems.append(Problem(name, col.name, f"{shown}{exc}"))
            continue
        typed[col.name] = out.name(col.name)
        raw[col.name] = raw_value.name(col.name)
        if col.kind == "timestamp":
            zones[col.name] = zone
    currency_column = _currency_column(name, source, types, currency, problems)
    if problems:
        return None, problems
    if currency_column is not None:
        raw["_currency"] = base[currency_column].cast("string")
    return MappedTable(
        name, source, base.select(**typed), base.select(**raw), zones, currency_column
    ), []


def _currency_column(
    name: str, source: TableSource, types: dict, currency: str, problems: list[Problem]
) -> str | None:
    given = source.currency
    if given is None:
        return None
    if isinstance(given, str):
        if given.upper() != currency.upper():
            problems.append(Problem(name, "currency", _other_currency(given, currency)))
        return None
    if given.column not in types:
        problems.append(Problem(name, "currency", _missing(given.column, None, types)))
        return None
    if not types[given.column].is_string():
        problems.append(
            Problem(
                name,
                "currency",
                f"{given.column} is {types[given.column]}, not text (ISO 4217 codes)",
            )
        )
        return None
    return given.column


def _other_currency(given: str, currency: str) -> str:
    return (
        f"amounts are in {given.upper()} but tianping's currency is {currency.upper()}; "
        "one marketplace has one currency (set `currency` in tianping.toml, or map the "
        f"{currency.upper()} rows with a sql query)"
    )


class _Unfit(Exception):
    """A source column whose type cannot hold the logical column's values."""


def _spark_instants(con: Any, base: ibis.Table) -> set[str]:
    """Columns Spark holds as instants (``TIMESTAMP``, not ``TIMESTAMP_NTZ``).

    Ibis shows both as a naive timestamp; Spark's own schema of the same query tells them
    apart (analysed only, nothing runs).
    """
    from pyspark.sql.types import TimestampType

    try:
        frame = con._session.sql(str(ibis.to_sql(base, dialect="pyspark")))
    except Exception as exc:  # the query does not analyse: the source cannot be read
        raise LookupError(_first_line(exc)) from None
    return {f.name for f in frame.schema.fields if isinstance(f.dataType, TimestampType)}


def _convert(
    col: Column,
    value: ibis.Value,
    backend: str,
    *,
    instant: bool = False,
    zone: str | None,
    unit: str,
    scale: int,
) -> tuple[ibis.Value, ibis.Value, str | None]:
    """(typed value, value to check by ingest's rules, zone of naive timestamps)."""
    t = value.type()
    kind = col.kind
    if kind in ("string", "enum"):
        if t.is_string():
            return value, value, None
        if t.is_integer():
            return value.cast("string"), value, None
        raise _Unfit(f"is {t}; {kind} columns need text (or whole-number ids)")
    if kind == "money":
        return _money(value, t, backend, unit=unit, scale=scale)
    if kind == "timestamp":
        if instant:  # Spark: already an instant, shown in the session's zone (UTC)
            return value, value, None
        return _timestamp(value, t, backend, zone=zone)
    if kind == "date":
        if t.is_date():
            return value, value, None
        if t.is_timestamp():
            return value.date(), value, None
        raise _Unfit(f"is {t}; a date column needs a date or timestamp (or declare `cast: date`)")
    if kind == "int":
        if t.is_integer() or t.is_floating() or t.is_decimal():
            return value.cast("int64"), value, None
        raise _Unfit(f"is {t}; a whole-number column needs a number (or declare `cast: int64`)")
    if kind == "bool":
        if t.is_boolean():
            return value, value, None
        if t.is_integer():
            return value.cast("boolean"), value, None
        raise _Unfit(f"is {t}; a true/false column needs a boolean (or declare `cast: boolean`)")
    raise _Unfit(f"has an unknown kind {kind}")


def _money(value: ibis.Value, t: dt.DataType, backend: str, *, unit: str, scale: int):
    target = dt.Decimal(MONEY_PRECISION, scale)
    if t.is_string():
        raise _Unfit(
            f"is text ({t}); amounts must be a number column — map a numeric column, or "
            "declare `cast: decimal(18,2)` if every value is a plain decimal"
        )
    if not (t.is_integer() or t.is_decimal() or t.is_floating()):
        raise _Unfit(f"is {t}; amounts must be a number column")
    if unit == "minor":
        whole = value.round(0) if t.is_floating() else value
        if scale == 0:
            major = whole.cast(dt.Decimal(MONEY_PRECISION, 0))
        elif backend == "duckdb" and scale == 2:  # DECIMAL(18,0) x (3,2) stays 64-bit: 100x cheaper
            step = ibis.literal(Decimal(1).scaleb(-scale), type=dt.Decimal(scale + 1, scale))
            major = _duckdb_times(whole.cast(dt.Decimal(MONEY_PRECISION, 0)), step)
        else:
            wide = dt.Decimal(38, scale)  # one type for both factors: exact on every engine
            step = ibis.literal(Decimal(1).scaleb(-scale), type=wide)
            major = whole.cast(wide) * step
        shown = value / 10**scale if t.is_floating() else major
        return major.cast(target), shown, None
    if t.is_floating():
        return value.round(scale).cast(target), value, None
    return value.cast(target), value, None


def _timestamp(value: ibis.Value, t: dt.DataType, backend: str, *, zone: str | None):
    if t.is_date():
        value, t = value.cast("timestamp"), dt.Timestamp()
    if not t.is_timestamp():
        raise _Unfit(f"is {t}; a timestamp column needs a timestamp (or declare `cast: timestamp`)")
    if t.timezone is not None:  # an instant: the session runs in UTC, so the cast gives UTC
        return value.cast(dt.Timestamp()), value, None
    if zone is None:
        raise _Unfit(
            f"holds naive timestamps ({t}, no time zone): declare the zone they are in with "
            "`timezone:` (e.g. Asia/Shanghai, or UTC) for the column, the table or the file"
        )
    if zone.upper() == "UTC":
        return value, value, "UTC"
    if backend in _TIMEZONE_FUNCTION:
        exact = _instant_to_utc("UTC", _zone_to_instant(zone, value))
    elif backend == "pyspark":
        exact = _spark_to_utc(value, zone).cast(dt.Timestamp())
    else:
        raise _Unfit(
            f"holds naive timestamps in {zone}; on {backend} tianping converts only UTC — "
            "convert them in a sql query"
        )
    offset = fixed_offset(zone)
    if offset is None:
        return exact, value, zone
    # The engine's zone rules cost ~10x a subtraction; in 2000-2100 this zone's offset never
    # changes, so those rows are shifted by it and only rows outside ask the zone rules.
    inside = (value >= ibis.timestamp(FIXED_FROM)) & (value < ibis.timestamp(FIXED_TO))
    shifted = value - ibis.interval(seconds=offset)
    return ibis.ifelse(inside, shifted, exact), value, zone


@ibis.udf.scalar.builtin(
    name="multiply",
    signature=((dt.Decimal(MONEY_PRECISION, 0), dt.Decimal(3, 2)), dt.Decimal(MONEY_PRECISION, 2)),
)
def _duckdb_times(a, b):
    """DuckDB's ``multiply``: ``*`` with the operand types as given (no widening by Ibis)."""


#: The span in which :func:`fixed_offset` looks for changes of a zone's offset.
FIXED_FROM, FIXED_TO = "2000-01-01", "2100-01-01"


@functools.lru_cache(maxsize=64)
def fixed_offset(zone: str) -> int | None:
    """Seconds ``zone`` is ahead of UTC if that never changes in 2000–2100, else None.

    >>> fixed_offset("Asia/Shanghai"), fixed_offset("Asia/Kolkata"), fixed_offset("Europe/Paris")
    (28800, 19800, None)
    """
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    day = datetime.fromisoformat(FIXED_FROM)
    end = datetime.fromisoformat(FIXED_TO)
    first = day.replace(tzinfo=tz).utcoffset()
    while day < end:  # daily: no zone has kept an offset for less than a day
        if day.replace(tzinfo=tz).utcoffset() != first:
            return None
        day += timedelta(days=1)
    return int(first.total_seconds())


def _target(col: Column, scale: int) -> dt.DataType:
    return {
        "string": dt.string,
        "enum": dt.string,
        "money": dt.Decimal(MONEY_PRECISION, scale),
        "timestamp": dt.Timestamp(),
        "date": dt.date,
        "int": dt.int64,
        "bool": dt.boolean,
    }[col.kind]


def _cast_type(name: str) -> dt.DataType:
    return dt.dtype(name)


def _missing(src: str, col: Column | None, types: dict) -> str:
    close = ", ".join(sorted(types)[:20])
    from tianping.yamldoc import suggest

    mapped = "" if col is None or src == col.name else " (mapped in the sources)"
    return f"no column {src!r} in the source{mapped}{suggest(src, types)}; it has: {close}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
