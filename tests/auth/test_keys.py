"""Keys are random, stored only as hashes, shown once and revocable; the CLI manages them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from tianping.auth import keys, service
from tianping.auth.models import ApiKey
from tianping.cli.main import app as cli
from tianping.errors import Conflict, InvalidInput, NotFound, Unauthorized

NOW = datetime(2026, 1, 5, tzinfo=UTC)
runner = CliRunner()


def test_keys_are_random_and_well_formed():
    drawn = {keys.generate_key() for _ in range(200)}
    assert len(drawn) == 200
    assert all(keys.key_id_of(k) is not None and len(k) == 3 + 8 + 1 + 43 for k in drawn)
    assert keys.key_id_of("tp_1234abcd_short") is None


@pytest.mark.parametrize(
    ("role", "merchant", "field"),
    [("root", None, "role"), ("merchant", None, "merchant_id"), ("analyst", "m1", "merchant_id"),
     ("merchant", "m 1; drop", "merchant_id")],
)  # fmt: skip
def test_bad_roles_are_refused_naming_the_field(role, merchant, field):
    with pytest.raises(InvalidInput) as e:
        keys.check_role(role, merchant)
    assert e.value.field == field


def test_only_the_hash_is_stored_and_revocation_is_immediate(session):
    row, key = service.create("merchant", session=session, now=NOW, merchant_id="m7")
    stored = session.execute(text("SELECT * FROM api_keys")).mappings().one()
    assert key not in json.dumps({k: str(v) for k, v in stored.items()})
    assert stored["key_sha256"] == keys.hash_key(key) and stored["id"] == key.split("_")[1]
    who = service.authenticate(key, session=session)
    assert (who.role, who.merchant_id, who.owns("m7"), who.owns("m8")) == (
        "merchant",
        "m7",
        True,
        False,
    )
    with pytest.raises(Unauthorized):
        service.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B"), session=session)
    service.revoke(row.id, session=session, now=NOW)
    with pytest.raises(Unauthorized, match="revoked"):
        service.authenticate(key, session=session)
    with pytest.raises(Conflict):
        service.revoke(row.id, session=session, now=NOW)
    with pytest.raises(NotFound):
        service.revoke("ffffffff", session=session, now=NOW)


def test_cli_create_prints_the_key_once_list_and_revoke(tmp_path):
    r = runner.invoke(cli, ["--home", str(tmp_path), "keys", "create", "--role", "merchant",
                            "--merchant", "m1", "--name", "shop one"])  # fmt: skip
    assert r.exit_code == 0, r.output
    key = r.stdout.strip()
    key_id = keys.key_id_of(key)
    assert key_id is not None
    listed = runner.invoke(cli, ["--home", str(tmp_path), "keys", "list", "--format", "json"])
    rows = json.loads(listed.stdout)
    assert [(k["key_id"], k["role"], k["merchant_id"], k["name"]) for k in rows] == [
        (key_id, "merchant", "m1", "shop one")
    ]
    assert key[12:] not in listed.output and key not in listed.output
    assert runner.invoke(cli, ["--home", str(tmp_path), "keys", "revoke", key_id]).exit_code == 0
    again = runner.invoke(cli, ["--home", str(tmp_path), "keys", "revoke", key_id])
    assert again.exit_code != 0 and "already revoked" in again.output
    assert "Traceback" not in again.output
    bad = runner.invoke(cli, ["--home", str(tmp_path), "keys", "create", "--role", "merchant"])
    assert bad.exit_code != 0 and "needs --merchant" in bad.output
    bad = runner.invoke(cli, ["--home", str(tmp_path), "keys", "create", "--role", "admin",
                              "--name", "x" * 201])  # fmt: skip
    assert bad.exit_code != 0 and "1 to 200 characters" in bad.output
    active = runner.invoke(
        cli, ["--home", str(tmp_path), "keys", "list", "--active", "--format", "json"]
    )
    assert json.loads(active.stdout) == []


def test_keys_in_the_store_are_listed_oldest_first(session):
    for minutes, role in ((5, "admin"), (1, "service"), (9, "analyst")):
        service.create(role, session=session, now=NOW + timedelta(minutes=minutes))
    assert [k.role for k in service.list_keys(session=session)] == ["service", "admin", "analyst"]
    assert sorted(session.scalars(select(ApiKey.role)).all()) == ["admin", "analyst", "service"]
