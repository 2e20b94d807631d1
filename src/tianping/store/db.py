"""Engine, sessions and schema for the store.

Every domain's ORM models derive from :class:`Base`, so one metadata describes the store and
Alembic migrates it: the migration scripts ship inside the package
(``tianping/store/migrations``) and :func:`init_schema` runs ``alembic upgrade head`` on start. SQLite is tuned for safe concurrent use by one process and a few readers:
WAL journal, foreign keys on, a busy timeout, and ``BEGIN IMMEDIATE`` so writers serialise at
the start of a transaction instead of failing half-way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from tianping.errors import UsageError

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every ORM model in tianping."""

    metadata = MetaData(naming_convention=NAMING)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url``; a new SQLite file (and its folder, when needed) is created
    readable by its owner only (the CLI checks first that a folder the user named exists:
    ``Settings.check_store``).

    Raises:
        UsageError: ``url`` is not a database URL, or names a database kind or driver that
            is not installed.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(
            f"{url!r} is not a store URL (--store / TIANPING_STORE): use "
            "sqlite:///PATH/store.sqlite or postgresql+psycopg://USER@HOST/DB",
            field="store",
        ) from None
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        _private_file(Path(url.removeprefix("sqlite:///").split("?", 1)[0]))
    try:
        if url.startswith("sqlite"):
            engine = create_engine(
                url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
            )
            _tune_sqlite(engine)
            return engine
        return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)
    except (NoSuchModuleError, ImportError) as exc:
        raise UsageError(
            f"the store URL {parsed.render_as_string(hide_password=True)} (--store / "
            f"TIANPING_STORE) names a database tianping cannot use ({_first_line(exc)}): use "
            "sqlite:///PATH/store.sqlite or postgresql+psycopg://USER@HOST/DB",
            field="store",
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _probe(engine: Engine) -> None:
    """Connect once, so an unreachable store is one clear error rather than a traceback."""
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        raise UsageError(
            f"cannot open the store {engine.url.render_as_string(hide_password=True)} "
            f"(--store / TIANPING_STORE): {_first_line(exc)}",
            field="store",
        ) from None


def _private_file(path: Path) -> None:
    """Create the SQLite file (and its folder) with mode 0600 (0700) before SQLite does.

    SQLite gives its write-ahead log and shared-memory files the database file's mode, so
    the store's rows, API key hashes included, are readable by its owner only.
    """
    if path.exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


#: SQLite's ``synchronous`` setting of the store. FULL: a commit is on disk before it is
#: acknowledged (docs/refunds.md#what-survives-a-power-loss). ``bench/refunds_api.py`` sets
#: NORMAL, the previous default, only to measure what FULL costs.
SQLITE_SYNCHRONOUS = "FULL"


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised by every test
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # FULL: a commit is on disk before it is acknowledged, so a power loss cannot take
        # back a refund the API answered (NORMAL in WAL mode can lose the last commits).
        cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover - exercised by every test
        # Writers take the lock up front: serialised writes, no lost updates.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None):
    """The Alembic configuration of the packaged migrations (no ``alembic.ini`` needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if engine is not None:
        # Alembic's config is a ConfigParser: a literal % (a unix socket's %2F, a password)
        # is written %% so it is not read as interpolation.
        url = engine.url.render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def init_schema(engine: Engine) -> None:
    """Bring the store's schema up to date: ``alembic upgrade head`` in one transaction.

    A store created before migrations existed (tables but no ``alembic_version``) has its
    missing tables created and is then stamped at head, so it is migrated from there on.
    """
    from alembic import command
    from sqlalchemy import inspect

    _probe(engine)
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        names = set(inspect(conn).get_table_names())
        cfg.attributes["connection"] = conn
        if names and "alembic_version" not in names:
            import_all_models()
            Base.metadata.create_all(conn)
            command.stamp(cfg, "head")
        else:
            command.upgrade(cfg, "head")


def import_all_models() -> None:
    """Import every ``tianping.<domain>.models`` module so ``Base.metadata`` knows all tables.

    Found on the file system, so domains whose packages are heavy to import (the warehouse,
    Spark) are not loaded just to build the store.
    """
    import importlib

    import tianping

    for root in tianping.__path__:
        for models in sorted(Path(root).glob("*/models.py")):
            importlib.import_module(f"tianping.{models.parent.name}.models")


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session on the store at ``url`` (schema migrated to head) in one transaction:
    committed when the block ends normally, rolled back on any error."""
    engine = make_engine(url)
    init_schema(engine)
    session = make_sessionmaker(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        engine.dispose()


def core_execute(session, stmt, params=None):
    """Run a Core statement on the session's connection, without the ORM's result machinery.

    For the hot reads of columns (not entities): a third of the cost of ``session.execute``.
    What the session has pending is flushed first when it autoflushes, as ``session.execute``
    would do.
    """
    if session.autoflush:
        session.flush()
    return session.connection().execute(stmt, params or {})


#: A passive checkpoint copies the log into the database but never makes writers start the
#: log over while any reader holds an older snapshot — under steady load, always: the log grew
#: by ~20 pages per refund decision without end (1 GB after 15,000). Past this many frames
#: (40 MB) the checkpointer asks for a RESTART: it waits up to RESTART_WAIT_MS for the readers
#: of the moment to finish, and the next writer starts the log from its beginning.
RESTART_FRAMES = 10_000
RESTART_WAIT_MS = 50


class WalCheckpointer:
    """Checkpoints a SQLite file's write-ahead log from a background thread.

    By default SQLite checkpoints inside the commit that grows the log past 1,000 pages, so
    every so often one request pays for copying the log into the database. A long-running
    server (``tianping serve``) turns that off for its own connections and checkpoints here
    instead, every ``every_seconds``, in PASSIVE mode (never waits for or blocks a writer) on a
    connection of its own; the C call releases the GIL. Other processes keep SQLite's default.
    """

    def __init__(self, engine: Engine, *, every_seconds: float = 1.0):
        import threading

        self.path = engine.url.database
        self.every = every_seconds
        self._stop = threading.Event()
        event.listen(engine, "connect", _no_autocheckpoint)
        engine.dispose()  # connections opened before (schema set-up) get the setting too
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    @staticmethod
    def wanted(engine: Engine) -> bool:
        """Whether the store is an SQLite file (the only kind checkpointed here)."""
        db = engine.url.database
        return engine.dialect.name == "sqlite" and db not in (None, "", ":memory:")

    def _run(self) -> None:
        import sqlite3

        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # RESTART waits this long for readers, holding writers back meanwhile.
        conn.execute(f"PRAGMA busy_timeout = {RESTART_WAIT_MS}")
        try:
            while not self._stop.wait(self.every):
                try:
                    _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames > RESTART_FRAMES:
                        conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
                except sqlite3.Error:  # busy or locked: the next round catches up
                    continue
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the checkpoint thread after a last passive checkpoint."""
        self._stop.set()
        self._thread.join(timeout=10)


def _no_autocheckpoint(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()
