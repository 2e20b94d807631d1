"""Schemathesis walks every operation of the OpenAPI spec with generated requests (valid and
not): the API never answers 500 and every documented response matches its schema."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from auth_helpers import make_key
from refund_helpers import make_env, order_json
from tianping.api.app import create_app
from tianping.settings import Settings


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    app = create_app(Settings(home=tmp_path_factory.mktemp("openapi")), env=make_env())
    with TestClient(app) as c:  # runs the lifespan: the store is open while the cases run
        key = make_key(app, "admin", name="fuzzer")
        headers = {"Authorization": f"Bearer {key}"}
        assert c.post("/v1/orders", json=order_json("o1"), headers=headers).status_code == 201
        yield app, headers


def test_no_500_and_no_schema_violation(started):
    app, headers = started
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    for operation in operations:  # the pytest plugin is not used: it predates pytest 9

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case):
            case.call_and_validate(
                headers=headers, checks=[not_a_server_error, response_schema_conformance]
            )

        call()
