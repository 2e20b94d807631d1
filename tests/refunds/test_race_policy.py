"""The live refund service takes a policy from a running policy race (SQLite and PostgreSQL):
each buyer is decided by the policy of the arm the race's experiment assigns them, the decision
records the race and arm, replay of stored decisions still agrees, and the race's lifecycle
(weights, confirmation, stop) reaches new requests through the cache."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from refund_helpers import LIFECYCLE_POLICY, make_env, order_in, refund_in, use_lifecycle_policy
from tianping.aftersales.policy import parse_policy
from tianping.experiments import service as experiments
from tianping.experiments.assignment import assign
from tianping.races import policy_race
from tianping.races import service as races
from tianping.races.refund_arms import race_snapshot
from tianping.refunds import orders as refund_orders
from tianping.refunds import reconcile as refund_reconcile
from tianping.refunds import repository as repo
from tianping.refunds import service
from tianping.refunds.race_policy import RACE_KEY

BUYERS = [f"b{i}" for i in range(60)]


def _variant(name: str, quality_action: dict) -> dict:
    content = json.loads(json.dumps(LIFECYCLE_POLICY.content))
    content["name"] = name
    for rule in content["rules"]:
        if rule["id"] == "rule-quality":
            rule["then"] = {**quality_action, "reasons": ["r"]}
    return content


@pytest.fixture
def race_env(session, tmp_path):
    env = make_env()
    use_lifecycle_policy(session, env)
    for name, then in [
        ("generous", {"action": "refund_only", "payer": "platform"}),
        ("careful", {"action": "return_and_refund", "payer": "merchant"}),
    ]:
        (tmp_path / f"{name}.json").write_text(json.dumps(_variant(name, then)))
    text = f"""
name: live-race
kind: refund_policy
strategies: [generous, careful]
policies: {{generous: generous.json, careful: careful.json}}
traffic: 0.8
start_date: {env.clock.now().date()}
"""
    policy_race.create(races.load_yaml(text), session=session, base=tmp_path)
    session.commit()
    return env


def _decide(session, env, buyer: str, n: int):
    order = f"o-{buyer}-{n}"
    refund_orders.record_order(order_in(order, 5_000, buyer_id=buyer), session=session, env=env)
    req = service.request_refund(refund_in(order, 5_000, "quality"), session=session, env=env)
    session.commit()
    return repo.get_decision(session, req.decision_id)


def _arm(session, experiment: str, buyer: str) -> str | None:
    row = experiments.get_or_raise(experiment, session=session)
    return assign(race_snapshot(row), experiment, buyer)


def test_each_buyer_is_decided_by_the_policy_of_their_arm(session, race_env):
    race = races.get_or_raise("live-race", session=session)
    versions = race.spec["policy_versions"]
    seen = {"generous": 0, "careful": 0, None: 0}
    for buyer in BUYERS:
        d = _decide(session, race_env, buyer, 0)
        arm = _arm(session, "live-race", buyer)
        seen[arm] += 1
        if arm is None:  # outside the race's 80% of traffic: the active policy
            assert d.policy_version == LIFECYCLE_POLICY.version and RACE_KEY not in d.inputs
            assert d.action == "refund_only" and d.payer == "merchant"
            continue
        assert d.policy_name == arm and d.policy_version == versions[arm]
        assert d.inputs[RACE_KEY] == {"name": "live-race", "experiment": "live-race", "arm": arm}
        assert (d.action, d.payer) == (
            ("refund_only", "platform") if arm == "generous" else ("return_and_refund", "merchant")
        )
    assert min(seen.values()) > 0
    result = refund_reconcile.replay(session=session)
    assert (result.checked, result.mismatches) == (len(BUYERS), [])


def test_new_weights_the_confirmation_and_a_stop_reach_new_requests(session, race_env):
    env = race_env
    exp = experiments.get_or_raise("live-race", session=session)
    exp.variants = [{"name": "generous", "weight": 1e-9}, {"name": "careful", "weight": 1.0}]
    race = races.get_or_raise("live-race", session=session)
    race.steps, race.updated_at = 1, env.clock.now()  # what a step writes with the weights
    session.commit()
    inside = [b for b in BUYERS if _arm(session, "live-race", b) is not None]
    assert {_decide(session, env, b, 1).policy_name for b in inside} == {"careful"}

    # the confirmation's experiment decides from its first day, the adaptive one no longer
    race.phase, race.winner, race.comparator = "confirming", "careful", "generous"
    race.confirm_experiment = "live-race.confirm"
    race.confirm_start = env.clock.now().date() + timedelta(days=1)
    spec = races.spec_of(race)
    experiments.set_status("live-race", "stopped", session=session)
    experiments.create(
        races._experiment_spec(spec, "live-race.confirm", ["generous", "careful"], [1, 1],
                               start=race.confirm_start),
        session=session,
    )  # fmt: skip
    session.commit()
    assert RACE_KEY not in _decide(session, env, inside[0], 2).inputs  # before its first day
    env.clock.advance(days=1)
    arms = set()
    for b in BUYERS[:30]:
        d = _decide(session, env, b, 3)
        arm = _arm(session, "live-race.confirm", b)  # its own salt: a new draw of traffic too
        arms.add(arm)
        if arm is None:
            assert RACE_KEY not in d.inputs
        else:
            assert d.inputs[RACE_KEY]["experiment"] == "live-race.confirm"
            assert d.policy_name == arm == d.inputs[RACE_KEY]["arm"]
    assert arms == {"generous", "careful", None}

    races.stop("live-race", session=session)
    session.commit()
    d = _decide(session, env, inside[0], 4)
    assert RACE_KEY not in d.inputs and d.policy_version == LIFECYCLE_POLICY.version
    assert refund_reconcile.replay(session=session).mismatches == []


def test_a_race_that_has_not_started_leaves_the_active_policy_deciding(session, tmp_path):
    env = make_env()
    use_lifecycle_policy(session, env)
    generous = parse_policy(_variant("generous", {"action": "refund_only", "payer": "platform"}))
    (tmp_path / "g.json").write_text(json.dumps(generous.content))
    text = f"""
name: later
kind: refund_policy
strategies: [g, taobao-2024-08]
policies: {{g: g.json}}
start_date: {env.clock.now().date() + timedelta(days=3)}
"""
    policy_race.create(races.load_yaml(text), session=session, base=tmp_path)
    session.commit()
    d = _decide(session, env, "b1", 0)
    assert d.policy_version == LIFECYCLE_POLICY.version and RACE_KEY not in d.inputs
