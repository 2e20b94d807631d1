"""One small interface over the two warehouse engines.

Analyses are Ibis expressions built from :meth:`Warehouse.table` and run unchanged on DuckDB
and Spark. Writes go through :meth:`Warehouse.append`, which takes an Arrow table already in
the documented schema (see :mod:`tianping.events.schema`).

On DuckDB the event tables are real tables in one database file. On Spark each event table is
a folder of Parquet files under ``<home>/spark/<table>/`` registered as a view at connect time,
so data survives between sessions without a Hive metastore; on a cluster, point ``home`` at a
shared file system.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import warnings
import weakref
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa

from tianping.errors import UsageError
from tianping.events.schema import TABLES, TableSchema
from tianping.settings import Settings, make_home, redact_url
from tianping.warehouse.mapped import MappedTable, SourcesInvalid, map_tables
from tianping.warehouse.sources import read_sources

MONEY_PRECISION = 18
#: Per Spark session: view name -> (folder, its Parquet files) as last registered.
_SPARK_VIEWS: weakref.WeakKeyDictionary[Any, dict[str, tuple[str, tuple[str, ...]]]] = (
    weakref.WeakKeyDictionary()
)


def arrow_type(kind: str, scale: int = 2) -> pa.DataType:
    """The Arrow type a column kind is stored as."""
    return {
        "string": pa.string(),
        "enum": pa.string(),
        "money": pa.decimal128(MONEY_PRECISION, scale),
        "timestamp": pa.timestamp("us"),
        "date": pa.date32(),
        "int": pa.int64(),
        "bool": pa.bool_(),
    }[kind]


def arrow_schema(table: TableSchema, scale: int = 2) -> pa.Schema:
    """Arrow schema of an event table as stored in the warehouse (timestamps naive UTC)."""
    return pa.schema([pa.field(c.name, arrow_type(c.kind, scale)) for c in table.columns])


def _with_optional_columns(table: TableSchema, schema: pa.Schema, data: pa.Table) -> pa.Table:
    """``data`` with every optional column it lacks added as nulls (required ones stay missing)."""
    for column in table.columns:
        if column.name not in data.column_names and not column.required:
            data = data.append_column(
                schema.field(column.name), pa.nulls(data.num_rows, schema.field(column.name).type)
            )
    return data


def _add_new_columns(raw: Any, name: str, view: str) -> None:
    """Add to DuckDB table ``name`` the columns of ``view`` it does not have yet."""
    have = {r[0] for r in raw.execute(f'DESCRIBE "{name}"').fetchall()}
    for column, kind, *_ in raw.execute(f"DESCRIBE {view}").fetchall():
        if column not in have:
            raw.execute(f'ALTER TABLE "{name}" ADD COLUMN "{column}" {kind}')


class Warehouse:
    """An Ibis connection plus the few writes tianping needs.

    With ``mapped`` tables (a sources file), those tables are the user's own, read in place;
    the others are tianping's own tables on the same connection, as without sources.
    """

    def __init__(
        self,
        con: Any,
        kind: str,
        *,
        spark_root: Path | None = None,
        scale: int = 2,
        mapped: dict[str, MappedTable] | None = None,
        sources: str = "",
    ):
        self.con = con
        self.kind = kind
        self.scale = scale
        self._spark_root = spark_root
        self.mapped = dict(mapped or {})
        self.sources = sources

    # -- reading -----------------------------------------------------------------
    def has_table(self, name: str) -> bool:
        """Whether the warehouse holds a loaded (or mapped) table ``name``."""
        if name in self.mapped:
            return True
        if self.kind == "ibis":
            return False
        return name in self.con.list_tables()

    def table(self, name: str) -> ibis.Table:
        """The Ibis table ``name``; an empty table in the documented schema if none was loaded."""
        if name in self.mapped:
            return self.mapped[name].typed
        if self.has_table(name):
            return self.con.table(name)
        if name in TABLES:
            return ibis.memtable(arrow_schema(TABLES[name], self.scale).empty_table())
        raise UsageError(f"no table {name!r} in the warehouse", field="table")

    def row_count(self, name: str) -> int:
        """The rows of table ``name`` (0 when it was never loaded)."""
        return int(self.table(name).count().execute()) if self.has_table(name) else 0

    def execute(self, expr: ibis.Expr):
        """Run an expression; returns pandas (tables) or a scalar."""
        return self.con.execute(expr)

    def to_arrow(self, expr: ibis.Table) -> pa.Table:
        """Run an expression and return its result as an Arrow table."""
        return self.con.to_pyarrow(expr)

    # -- writing -----------------------------------------------------------------
    def append(self, name: str, data: pa.Table) -> None:
        """Append rows (atomically on DuckDB); creates the table on first write.

        Optional columns of an event table that ``data`` lacks are stored empty; a table made
        before an optional column existed gains it (its earlier rows empty).
        """
        self.check_writable(name)
        schema = arrow_schema(TABLES[name], self.scale) if name in TABLES else data.schema
        if name in TABLES:
            data = _with_optional_columns(TABLES[name], schema, data)
        data = data.select(schema.names).cast(schema)
        if self.kind == "duckdb":
            self._duckdb_append(name, data)
        else:
            self._spark_append(name, data)

    def replace(self, name: str, data: pa.Table) -> None:
        """Replace a table's whole content (simulations, tests)."""
        self.drop(name)
        self.append(name, data)

    def check_writable(self, name: str) -> None:
        """Raise a :class:`UsageError` if tianping may not write table ``name`` here: it is
        mapped by the sources file, or the engine is one tianping only reads."""
        if name in self.mapped:
            raise UsageError(
                f"{name} is read in place from {self.mapped[name].source.origin} "
                f"({self.sources}); tianping never writes to your tables — load it where it "
                "lives, or run without --sources to use tianping's own warehouse",
                field="table",
            )
        if self.kind == "ibis":
            raise UsageError(
                f"tianping writes only to a DuckDB or Spark warehouse; {name} cannot be written "
                "to this one (it is read through the sources file)",
                field="warehouse",
            )

    def drop(self, name: str) -> None:
        """Remove table ``name`` and its data if it exists (Spark: its Parquet folder too)."""
        self.check_writable(name)
        if self.kind == "duckdb":
            self.con.raw_sql(f'DROP TABLE IF EXISTS "{name}"')
            return
        import shutil

        self.con._session.catalog.dropTempView(name)
        _SPARK_VIEWS.get(self.con._session, {}).pop(name, None)
        shutil.rmtree(self._spark_root / name, ignore_errors=True)

    def _duckdb_append(self, name: str, data: pa.Table) -> None:
        raw = self.con.con
        view = f"_tp_append_{uuid.uuid4().hex}"
        raw.register(view, data)
        try:
            raw.execute("BEGIN TRANSACTION")
            raw.execute(f'CREATE TABLE IF NOT EXISTS "{name}" AS SELECT * FROM {view} LIMIT 0')
            _add_new_columns(raw, name, view)
            raw.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM {view}')
            raw.execute("COMMIT")
        except Exception:
            raw.execute("ROLLBACK")
            raise
        finally:
            raw.unregister(view)

    def _spark_append(self, name: str, data: pa.Table) -> None:
        import pyarrow.parquet as pq

        folder = self._spark_root / name
        folder.mkdir(parents=True, exist_ok=True)
        # Write to a hidden temp name, then rename: readers never see a half-written file.
        final = folder / f"part-{uuid.uuid4().hex}.parquet"
        tmp = folder / f".{final.name}.tmp"
        pq.write_table(data, tmp)
        os.replace(tmp, final)
        self._register_spark(name)

    def _register_spark(self, name: str, *, reuse: bool = False) -> None:
        """Register the table's folder as a view. With ``reuse`` (on connect), a view this
        session already has over the same folder and the same files is kept: a long-lived
        process (the server, a notebook) does not list and re-read every table's Parquet
        footers for each page or call."""
        session = self.con._session
        folder = self._spark_root / name
        state = (str(folder), tuple(sorted(p.name for p in folder.glob("*.parquet"))))
        views = _SPARK_VIEWS.setdefault(session, {})
        if reuse and views.get(name) == state and session.catalog.tableExists(name):
            return
        # mergeSchema: files written before an optional column existed lack it (read as empty)
        session.read.option("mergeSchema", "true").parquet(str(folder)).createOrReplaceTempView(
            name
        )
        views[name] = state

    def close(self) -> None:
        """Release the connection (DuckDB: close the file; Spark keeps its shared session)."""
        if self.kind in ("duckdb", "ibis"):
            self.con.disconnect()


