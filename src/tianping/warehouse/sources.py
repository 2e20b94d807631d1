"""Sources: where each event table of a marketplace's own warehouse already lives (no I/O).

A sources file maps the logical tables of ``docs/data.md`` (orders, refunds, reviews, nps,
activity, exposures) onto what the user already has — a table or view, Parquet or CSV files
(a glob, Hive-partitioned folders included), or a SQL query — with the column names, casts,
the time zone of naive timestamps and the unit of money. tianping then reads those tables in
place (:mod:`tianping.warehouse.mapped`); nothing is copied.

>>> spec = parse_sources({"timezone": "Asia/Shanghai", "tables": {"orders": {
...     "table": "shop.orders", "columns": {"buyer_id": "user_id",
...     "amount": {"column": "paid_fen", "money": "minor"}}}}})
>>> spec.tables["orders"].column("amount").column, spec.tables["orders"].column("amount").money
('paid_fen', 'minor')
>>> spec.tables["orders"].column("order_id").column   # unmapped columns keep their names
'order_id'
>>> spec.tables["orders"].zone(spec.tables["orders"].column("created_at"), spec)
'Asia/Shanghai'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tianping import inputs, yamldoc
from tianping.errors import InvalidInput, UsageError
from tianping.events.schema import TABLES, Column

#: What a ``cast:`` may name: the source column is converted to this type before the checks.
CASTS = ("string", "int64", "float64", "decimal", "boolean", "timestamp", "date")
_CAST = re.compile(
    r"^(string|int64|float64|boolean|timestamp|date|decimal(\(\d{1,2},\s*\d{1,2}\))?)$"
)
MoneyUnit = Literal["major", "minor"]


def _plain_text(*, multiline: bool = False):
    def check(value: str) -> str:
        try:
            return inputs.text(value, field="value", max_length=100_000, multiline=multiline)
        except InvalidInput as exc:  # Pydantic names the key itself
            raise ValueError(exc.message.removeprefix("value: ")) from None

    return AfterValidator(check)


#: A name or path on one line, without control characters.
Line = Annotated[str, _plain_text()]
#: A query: several lines allowed, no other control characters.
Query = Annotated[str, _plain_text(multiline=True)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_zone(value: str | None) -> str | None:
    """An IANA time zone name, checked against the zone database Python ships with."""
    if value is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai or UTC)"
        ) from None
    return value


class ColumnSource(_Model):
    """Where one logical column comes from.

    Attributes:
        column: the source column's name (default: the logical name).
        cast: convert the source column to this type first (``int64``, ``decimal(18,2)``, …).
        money: ``major`` (12.34) or ``minor`` (1234) units; money columns only.
        timezone: IANA zone of naive timestamps in this column; timestamp columns only.
    """

    column: Line | None = Field(default=None, min_length=1, max_length=200)
    cast: str | None = None
    money: MoneyUnit | None = None
    timezone: str | None = Field(default=None, min_length=1, max_length=64)

    _zone = field_validator("timezone")(_known_zone)

    @field_validator("cast")
    @classmethod
    def _known_cast(cls, value: str | None) -> str | None:
        if value is not None and not _CAST.match(value.strip().lower()):
            raise ValueError(f"cast must be one of {', '.join(CASTS)} (decimal(P,S) allowed)")
        return None if value is None else value.strip().lower()


class CurrencySource(_Model):
    """The column holding each row's ISO 4217 currency code."""

    column: Line = Field(min_length=1, max_length=200)


