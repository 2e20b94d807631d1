"""Dashboard sessions: nothing in the store signs anyone in, sign-out and revocation end a
session at once, the secret and the store are private files (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select

from auth_helpers import make_key
from refund_helpers import make_env, order_json
from tianping.auth.secret import FILE, server_secret
from tianping.auth.sessions import COOKIE
from tianping.errors import UsageError
from tianping.server.app import create_app
from tianping.settings import Settings


def _sign_in(client, key) -> None:
    client.cookies.clear()
    r = client.post("/dashboard/sign-in", data={"key": key}, follow_redirects=False)
    assert r.status_code == 303 and client.cookies.get(COOKIE), r.text


def _signed_in(client, cookie: str | None) -> bool:
    client.cookies.clear()
    if cookie is not None:
        client.cookies.set(COOKIE, cookie, path="/dashboard")
    r = client.get("/dashboard/decisions", follow_redirects=False)
    return r.status_code == 200


@pytest.fixture
def started(store_url, tmp_path):
    app = create_app(Settings(home=tmp_path / "home", store=store_url), env=make_env())
    with TestClient(app) as c:
        yield app, c


def _every_value(app) -> set[str]:
    """Every non-empty text value of every row of every table of the store."""
    engine = app.state.store.sessions.kw["bind"]
    meta = MetaData()
    meta.reflect(engine)
    values: set[str] = set()
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                values.update(str(v) for v in row if v is not None and str(v))
    return values


def _forgeries(value: str, key_id: str) -> list[str]:
    """Cookies a reader of the store could make from ``value``: the value itself, and cookies
    signed with it as the HMAC key, in today's format and in the old one (keyed by the key's
    stored hash)."""
    token = secrets.token_urlsafe(32)
    keys = [value.encode()]
    with contextlib.suppress(ValueError):
        keys.append(bytes.fromhex(value))
    made = [value]
    for k in keys:
        made.append(f"{token}.{hmac.new(k, token.encode(), hashlib.sha256).hexdigest()}")
        body = f"{key_id}.{2**40}.{secrets.token_hex(16)}"
        made.append(f"{body}.{hmac.new(k, body.encode(), hashlib.sha256).hexdigest()}")
    return made


def test_no_row_of_the_store_lets_anyone_sign_in(started):
    app, c = started
    admin = make_key(app, "admin", name="root")
    make_key(app, "operator", name="op")
    assert c.post("/v1/orders", json=order_json("o1"),
                  headers={"Authorization": f"Bearer {admin}"}).status_code == 201  # fmt: skip
    _sign_in(c, admin)
    live = c.cookies.get(COOKIE)
    assert _signed_in(c, live)  # the check below can tell a session from none
    key_id = admin.split("_")[1]
    values = _every_value(app)
    assert any(len(v) == 64 for v in values)  # the key hashes and session digests are there
    assert live.split(".")[0] not in values and admin not in values
    for value in values:
        for cookie in _forgeries(value, key_id):
            assert not _signed_in(c, cookie), f"a store value signs in: {value!r}"
        r = c.get("/v1/me", headers={"Authorization": f"Bearer {value}"})
        assert r.status_code == 401, value
        c.cookies.clear()
        r = c.post("/dashboard/sign-in", data={"key": value}, follow_redirects=False)
        assert r.status_code != 303, value


def test_sign_out_ends_the_session_on_the_server(started):
    app, c = started
    _sign_in(c, make_key(app, "operator", name="op"))
    cookie = c.cookies.get(COOKIE)
    assert _signed_in(c, cookie)
    c.cookies.set(COOKIE, cookie, path="/dashboard")
    assert c.post("/dashboard/sign-out", follow_redirects=False).status_code == 303
    assert not _signed_in(c, cookie)  # a copy kept from before sign-out is dead too


def test_revoking_the_key_ends_its_sessions_at_once(started):
    from datetime import UTC, datetime

    from tianping.auth import service

    app, c = started
    key = make_key(app, "admin", name="admin")
    _sign_in(c, key)
    cookie = c.cookies.get(COOKIE)
    now = datetime.now(UTC)
    app.state.store.transact(lambda s: service.revoke(key.split("_")[1], session=s, now=now))
    assert not _signed_in(c, cookie)


def test_the_same_secret_on_two_servers_shares_sessions_another_does_not(store_url, tmp_path):
    env = {"TIANPING_SECRET": "s" * 40}
    apps = []
    for name, secret in (("a", env), ("b", env), ("c", {"TIANPING_SECRET": "t" * 40})):
        os.environ.update(secret)
        try:
            apps.append(create_app(Settings(home=tmp_path / name, store=store_url),
                                   env=make_env()))  # fmt: skip
        finally:
            os.environ.pop("TIANPING_SECRET")
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b, TestClient(apps[2]) as other:
        _sign_in(a, make_key(apps[0], "admin", name="admin"))
        cookie = a.cookies.get(COOKIE)
        assert _signed_in(b, cookie) and not _signed_in(other, cookie)


def test_the_secret_and_the_store_are_private_files(tmp_path):
    home = tmp_path / "fresh" / ".tianping"
    app = create_app(Settings(home=home), env=make_env())
    with TestClient(app):
        pass
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "store.sqlite").stat().st_mode) == 0o600
    # The same secret on every start: sessions survive a restart.
    assert server_secret(home, environ={}) == server_secret(home, environ={})


def test_a_short_or_damaged_secret_is_refused_with_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="at least 32 characters"):
        server_secret(tmp_path, environ={"TIANPING_SECRET": "short"})
    (tmp_path / FILE).write_text("not hex\n")
    with pytest.raises(UsageError, match="cannot read the server secret"):
        server_secret(tmp_path, environ={})