def connect(settings: Settings, *, write: bool = False) -> Warehouse:
    """Open the warehouse the settings name, with the sources file's tables mapped in place.

    ``write``: the caller will write tianping's own tables, so a DuckDB file that does not
    exist yet is created (a read with a sources file and no file reads in memory).

    Raises:
        SourcesInvalid: the sources do not fit the event tables (every problem listed).
    """
    scale = _scale(settings.currency)
    kind = settings.warehouse_kind
    if kind == "duckdb":
        wh = Warehouse(_connect_duckdb(settings, write=write), "duckdb", scale=scale)
    elif kind == "spark":
        wh = _connect_spark(settings, scale)
    else:
        wh = Warehouse(_connect_ibis(settings), "ibis", scale=scale)
    if settings.sources:
        try:
            _map_sources(wh, settings)
        except BaseException:
            wh.close()
            raise
    return wh


def _map_sources(wh: Warehouse, settings: Settings) -> None:
    spec = read_sources(settings.sources)
    mapped, problems = map_tables(
        wh.con, wh.con.name, spec, scale=wh.scale, currency=settings.currency
    )
    if problems:
        raise SourcesInvalid(problems, source=str(settings.sources))
    wh.mapped, wh.sources = mapped, str(settings.sources)


def _connect_ibis(settings: Settings):
    """Any engine Ibis reaches by URL (PostgreSQL, Trino, ClickHouse, …): read-only use."""
    url = settings.warehouse
    if url.startswith(("postgresql+psycopg://", "postgresql+psycopg2://")):
        url = "postgres://" + url.split("://", 1)[1]
    try:
        return ibis.connect(url)
    except Exception as exc:  # each engine has its own errors: refused, no such db, no extra
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"--warehouse: cannot connect to {redact_url(settings.warehouse)}: {first}",
            field="warehouse",
        ) from None


