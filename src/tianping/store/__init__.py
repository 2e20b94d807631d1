"""The operational store: SQLAlchemy 2 on SQLite (default) or PostgreSQL."""

from tianping.store.db import (
    Base,
    core_execute,
    init_schema,
    make_engine,
    make_sessionmaker,
    session_scope,
)

__all__ = [
    "Base",
    "core_execute",
    "init_schema",
    "make_engine",
    "make_sessionmaker",
    "session_scope",
]
