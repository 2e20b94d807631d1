"""Validation rules of the event tables, written as SQL expressions over a staged file.

Each column of :mod:`tianping.events.schema` becomes a typed expression plus the problems that
make a value invalid, so a whole file is validated in one vectorised pass inside DuckDB. The
rules here are data (strings of SQL); :mod:`tianping.warehouse.ingest` runs them.

Accepted values (documented for users in ``docs/data.md``):

- money: a plain decimal with at most the currency's places (``12.34``), >= 0; from Parquet,
  decimals and integers as they are, floats when they round exactly to the currency's places.
- int: a whole number (``4``; ``4.0`` from a float column), within the column's range.
- timestamp: ISO 8601 — ``2024-06-18``, ``2024-06-18T10:00``, ``2024-06-18 10:00:00.123``, with
  an optional ``Z`` or ``±HH:MM`` offset. Without an offset the time is in ``--tz`` (UTC by
  default). Stored as UTC.
- date: ``YYYY-MM-DD``.
- bool: true/false, t/f, yes/no, 1/0 (any case).
- enum: one of the listed choices (exact).
"""

from __future__ import annotations

from dataclasses import dataclass

from tianping.events.schema import Column

ISO_TS = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?$"
HAS_OFFSET = r"\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?\s*(Z|[+-]\d{2}(:?\d{2})?)$"
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
DECIMAL = r"^[+-]?(\d+(\.\d*)?|\.\d+)$"
INTEGER = r"^[+-]?\d+$"
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
MONEY_PRECISION = 18


@dataclass(frozen=True, slots=True)
class ColumnSQL:
    """How one column is typed and checked in SQL.

    Attributes:
        value: expression of the stored, typed value (NULL when missing or invalid).
        checks: (condition, reason) pairs; a true condition is a problem with that reason.
        raw: expression of the input value as text, for error messages and reject files.
    """

    value: str
    checks: tuple[tuple[str, str], ...]
    raw: str


