"""Schemathesis walks every operation of the OpenAPI document with generated requests, valid
and not, on SQLite and PostgreSQL, with an admin key and every check it has turned on: no
5xx, every status and body as documented, schema-violating requests refused, schema-valid
ones accepted, auth never ignored, unknown methods answered 405.

One check is narrowed, and only for what a schema cannot say: a schema-valid request may be
refused 422 when a rule depends on the clock or on what is stored (a red packet that already
expired, a quorum larger than the approvers named, an instant whose offset moves it out of the
window). Those refusals carry their own codes (:data:`STATE_RULES`); a plain ``invalid_input``
for schema-valid data still fails the check.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from auth_helpers import make_key
from refund_helpers import make_env, order_json
from tianping.server.app import create_app
from tianping.settings import Settings

#: 422 codes of rules that depend on the clock or the store, not on the request's shape.
STATE_RULES = {
    "already_expired",
    "already_past",
    "before_payment",
    "exceeds_refundable",
    "other_currency",
    "out_of_range",
    "in_the_future",
    "out_of_window",
    "unreachable_quorum",
}
EXAMPLES = 60


#: What no path parameter's pattern admits (every one forbids control characters).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@schemathesis.check
def positive_data_acceptance_but_state_rules(ctx, response, case):
    """positive_data_acceptance, except a 422 whose code is one of :data:`STATE_RULES`, or
    for a path parameter the generator took for valid although its pattern refuses it (with
    Python's ``re.search`` a pattern ending in ``$`` also matches before a final newline)."""
    if response.status_code == 422:
        code = (response.json() or {}).get("error", {}).get("code")
        if code in STATE_RULES:
            return None
        params = (case.path_parameters or {}).values()
        if any(isinstance(v, str) and _CONTROL.search(v) for v in params):
            return None
    return positive_data_acceptance(ctx, response, case)


@pytest.fixture
def started(store_url, tmp_path):
    app = create_app(Settings(home=tmp_path, store=store_url), env=make_env())
    with TestClient(app) as c:  # runs the lifespan: the store is open while the cases run
        key = make_key(app, "admin", name="fuzzer")
        headers = {"Authorization": f"Bearer {key}"}
        assert c.post("/v1/orders", json=order_json("o1"), headers=headers).status_code == 201
        yield app, key


@pytest.mark.slow
def test_every_operation_conforms_with_every_check(started):
    app, key = started
    # The key as the document's security scheme: schemathesis then knows which requests
    # carry credentials (and its auth checks send some without).
    config = SchemathesisConfig.from_dict({"auth": {"openapi": {"HTTPBearer": {"bearer": key}}}})
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    failures = []
    for operation in operations:  # the pytest plugin is not used: it predates pytest 9
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck), database=None)  # fmt: skip
            def call(case):
                case.call_and_validate(
                    excluded_checks=[positive_data_acceptance],
                    additional_checks=[positive_data_acceptance_but_state_rules],
                )

            try:
                call()
            except BaseException as exc:  # noqa: BLE001 - collected, reported below
                failures.append(f"{operation.label} [{mode.name}]: {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
