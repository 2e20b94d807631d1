"""The packaged Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from tianping.store import Base, init_schema, make_engine
from tianping.store.db import MIGRATIONS, alembic_config, import_all_models


def _diff(engine) -> list:
    import_all_models()
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)


def _head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_migrated_schema_equals_the_models(engine):
    # ``engine`` was brought up by init_schema, i.e. ``alembic upgrade head``.
    assert _diff(engine) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == _head()


def test_every_models_module_is_migrated(engine):
    import_all_models()
    modules = {t.name for t in Base.metadata.sorted_tables}
    assert {"orders", "ledger_entries", "coupons", "idempotency_records", "experiments"} <= modules
    assert modules <= set(inspect(engine).get_table_names())


def test_upgrade_is_idempotent(engine):
    init_schema(engine)
    init_schema(engine)
    assert _diff(engine) == []


def test_a_store_made_before_migrations_is_stamped(store_url):
    engine = make_engine(store_url)
    import_all_models()
    Base.metadata.tables["orders"].create(engine)
    init_schema(engine)
    assert _diff(engine) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == _head()
    engine.dispose()


def test_migrations_live_inside_the_package():
    assert MIGRATIONS.parent.name == "store"
    assert (MIGRATIONS / "env.py").is_file()
    assert any(MIGRATIONS.joinpath("versions").glob("0001_*.py"))
