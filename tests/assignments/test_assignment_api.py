"""The assignment API answers what the SDK computes; exposures are queued once per unit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from auth_helpers import bearer
from refund_helpers import make_env
from tianping.assignments.models import QueuedExposure
from tianping.clock import FixedClock
from tianping.experiments import service as experiments
from tianping.experiments.client import Client
from tianping.experiments.schemas import ExperimentSpec
from tianping.server.app import MAX_BODY_BYTES, create_app
from tianping.settings import Settings


def _spec(name: str, status: str, traffic: float = 1.0) -> ExperimentSpec:
    return ExperimentSpec(name=name, variants=["control", "treatment"], primary_metric="gmv",
                          traffic=traffic, status=status)  # fmt: skip


@pytest.fixture
def client(store_url, tmp_path):
    # The exposures below were seen in January 2026: the service's clock is after them.
    env = make_env(FixedClock(datetime(2026, 2, 1, tzinfo=UTC)))
    app = create_app(Settings(home=tmp_path, store=store_url), env=env)
    with TestClient(app) as c:
        store = app.state.store
        for spec in (
            _spec("checkout", "draft"),
            _spec("banner", "draft", 0.5),
            _spec("old", "draft"),
        ):
            store.transact(lambda s, spec=spec: experiments.create(spec, session=s))
        for name in ("checkout", "banner"):
            store.transact(lambda s, name=name: experiments.set_status(name, "running", session=s))
        c.headers.update(bearer(app, "service"))
        yield c


def test_assignments_match_the_sdk_for_every_running_experiment(client):
    snapshot = client.app.state.store.read(lambda s: experiments.snapshot(session=s))
    sdk = Client(snapshot)
    in_banner = 0
    for i in range(40):
        unit = f"buyer-{i}"
        r = client.get("/v1/assignments", params={"unit_id": unit})
        assert r.status_code == 200, r.text
        got = {a["experiment"]: a["variant"] for a in r.json()["assignments"]}
        want = {e: sdk.variant(e, unit) for e in ("banner", "checkout")}
        assert got == {e: v for e, v in want.items() if v is not None}
        assert "old" not in got and "checkout" in got
        in_banner += "banner" in got
    assert 8 < in_banner < 32  # half the traffic
    r = client.get("/v1/assignments")
    assert r.status_code == 422 and r.json()["error"]["field"] == "unit_id"


def _exp(unit, variant="control", experiment="checkout", at="2026-01-05T10:00:00Z"):
    return {"experiment": experiment, "variant": variant, "unit_id": unit, "exposed_at": at}


def test_exposures_are_queued_once_per_unit_and_checked(client):
    batch = [_exp("u1", at="2026-01-05T10:00:00Z"), _exp("u1", at="2026-01-05T09:00:00Z"),
             _exp("u2", "treatment")]  # fmt: skip
    r = client.post("/v1/exposures", json={"exposures": batch})
    assert r.json() == {"accepted": 2, "duplicates": 1}, r.text
    r = client.post("/v1/exposures", json={"exposures": batch[:1]})
    assert r.json() == {"accepted": 0, "duplicates": 1}
    rows = client.app.state.store.read(
        lambda s: s.execute(
            select(QueuedExposure.unit_id, QueuedExposure.exposed_at).order_by(
                QueuedExposure.unit_id
            )
        ).all()  # fmt: skip
    )
    assert [(u, t.hour) for u, t in rows] == [("u1", 9), ("u2", 10)]  # the first one is kept
    r = client.post("/v1/exposures", json={"exposures": [_exp("u3", experiment="old")]})
    assert r.status_code == 404 and r.json()["error"]["field"] == "exposures.0"  # not running
    r = client.post("/v1/exposures", json={"exposures": [_exp(f"u{i}") for i in range(1001)]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "exposures"


def test_bodies_over_the_limit_are_refused_with_413(client):
    big = b'{"exposures": [' + b" " * MAX_BODY_BYTES + b"]}"
    r = client.post("/v1/exposures", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: counted while streaming
        yield b'{"exposures": ['
        for _ in range(20):
            yield b" " * (MAX_BODY_BYTES // 10)
        yield b"]}"

    r = client.post("/v1/exposures", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
