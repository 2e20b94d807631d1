"""Settings: flags, then environment, then ``tianping.toml``, then embedded defaults.

Defaults run on one laptop with nothing to install: a DuckDB file for the warehouse and a
SQLite file for the store, both under ``./.tianping/``. Production is a URL away:
``TIANPING_STORE=postgresql+psycopg://...`` and ``TIANPING_WAREHOUSE=spark`` (local Spark) or a
Spark master URL (``spark://host:7077``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tianping.errors import UsageError

ENV_PREFIX = "TIANPING_"
CONFIG_FILE = "tianping.toml"


@dataclass(frozen=True)
class Settings:
    """Where tianping keeps its data and how it reaches it.

    Attributes:
        home: folder for the embedded defaults and reports (``./.tianping``).
        warehouse: ``duckdb`` (file under home), ``duckdb:///path.duckdb``, ``duckdb://:memory:``,
            ``spark`` (local mode), ``local[N]`` or ``spark://host:port``.
        store: SQLAlchemy URL; ``sqlite:///<home>/store.sqlite`` by default.
        currency: the marketplace's currency (ISO 4217); money columns use its decimals.
        spark_conf: extra Spark settings, e.g. ``{"spark.executor.memory": "4g"}``.
    """

    home: Path = Path(".tianping")
    warehouse: str = "duckdb"
    store: str = ""
    currency: str = "CNY"
    spark_conf: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home))
        if not self.store:
            object.__setattr__(self, "store", f"sqlite:///{Path(self.home) / 'store.sqlite'}")

    @property
    def warehouse_kind(self) -> str:
        """``duckdb`` or ``spark``."""
        w = self.warehouse
        if w == "duckdb" or w.startswith("duckdb://"):
            return "duckdb"
        if w == "spark" or w.startswith(("spark://", "local", "yarn", "k8s://")):
            return "spark"
        raise UsageError(
            f"unknown warehouse {w!r}: use 'duckdb', 'duckdb:///file.duckdb', 'spark', "
            "'local[N]' or a Spark master URL",
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


_KEYS = {"home", "warehouse", "store", "currency"}


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
