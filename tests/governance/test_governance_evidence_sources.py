"""Evidence read from its owning domain: races, metrics, policy replays; bad references."""

from __future__ import annotations

import pytest
from governance_data import RULES

from fixtures_events import load
from tianping.audit.canonical import dumps
from tianping.errors import Conflict, InvalidInput, NotFound, UsageError
from tianping.governance.service import Proposal, propose, set_rules, vote
from tianping.governance.sources import capture

RACE = """
name: checkout-race
goal_metric: conversion
strategies: [plain, coupon, bundle]
control: plain
control_share: 0.2
guardrails: []
start_date: 2024-06-01
"""


def test_shipping_a_race_strategy_freezes_the_race_report(session, clock):
    from tianping.races import service as races

    races.create(races.load_yaml(RACE), session=session)
    set_rules(RULES, session=session, actor="admin", clock=clock)
    with pytest.raises(Conflict, match="has no winner yet") as e:
        propose(Proposal("Ship", "ship_race_winner", {"race": "checkout-race"}),
                session=session, actor="dan", clock=clock)  # fmt: skip
    assert e.value.field == "variant"
    p = Proposal("Ship bundle", "ship_race_winner", {"race": "checkout-race", "variant": "bundle"},
                 evidence=["race:checkout-race"])  # fmt: skip
    d = propose(p, session=session, actor="dan", clock=clock)
    assert d.evidence[0].content == dumps(races.report_data("checkout-race", session=session))
    vote(d.id, "approve", session=session, actor="ana", clock=clock)
    vote(d.id, "approve", session=session, actor="bo", clock=clock)
    assert d.effect_status == "applied"
    assert d.effect == {"race": "checkout-race", "shipped": "bundle",
                        "experiment": "checkout-race", "phase": "stopped"}  # fmt: skip
    race = races.get_or_raise("checkout-race", session=session)
    assert (race.phase, race.shipped_variant) == ("stopped", "bundle")
    with pytest.raises(Conflict, match="already shipped"):
        propose(Proposal("Ship again", "ship_race_winner", {"race": "checkout-race",
                "variant": "coupon"}), session=session, actor="dan", clock=clock)  # fmt: skip
    with pytest.raises(NotFound, match="no-such-race"):
        capture("race:no-such-race", session=session)


def test_metric_and_policy_replay_evidence_come_from_the_warehouse(duckdb_warehouse):
    load(duckdb_warehouse)
    kind, gmv = capture("metric:gmv@month", session=None, warehouse=duckdb_warehouse)
    assert kind == "metric"
    assert (
        dumps(gmv)
        == '{"grain":"month","history":[["2024-01-01",100.5],["2024-02-01",105.25]],"metric":"gmv"}'
    )
    kind, replay = capture("policy-replay:taobao-2024-08@2023-01-01..2023-01-31", session=None,
                           warehouse=duckdb_warehouse)  # fmt: skip
    assert kind == "policy-replay" and replay["policy"] == "taobao-2024-08"
    assert replay["sections"]["window"][0]["requests"] == 0


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ("gmv", InvalidInput, "is not KIND:NAME"),
        ("slides:q3", InvalidInput, "is not KIND:NAME"),
        ("race: ", InvalidInput, "is not KIND:NAME"),
        ("race:" + "x" * 500, InvalidInput, "longer than 480 characters"),
        ("metric:happiness", InvalidInput, "unknown metric 'happiness'"),
        ("policy-replay:taobao-2024-08", InvalidInput, "POLICY@START..END"),
        ("policy-replay:taobao-2024-08@2024-01-01..soon", InvalidInput, "'soon' is not a date"),
    ],
)
def test_bad_references_are_refused_with_the_reason(ref, error, message, duckdb_warehouse):
    with pytest.raises(error, match=message):
        capture(ref, session=None, warehouse=duckdb_warehouse)


def test_warehouse_evidence_without_a_warehouse_is_a_usage_error():
    with pytest.raises(UsageError, match="read from the warehouse"):
        capture("experiment:one-click", session=None)


def test_a_reference_name_is_trimmed_of_ascii_blanks_only_as_its_pattern_says():
    import re

    from tianping.governance.sources import KINDS, split_ref
    from tianping.inputs import reference_pattern

    pattern = reference_pattern(KINDS)
    for ref in ("goal:\xa0", "race: promo", "metric:gmv"):
        assert re.match(pattern, ref)
        kind, name = split_ref(ref)
        assert kind == ref.split(":")[0] and name == ref.split(":", 1)[1].strip(" ")
    for ref in ("goal: ", "goal:", "nope:x"):
        assert not re.match(pattern, ref)
        with pytest.raises(InvalidInput):
            split_ref(ref)