class TableSource(_Model):
    """One logical table: exactly one of ``table``, ``path`` or ``sql``, and its columns.

    Attributes:
        table: a table or view, optionally qualified (``schema.table``, ``catalog.schema.table``).
        path: Parquet or CSV files: a file, a folder, or a glob (``/lake/orders/**/*.parquet``).
        format: ``parquet`` or ``csv`` (default from the path's suffix; folders are Parquet).
        hive_partitioning: read ``key=value`` folder names as columns (DuckDB; Spark always does).
        sql: a query on the warehouse whose result is the table.
        columns: logical column → source column name or :class:`ColumnSource`.
        money: the unit of this table's money columns (default: the file's ``money``).
        timezone: the zone of this table's naive timestamps (default: the file's ``timezone``).
        currency: a constant ISO 4217 code, or ``{column: NAME}``.
    """

    table: Line | None = Field(default=None, min_length=1, max_length=500)
    path: Line | None = Field(default=None, min_length=1, max_length=4000)
    format: Literal["parquet", "csv"] | None = None
    hive_partitioning: bool = False
    sql: Query | None = Field(default=None, min_length=1, max_length=100_000)
    columns: dict[str, ColumnSource] = Field(default_factory=dict)
    money: MoneyUnit | None = None
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    currency: str | CurrencySource | None = None

    _zone = field_validator("timezone")(_known_zone)

    @field_validator("columns", mode="before")
    @classmethod
    def _names_are_columns(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"column": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _one_origin(self) -> TableSource:
        given = [k for k in ("table", "path", "sql") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of table, path or sql"
                + (f" (found {', '.join(given)})" if given else "")
            )
        if self.path is None and (self.format is not None or self.hive_partitioning):
            raise ValueError("format and hive_partitioning apply to path only")
        return self

    @property
    def origin(self) -> str:
        """What the table is read from, for messages: ``table shop.orders``, ``path …``, ``sql``."""
        if self.table is not None:
            return f"table {self.table}"
        if self.path is not None:
            return f"path {self.path}"
        return "a sql query"

    @property
    def file_format(self) -> str:
        """``parquet`` or ``csv`` for a ``path`` source."""
        if self.format:
            return self.format
        suffix = Path(str(self.path).rstrip("/*")).suffix.lower()
        return "csv" if suffix in (".csv", ".tsv") or str(self.path).endswith(".csv") else "parquet"

    def column(self, name: str) -> ColumnSource:
        """How logical column ``name`` is read (its own name when the file does not map it)."""
        given = self.columns.get(name)
        if given is None:
            return ColumnSource(column=name)
        return given if given.column else given.model_copy(update={"column": name})

    def zone(self, col: ColumnSource, spec: SourcesSpec) -> str | None:
        """The zone naive timestamps of ``col`` are in: its own, the table's, then the file's."""
        return col.timezone or self.timezone or spec.timezone

    def unit(self, col: ColumnSource, spec: SourcesSpec) -> str:
        """The money unit of ``col``: its own, the table's, then the file's (``major``)."""
        return col.money or self.money or spec.money


class SourcesSpec(_Model):
    """A whole sources file.

    Attributes:
        timezone: the zone of naive timestamps everywhere, unless a table or column says
            otherwise; with none declared, a naive timestamp column is an error.
        money: the unit of money columns everywhere, unless a table or column says otherwise.
        currency: a constant ISO 4217 code for every table (must be tianping's currency).
        tables: logical table name → :class:`TableSource`.
    """

    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    money: MoneyUnit = "major"
    currency: str | None = None
    tables: dict[str, TableSource]

    _zone = field_validator("timezone")(_known_zone)

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, tables: dict[str, TableSource]) -> dict[str, TableSource]:
        for name, source in tables.items():
            if name not in TABLES:
                raise ValueError(
                    f"unknown table {name!r}{yamldoc.suggest(name, TABLES)}; "
                    f"tables are: {', '.join(TABLES)}"
                )
            schema = TABLES[name]
            for logical, col in source.columns.items():
                if logical not in schema.names:
                    raise ValueError(
                        f"{name}.{logical}: {name} has no column {logical!r}"
                        f"{yamldoc.suggest(logical, schema.names)}; its columns are: "
                        f"{', '.join(schema.names)}"
                    )
                _check_column_options(name, schema.column(logical), col)
        if not tables:
            raise ValueError("map at least one table")
        return tables


def _check_column_options(table: str, col: Column, given: ColumnSource) -> None:
    if given.money is not None and col.kind != "money":
        raise ValueError(f"{table}.{col.name}: money applies to money columns only")
    if given.timezone is not None and col.kind != "timestamp":
        raise ValueError(f"{table}.{col.name}: timezone applies to timestamp columns only")


def parse_sources(data: Any, *, source: str = "sources", text: str | None = None) -> SourcesSpec:
    """Validate a sources definition; errors name the key and, given ``text``, its line.

    Raises:
        InvalidInput: a key is unknown, missing or invalid.
    """
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: expected a mapping with a 'tables' key", field=source)
    try:
        return SourcesSpec.model_validate(data)
    except ValidationError as exc:
        raise yamldoc.validation_error(
            exc.errors(), model=SourcesSpec, source=source, text=text
        ) from None


def read_sources(path: str | Path) -> SourcesSpec:
    """Read and validate a sources file (YAML).

    Raises:
        UsageError: the file does not exist or cannot be read.
        InvalidInput: the file is not valid YAML or not a valid sources definition.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise UsageError(f"--sources: cannot read {path}: {why}", field="sources") from None
    data = yamldoc.read(text, source=str(path), strict=True)
    return parse_sources(data, source=str(path), text=text)
