from pathlib import Path

import pytest

from tianping.errors import UsageError
from tianping.settings import Settings, load_settings


def test_defaults_are_embedded_files_under_home(tmp_path):
    s = load_settings(environ={}, cwd=tmp_path)
    assert s.warehouse_kind == "duckdb"
    assert s.duckdb_path == str(Path(".tianping") / "warehouse.duckdb")
    assert s.store == f"sqlite:///{Path('.tianping') / 'store.sqlite'}"


def test_precedence_flag_over_env_over_file(tmp_path):
    (tmp_path / "tianping.toml").write_text('warehouse = "spark"\nstore = "sqlite:///f.db"\n')
    env = {"TIANPING_STORE": "sqlite:///e.db"}
    s = load_settings({"store": None}, environ=env, cwd=tmp_path)
    assert (s.warehouse, s.store) == ("spark", "sqlite:///e.db")
    s = load_settings({"store": "sqlite:///flag.db"}, environ=env, cwd=tmp_path)
    assert s.store == "sqlite:///flag.db"
    assert s.warehouse_kind == "spark" and s.spark_master == "local[*]"


def test_duckdb_url_forms():
    assert Settings(warehouse="duckdb:///abs/w.duckdb").duckdb_path == "/abs/w.duckdb"
    assert Settings(warehouse="duckdb://:memory:").duckdb_path == ":memory:"


def test_unknown_warehouse_and_bad_file_are_clear_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown warehouse 'oracle'"):
        load_settings({"warehouse": "oracle"}, environ={}, cwd=tmp_path)
    (tmp_path / "tianping.toml").write_text("colour = 'red'\n")
    with pytest.raises(UsageError, match="unknown setting"):
        load_settings(environ={}, cwd=tmp_path)
    (tmp_path / "tianping.toml").write_text("warehouse = \n")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_settings(environ={}, cwd=tmp_path)
