"""Settings: flags, then environment, then ``tianping.toml``, then embedded defaults.

Defaults run on one laptop with nothing to install: a DuckDB file for the warehouse and a
SQLite file for the store, both under ``./.tianping/``. Production is a URL away:
``TIANPING_STORE=postgresql+psycopg://...`` and ``TIANPING_WAREHOUSE=spark`` (local Spark) or a
Spark master URL (``spark://host:7077``).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tianping.errors import NoData, UsageError

ENV_PREFIX = "TIANPING_"
CONFIG_FILE = "tianping.toml"


@dataclass(frozen=True)
class Settings:
    """Where tianping keeps its data and how it reaches it.

    Attributes:
        home: folder for the embedded defaults and reports (``./.tianping``).
        warehouse: ``duckdb`` (file under home), ``duckdb:///path.duckdb``, ``duckdb://:memory:``,
            ``spark`` (local mode), ``local[N]``, ``spark://host:port`` or a long-running Spark
            Connect server ``sc://host:port`` (no driver started per command).
        store: SQLAlchemy URL; ``sqlite:///<home>/store.sqlite`` by default.
        currency: the marketplace's currency (ISO 4217); money columns use its decimals.
        sources: a sources file (YAML) mapping the event tables onto the warehouse's own tables
            or files, read in place (docs/data.md); empty: tianping's own tables.
        calendar: a calendar file (YAML) with the marketplace's campaigns and event windows
            (docs/metrics.md); empty: the built-in festivals only.
        spark_conf: extra Spark settings, e.g. ``{"spark.executor.memory": "4g"}``.
    """

    home: Path = Path(".tianping")
    warehouse: str = "duckdb"
    store: str = ""
    currency: str = "CNY"
    sources: str = ""
    calendar: str = ""
    spark_conf: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home))
        if not self.store:
            object.__setattr__(self, "store", default_store(self.home))

    @property
    def warehouse_kind(self) -> str:
        """``duckdb``, ``spark``, or ``ibis`` for any other engine Ibis reaches by URL
        (``postgres://…``, ``trino://…``, …), which is read through a sources file."""
        w = self.warehouse
        if w == "duckdb" or w.startswith("duckdb://"):
            return "duckdb"
        if w == "spark" or w.startswith(("spark://", "local", "yarn", "k8s://", "sc://")):
            return "spark"
        if re.match(r"^[a-z][a-z0-9+.-]*://", w):
            return "ibis"
        raise UsageError(
            f"unknown warehouse {redact_url(w)!r}: use 'duckdb', 'duckdb:///file.duckdb', "
            "'spark', 'local[N]', a Spark master URL, or an engine's URL with a sources file "
            "(postgres://USER@HOST/DB)",
            field="warehouse",
        )

    @property
    def duckdb_path(self) -> str:
        """The DuckDB database path: ``duckdb:///abs.duckdb`` → ``/abs.duckdb``; ``:memory:`` allowed."""
        if self.warehouse == "duckdb":
            return str(self.home / "warehouse.duckdb")
        return self.warehouse.removeprefix("duckdb://")

    @property
    def spark_master(self) -> str:
        """The Spark master; plain ``spark`` means local mode on every core."""
        return "local[*]" if self.warehouse == "spark" else self.warehouse

    @property
    def store_file(self) -> Path | None:
        """The SQLite file of the store, or None for an in-memory or server database."""
        return sqlite_file(self.store)

    def check_store(self, *, write: bool) -> None:
        """Check the store can be opened without creating anything the user did not ask for.

        The home folder is created when a command writes to the default store under it. A store
        named by ``--store`` must be in a folder that exists: a mistyped folder is an error, not
        a new empty database.

        Raises:
            UsageError: the folder of an explicit SQLite store does not exist.
            NoData: a read finds no store file (nothing was recorded there yet).
        """
        path = self.store_file
        if path is None or path.exists():
            return
        default = self.store == default_store(self.home)
        if not write:
            raise NoData(
                f"nothing is recorded in {self.home if default else path} yet (no store file "
                f"{path}): `tianping demo` fills a home with a simulated marketplace; check "
                "--home / --store",
                field="store",
            )
        _check_folder(path, default=default, home=self.home, option="--store")

    def check_warehouse(self, *, write: bool) -> None:
        """Check the warehouse can be opened without creating anything the user did not ask for.

        As :meth:`check_store`: a read of a warehouse that does not exist says so; a write
        creates the home's default DuckDB file, or a named one in a folder that exists.

        Raises:
            UsageError: the folder of an explicit DuckDB file does not exist.
            NoData: a read finds no warehouse (nothing was ingested or simulated there yet).
        """
        if self.warehouse_kind == "ibis":
            if self.sources:
                return  # read in place: the sources are checked when the warehouse is opened
            raise UsageError(
                f"the warehouse {redact_url(self.warehouse)} is read through a sources file "
                "that maps the event tables onto its tables (--sources FILE; docs/data.md)",
                field="sources",
            )
        if self.sources and not write:
            return  # the mapped tables are read in place; tianping's own may not exist yet
        if self.warehouse_kind == "spark":
            where = self.home / "spark"
            if not write and not where.is_dir():
                raise NoData(f"no data in {self.home} yet (no {where}): {FILL_HINT}", field="home")
            return
        path = self.duckdb_path
        if path == ":memory:" or Path(path).exists():
            return
        default = self.warehouse == "duckdb"
        if not write:
            where = f"in {self.home}" if default else f"at {path}"
            raise NoData(f"no warehouse data {where} yet: {FILL_HINT}", field="warehouse")
        _check_folder(Path(path), default=default, home=self.home, option="--warehouse")


#: What fills an empty home, for messages.
FILL_HINT = (
    "`tianping demo` simulates a whole marketplace, `tianping ingest TABLE FILE` loads your "
    "events (check --home / --warehouse)"
)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages.

    >>> redact_url("postgresql://ana:s3cret@db:5432/shop")
    'postgresql://ana:***@db:5432/shop'
    """
    return re.sub(r"^([a-z][a-z0-9+.-]*://[^:/@]+):[^@/]*@", r"\1:***@", url)


def default_store(home: Path) -> str:
    """The store URL used when none is given: a SQLite file under ``home``."""
    return f"sqlite:///{Path(home) / 'store.sqlite'}"


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///FILE[?...]`` URL; None for memory or another database."""
    if not url.startswith("sqlite:///"):
        return None
    name = url.removeprefix("sqlite:///").split("?", 1)[0]
    return None if name in ("", ":memory:") else Path(name)


def make_home(home: Path) -> Path:
    """Create the home folder readable by its owner only (0700): it holds the store, the
    server's secret and the demo's keys. An existing folder is left as its owner set it."""
    Path(home).mkdir(mode=0o700, parents=True, exist_ok=True)
    return Path(home)


def _check_folder(path: Path, *, default: bool, home: Path, option: str) -> None:
    if default:
        make_home(home)
        return
    if not path.parent.is_dir():
        raise UsageError(
            f"{option}: the folder {path.parent} does not exist (for {path}); create it first "
            "or correct the path",
            field=option.removeprefix("--"),
        )


_KEYS = {"home", "warehouse", "store", "currency", "sources", "calendar"}


def load_settings(
    overrides: Mapping[str, object | None] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Build settings from flags (``overrides``), environment and ``tianping.toml``.

    A ``None`` override means "not given". The config file is ``$TIANPING_CONFIG`` or
    ``tianping.toml`` in ``cwd``; its keys are the attribute names of :class:`Settings`, and a
    ``[spark_conf]`` table passes settings to Spark.

    Raises:
        UsageError: the config file is not valid TOML or names an unknown key.
    """
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    values: dict[str, object] = {}
    values.update(_from_file(Path(environ.get(f"{ENV_PREFIX}CONFIG", cwd / CONFIG_FILE))))
    for key in _KEYS:
        env_value = environ.get(f"{ENV_PREFIX}{key.upper()}")
        if env_value:
            values[key] = env_value
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    settings = Settings(**values)  # type: ignore[arg-type]
    settings.warehouse_kind  # noqa: B018 - validates the warehouse early, with a clear error
    if not re.match(r"^[A-Za-z][\w+.-]*://", settings.store):
        raise UsageError(
            f"{settings.store!r} is not a store URL (--store / TIANPING_STORE): use "
            "sqlite:///PATH/store.sqlite or postgresql+psycopg://USER@HOST/DB",
            field="store",
        )
    return settings


def _from_file(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})", field=str(path)) from None
    unknown = set(data) - _KEYS - {"spark_conf"}
    if unknown:
        raise UsageError(
            f"{path}: unknown setting(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(_KEYS | {'spark_conf'}))}",
            field=str(path),
        )
    if "spark_conf" in data:
        data["spark_conf"] = {str(k): str(v) for k, v in data["spark_conf"].items()}
    return data