def q(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def column_sql(col: Column, source_type: str | None, *, scale: int, tz: str) -> ColumnSQL:
    """Typed value and checks for ``col`` read from a source column of DuckDB type ``source_type``.

    ``source_type`` is None when the file lacks the (optional) column: the value is NULL.
    """
    if source_type is None:
        return ColumnSQL(f"CAST(NULL AS {duckdb_type(col.kind, scale)})", (), "NULL")
    src = q(col.name)
    text = _text(f"CAST({src} AS VARCHAR)")
    is_text = source_type.upper() in ("VARCHAR", "JSON")
    builder = {
        "money": _money,
        "int": _int,
        "timestamp": _timestamp,
        "date": _date,
        "bool": _bool,
        "enum": _enum,
        "string": _string,
    }[col.kind]
    value, checks = builder(col, src, text, source_type.upper(), is_text, scale=scale, tz=tz)
    value = f"CAST({value} AS {duckdb_type(col.kind, scale)})"
    # Typed sources (Parquet) are missing only when NULL; casting them to text would cost a
    # string per row. Text is missing when empty or blank too.
    absent = f"{text} IS NULL" if is_text else f"{src} IS NULL"
    missing = ((absent, "missing value"),) if col.required else ()
    range_checks = _range_checks(col, value)
    return ColumnSQL(value, missing + checks + range_checks, text)


def _text(value: str) -> str:
    """``value`` without the blanks around it, NULL when nothing is left.

    DuckDB's TRIM copies every string it is given (a tenth of a microsecond per value); a
    value that is all ASCII (as many bytes as characters) and neither starts nor ends with a
    space is its own trim (TRIM removes Unicode space separators, and the only ASCII one is the
    space), so only the other values are trimmed.
    """
    return (
        f"CASE WHEN {value} = '' THEN NULL "
        f"WHEN strlen({value}) = length({value}) AND NOT starts_with({value}, ' ') "
        f"AND NOT ends_with({value}, ' ') THEN {value} "
        f"ELSE NULLIF(TRIM({value}), '') END"
    )


def duckdb_type(kind: str, scale: int) -> str:
    """The DuckDB type a column kind is stored as."""
    return {
        "money": f"DECIMAL({MONEY_PRECISION},{scale})",
        "int": "BIGINT",
        "timestamp": "TIMESTAMP",
        "date": "DATE",
        "bool": "BOOLEAN",
        "enum": "VARCHAR",
        "string": "VARCHAR",
    }[kind]


def _range_checks(col: Column, value: str) -> tuple[tuple[str, str], ...]:
    checks = []
    if col.minimum is not None:
        checks.append((f"{value} < {col.minimum}", f"must be >= {col.minimum:g}"))
    if col.maximum is not None:
        checks.append((f"{value} > {col.maximum}", f"must be <= {col.maximum:g}"))
    return tuple(checks)


def _money(col, src, text, stype, is_text, *, scale, tz):
    dec = f"DECIMAL({MONEY_PRECISION},{scale})"
    limit = 10 ** (MONEY_PRECISION - scale)
    if is_text:
        frac = f"length(split_part({text}, '.', 2))"
        bad_number = f"{text} IS NOT NULL AND NOT regexp_full_match({text}, {lit(DECIMAL)})"
        ok = f"regexp_full_match({text}, {lit(DECIMAL)})"
        too_fine = f"{ok} AND {frac} > {scale}"
        too_big = f"{ok} AND {frac} <= {scale} AND abs(TRY_CAST({text} AS DOUBLE)) >= {limit}"
        value = (
            f"CASE WHEN {ok} AND {frac} <= {scale} AND abs(TRY_CAST({text} AS DOUBLE)) < {limit} "
            f"THEN CAST({text} AS {dec}) END"
        )
    elif stype.startswith(("FLOAT", "DOUBLE", "REAL")):
        rounded = f"round({src}, {scale})"
        bad_number = f"{src} IS NOT NULL AND (isnan({src}) OR isinf({src}))"
        too_fine = f"NOT ({bad_number}) AND abs({src} - {rounded}) > 1e-6"
        too_big = f"NOT ({bad_number}) AND abs({src}) >= {limit}"
        value = (
            f"CASE WHEN NOT ({bad_number}) AND NOT ({too_fine}) AND abs({src}) < {limit} "
            f"THEN CAST({rounded} AS {dec}) END"
        )
    elif stype.startswith(
        (
            "DECIMAL",
            "TINYINT",
            "SMALLINT",
            "INTEGER",
            "BIGINT",
            "HUGEINT",
            "UTINYINT",
            "USMALLINT",
            "UINTEGER",
            "UBIGINT",
        )
    ):
        bad_number = "FALSE"
        too_fine = f"{src} IS NOT NULL AND TRY_CAST({src} AS {dec}) IS NOT NULL AND TRY_CAST({src} AS {dec}) <> {src}"
        too_big = f"{src} IS NOT NULL AND abs(CAST({src} AS DOUBLE)) >= {limit}"
        value = f"CASE WHEN NOT ({too_fine}) AND NOT ({too_big}) THEN TRY_CAST({src} AS {dec}) END"
    else:
        return "NULL", ((f"{src} IS NOT NULL", f"a {stype} column cannot hold money"),)
    checks = (
        (bad_number, "not a number"),
        (too_fine, f"more than {scale} decimal places"),
        (too_big, "amount too large"),
    )
    return value, checks


def _int(col, src, text, stype, is_text, *, scale, tz):
    if is_text:
        ok = f"regexp_full_match({text}, {lit(INTEGER)})"
        value = f"CASE WHEN {ok} THEN TRY_CAST({text} AS BIGINT) END"
        bad = f"{text} IS NOT NULL AND NOT ({ok} AND TRY_CAST({text} AS BIGINT) IS NOT NULL)"
    elif stype.startswith(("FLOAT", "DOUBLE", "REAL", "DECIMAL")):
        bad = f"{src} IS NOT NULL AND (CAST({src} AS DOUBLE) <> floor(CAST({src} AS DOUBLE)) OR isinf(CAST({src} AS DOUBLE)) OR isnan(CAST({src} AS DOUBLE)))"
        value = f"CASE WHEN NOT ({bad}) THEN TRY_CAST({src} AS BIGINT) END"
    elif "INT" in stype:
        bad = "FALSE"
        value = f"CAST({src} AS BIGINT)"
    else:
        return "NULL", ((f"{src} IS NOT NULL", f"a {stype} column cannot hold whole numbers"),)
    return value, ((bad, "not a whole number"),)


def _utc(naive_local: str, tz: str) -> str:
    if tz.upper() == "UTC":
        return naive_local
    return f"timezone('UTC', timezone({lit(tz)}, {naive_local}))"


def _timestamp(col, src, text, stype, is_text, *, scale, tz):
    if is_text:
        iso = f"regexp_full_match({text}, {lit(ISO_TS)})"
        offset = f"regexp_matches({text}, {lit(HAS_OFFSET)})"
        with_offset = f"timezone('UTC', TRY_CAST({text} AS TIMESTAMPTZ))"
        local = _utc(f"TRY_CAST({text} AS TIMESTAMP)", tz)
        value = f"CASE WHEN NOT {iso} THEN NULL WHEN {offset} THEN {with_offset} ELSE {local} END"
        bad_form = f"{text} IS NOT NULL AND NOT {iso}"
        bad_value = f"{text} IS NOT NULL AND {iso} AND ({value}) IS NULL"
        return value, (
            (bad_form, "not an ISO 8601 timestamp"),
            (bad_value, "not a valid date/time"),
        )
    if stype.startswith("TIMESTAMP WITH TIME ZONE") or stype == "TIMESTAMPTZ":
        return f"timezone('UTC', {src})", ()
    if stype.startswith("TIMESTAMP"):
        return _utc(f"CAST({src} AS TIMESTAMP)", tz), ()
    if stype == "DATE":
        return _utc(f"CAST({src} AS TIMESTAMP)", tz), ()
    return "NULL", ((f"{src} IS NOT NULL", f"a {stype} column cannot hold timestamps"),)


def _date(col, src, text, stype, is_text, *, scale, tz):
    if is_text:
        ok = f"regexp_full_match({text}, {lit(ISO_DATE)})"
        value = f"CASE WHEN {ok} THEN TRY_CAST({text} AS DATE) END"
        bad_form = f"{text} IS NOT NULL AND NOT {ok}"
        bad_value = f"{text} IS NOT NULL AND {ok} AND TRY_CAST({text} AS DATE) IS NULL"
        return value, (
            (bad_form, "not an ISO 8601 date (YYYY-MM-DD)"),
            (bad_value, "not a valid date"),
        )
    if stype == "DATE":
        return src, ()
    if stype.startswith("TIMESTAMP"):
        bad = f"{src} IS NOT NULL AND CAST({src} AS TIMESTAMP) <> CAST(CAST({src} AS DATE) AS TIMESTAMP)"
        return f"CAST({src} AS DATE)", ((bad, "has a time of day; expected a date"),)
    return "NULL", ((f"{src} IS NOT NULL", f"a {stype} column cannot hold dates"),)


def _bool(col, src, text, stype, is_text, *, scale, tz):
    if stype == "BOOLEAN":
        return src, ()
    words_true = ", ".join(lit(w) for w in TRUE_WORDS)
    words_false = ", ".join(lit(w) for w in FALSE_WORDS)
    low = f"lower({text})"
    value = (
        f"CASE WHEN {low} IN ({words_true}) THEN TRUE WHEN {low} IN ({words_false}) THEN FALSE END"
    )
    bad = f"{text} IS NOT NULL AND ({value}) IS NULL"
    return value, ((bad, "not true/false"),)


def _enum(col, src, text, stype, is_text, *, scale, tz):
    choices = ", ".join(lit(c) for c in col.choices)
    value = f"CASE WHEN {text} IN ({choices}) THEN {text} END"
    bad = f"{text} IS NOT NULL AND {text} NOT IN ({choices})"
    return value, ((bad, f"must be one of {', '.join(col.choices)}"),)


def _string(col, src, text, stype, is_text, *, scale, tz):
    return text, ()