def _connect_duckdb(settings: Settings, *, write: bool = False):
    """The DuckDB file of the settings; the home folder is made for the default file only.

    With a sources file and no warehouse file yet, an in-memory database reads the files.
    """
    import duckdb

    path = settings.duckdb_path
    if (
        settings.sources
        and not write
        and settings.warehouse == "duckdb"
        and not Path(path).exists()
    ):
        path = ":memory:"
    if path != ":memory:":
        if settings.warehouse == "duckdb":
            make_home(settings.home)
        elif not Path(path).parent.is_dir():
            raise UsageError(
                f"--warehouse: the folder {Path(path).parent} does not exist (for {path}); "
                "create it first or correct the path",
                field="warehouse",
            )
    try:
        return ibis.duckdb.connect(path)
    except duckdb.Error as exc:  # not a DuckDB file, locked by another process, no permission
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"--warehouse: cannot open {path}: {first}", field="warehouse") from None


def _scale(currency: str) -> int:
    from tianping.money import exponent_of

    return exponent_of(currency)


def _connect_spark(settings: Settings, scale: int) -> Warehouse:
    session = spark_session(settings.spark_master, settings.spark_conf)
    root = settings.home.resolve() / "spark"
    if not settings.sources:  # read in place: nothing of tianping's own is made
        root.mkdir(parents=True, exist_ok=True)
    wh = Warehouse(ibis.pyspark.connect(session), "spark", spark_root=root, scale=scale)
    folders = root.iterdir() if root.is_dir() else ()
    for folder in sorted(p for p in folders if p.is_dir() and any(p.glob("*.parquet"))):
        wh._register_spark(folder.name, reuse=True)
    return wh


