"""Alembic environment: runs on the connection :func:`tianping.store.db.upgrade` hands it.

The target metadata is every ``tianping.<domain>.models`` module's tables. On PostgreSQL a
transaction-scoped advisory lock serialises concurrent upgrades (several workers starting at
once); on SQLite ``BEGIN IMMEDIATE`` already does. SQLite alters tables in batch mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.types import TypeDecorator

from tianping.store.db import Base, import_all_models

#: Arbitrary constant naming the advisory lock migrations hold on PostgreSQL.
MIGRATION_LOCK = 7_120_140_001

import_all_models()
target_metadata = Base.metadata


def _render_item(kind: str, obj, autogen_context):
    # Revisions are frozen: a shared column type is written as the plain type it stores.
    if kind == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl.__class__.__name__}()"
    return False


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )


def run_migrations_online() -> None:
    """Migrate on the connection :func:`tianping.store.db.upgrade` hands over (or a new engine for the configured URL), under the migration lock."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        from tianping.store.db import make_engine

        engine = make_engine(context.config.get_main_option("sqlalchemy.url"))
        with engine.begin() as conn:
            _run(conn)
        engine.dispose()
        return
    _run(connection)


def _run(connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Write the migrations' SQL for the configured URL instead of running it (``alembic upgrade --sql``)."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