#: The SQL settings every tianping session runs with (portable results: UTC, ANSI off as the
#: analyses expect, few shuffle partitions for a marketplace's aggregates).
SESSION_SQL_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.ansi.enabled": "false",
}
_REMOTE: dict[str, Any] = {}


def spark_session(master: str, conf: dict[str, str] | None = None):
    """A SparkSession set up for portable results: UTC, small shuffles, temp dirs under /tmp.

    Spark allows one SparkContext per process, and its builder quietly hands back the open
    session whatever master it is asked for; so asking for another master than the open one is
    refused rather than answered from the wrong engine.

    Raises:
        UsageError: PySpark is not installed, or a session on another master is already open
            in this process.
    """
    try:
        from pyspark import SparkContext
        from pyspark.sql import SparkSession
    except ImportError:
        raise UsageError(
            "the Spark warehouse needs PySpark: pip install 'tianping[spark]'", field="warehouse"
        ) from None
    if master.startswith("sc://"):
        return _remote_session(master, conf or {})
    wanted = (conf or {}).get("spark.master", master)
    active = SparkContext._active_spark_context
    if active is not None and active.master != wanted:
        raise UsageError(
            f"--warehouse {wanted}: a Spark session on {active.master} is already open in this "
            "process, and Spark allows one per process; stop it first or run in a new process",
            field="warehouse",
        )
    scratch = Path(tempfile.gettempdir()) / "tianping-spark"
    builder = (
        SparkSession.builder.master(master)
        .appName("tianping")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .config("spark.local.dir", str(scratch / "local"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={scratch / 'derby'}")
    )
    for key, value in SESSION_SQL_CONF.items():
        builder = builder.config(key, value)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _remote_session(url: str, conf: dict[str, str]):
    """A session on a running Spark Connect server (``sc://host:port``), one per URL per
    process: the driver is the server's, so a command pays a connection, not a JVM start.

    Only runtime SQL settings can be set on a Connect session (tianping's own and the
    ``spark_conf`` ones); the server's resources are the server's.
    """
    import socket
    from urllib.parse import urlsplit

    open_one = _REMOTE.get(url)
    if open_one is not None and not getattr(open_one, "is_stopped", False):
        return open_one
    try:
        from pyspark.sql.connect.session import SparkSession as RemoteSession
    except ImportError as exc:  # grpcio and friends: pyspark's connect extra
        raise UsageError(
            f"--warehouse {url}: Spark Connect needs {exc.name or 'grpcio'}: "
            "pip install 'tianping[spark]'",
            field="warehouse",
        ) from None
    parts = urlsplit(url.split(";", 1)[0])
    try:  # the client retries an unreachable server for minutes; say so at once instead
        socket.create_connection((parts.hostname or "localhost", parts.port or 15002), 5).close()
    except OSError as exc:
        raise UsageError(
            f"--warehouse {url}: no Spark Connect server answers there ({exc.strerror or exc}); "
            "start one (docs/data.md, 'Spark Connect') or check the host and port",
            field="warehouse",
        ) from None
    session = RemoteSession.builder.remote(url).create()
    # Ibis hands in-memory tables over with verifySchema, which a Connect session ignores
    # (its Arrow batches are typed already): nothing for a user to act on.
    warnings.filterwarnings("ignore", message="'verifySchema' is ignored", category=UserWarning)
    for key, value in {**SESSION_SQL_CONF, **conf}.items():
        try:
            session.conf.set(key, value)
        except Exception as exc:  # a static or unknown setting: the server refuses it
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            session.stop()
            raise UsageError(
                f"spark_conf {key}: the Spark Connect server at {url} refuses it ({first}); "
                "only runtime SQL settings can be set from a client",
                field="spark_conf",
            ) from None
    _REMOTE[url] = session
    return session
