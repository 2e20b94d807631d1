"""A race end to end through the store and the warehouse: create, adaptive steps that rewrite
the weights assignment reads, elimination, stop, confirmation on fresh units, decision."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import numpy as np
import pytest
from race_data import day_of_traffic, write

from tianping.clock import FixedClock
from tianping.errors import Conflict, InvalidInput, NotFound
from tianping.experiments import service as experiments
from tianping.experiments.assignment import assign
from tianping.races import service
from tianping.races.report import report_html, report_json

RATES = {"plain": 0.05, "coupon": 0.08, "bundle": 0.20}
SPEC = """
name: checkout-race
goal_metric: conversion
strategies: [plain, coupon, bundle]
control: plain
control_share: 0.2
min_share: 0.05
guardrails: []
min_units: 50
draws: 4000
seed: 7
confirm_units: 300
start_date: 2024-06-01
budget: {period_minor: 1000000, currency: CNY, floor_minor: 50000}
"""


def _day(n: int) -> datetime:
    return datetime(2024, 6, n, tzinfo=UTC)


def test_race_end_to_end(race_session, duckdb_warehouse):
    session, wh = race_session, duckdb_warehouse
    rng = np.random.default_rng(5)
    race = service.create(service.load_yaml(SPEC), session=session)
    assert race.phase == "racing"
    weights = [
        v["weight"] for v in experiments.get_or_raise("checkout-race", session=session).variants
    ]
    np.testing.assert_allclose(weights, [0.2, 0.4, 0.4])

    batches, day, unit = [], 1, 0
    while race.phase == "racing" and day < 10:
        ids = np.array([f"u{unit + i}" for i in range(400)])
        unit += 400
        snap = experiments.snapshot(session=session)
        batches.append(day_of_traffic(snap, "checkout-race", ids, RATES, _day(day), rng))
        write(wh, batches)
        day += 1
        row = service.step(
            "checkout-race", session=session, warehouse=wh, clock=FixedClock(_day(day))
        )
        variants = experiments.get_or_raise("checkout-race", session=session).variants
        written = {v["name"]: v["weight"] for v in variants}
        assert written == pytest.approx({s["arm"]: max(s["weight"], 1e-9) for s in row.standings})
        assert written["plain"] == pytest.approx(0.2)  # the control keeps its fixed share
        assert row.budget is not None
        assert sum(b["allocated_minor"] for b in row.budget) == 1_000_000
    assert race.phase == "confirming"
    assert (race.winner, race.comparator) == ("bundle", "plain")
    assert experiments.get_or_raise("checkout-race", session=session).status == "stopped"
    confirm = experiments.get_or_raise("checkout-race.confirm", session=session)
    assert confirm.status == "running" and confirm.start_date == race.confirm_start
    assert [v["name"] for v in confirm.variants] == ["plain", "bundle"]

    with pytest.raises(Conflict, match="fresh units"):
        service.step("checkout-race", session=session, warehouse=wh,
                     clock=FixedClock(_day(day)))  # fmt: skip
    start = datetime.combine(race.confirm_start, datetime.min.time())
    ids = np.array([f"fresh{i}" for i in range(800)])
    snap = experiments.snapshot(session=session)
    batches.append(day_of_traffic(snap, "checkout-race.confirm", ids, RATES, start, rng))
    write(wh, batches)
    later = FixedClock(start.replace(tzinfo=UTC).replace(day=start.day + 1))
    row = service.step("checkout-race", session=session, warehouse=wh, clock=later)
    assert row.phase == "confirming" and row.stop
    assert race.phase == "decided" and race.decision == "ship"
    c = row.confirmation
    assert c["effect_size_ci_lower"] < RATES["bundle"] - RATES["plain"] < c["effect_size_ci_upper"]
    with pytest.raises(Conflict):
        service.step("checkout-race", session=session, warehouse=wh, clock=later)

    data = service.report_data("checkout-race", session=session)
    assert [s["number"] for s in data["steps"]] == list(range(1, len(data["steps"]) + 1))
    page = report_html(data)
    assert page.count("<svg") == 3 and "<script" not in page and "https://" not in page
    assert "biased" in page and "ship" in page
    doc = report_json(data)
    assert doc["confirmation"]["ship"] is True
    assert doc["budget"][0]["strategy"] == "plain"

    shipped = service.ship("checkout-race", session=session, clock=later)  # the winner
    assert (shipped.phase, shipped.decision, shipped.shipped_variant) == (
        "decided",
        "ship",
        "bundle",
    )
    snap = experiments.snapshot(session=session)
    assert [e.name for e in snap.experiments] == ["checkout-race"]
    assert {assign(snap, "checkout-race", f"n{i}") for i in range(500)} == {"bundle"}
    with pytest.raises(Conflict, match="already shipped"):
        service.ship("checkout-race", "plain", session=session, clock=later)


def test_shipping_a_running_race_stops_it_and_serves_the_strategy(race_session):
    from tianping.audit import log as audit

    session = race_session
    service.create(service.load_yaml(SPEC), session=session)
    with pytest.raises(Conflict, match="has no winner yet"):
        service.ship("checkout-race", session=session)
    with pytest.raises(NotFound, match="no strategy 'gift'"):
        service.ship("checkout-race", "gift", session=session)
    race = service.ship("checkout-race", "coupon", session=session, clock=FixedClock(_day(3)))
    assert (race.phase, race.shipped_variant, race.shipped_at) == ("stopped", "coupon", _day(3))
    row = experiments.get_or_raise("checkout-race", session=session)
    assert (row.status, row.shipped_variant) == ("stopped", "coupon")
    with pytest.raises(Conflict, match="is stopped; nothing to step"):
        service.step("checkout-race", session=session, warehouse=None)
    actions = [e.action for e in audit.entries(session=session)]
    assert actions == ["experiment.created", "race.created", "experiment.stopped",
                       "experiment.shipped", "race.shipped"]  # fmt: skip


def test_steps_are_reproducible_and_logged(race_session, duckdb_warehouse):
    session, wh = race_session, duckdb_warehouse
    service.create(service.load_yaml(SPEC.replace("bundle", "combo")), session=session)
    snap = experiments.snapshot(session=session)
    ids = np.array([f"u{i}" for i in range(300)])
    rates = {"plain": 0.1, "coupon": 0.1, "combo": 0.1}
    write(
        wh, [day_of_traffic(snap, "checkout-race", ids, rates, _day(1), np.random.default_rng(1))]
    )
    row = service.step("checkout-race", session=session, warehouse=wh, clock=FixedClock(_day(2)))
    assert row.number == 1 and row.seed == 7 and row.phase == "racing"
    assert sum(s["n"] for s in row.standings) == 300
    assert abs(sum(s["weight"] for s in row.standings) - 1) < 1e-9
    assert 0 <= row.moved_share <= 1
    assert row.regret >= 0 and row.equal_split_regret >= 0


def test_bad_definitions_name_the_field(race_session):
    with pytest.raises(InvalidInput, match="strategies"):
        service.load_yaml(SPEC.replace("[plain, coupon, bundle]", "[plain]"))
    with pytest.raises(InvalidInput, match="control"):
        service.load_yaml(SPEC.replace("control: plain", "control: nobody"))
    with pytest.raises(InvalidInput, match="unknown metric"):
        service.load_yaml(SPEC.replace("goal_metric: conversion", "goal_metric: happiness"))
    with pytest.raises(InvalidInput, match="not valid YAML"):
        service.load_yaml("name: [")
    with pytest.raises(NotFound):
        service.get_or_raise("nope", session=race_session)
    service.create(service.load_yaml(SPEC), session=race_session)
    with pytest.raises(Conflict):
        service.create(service.load_yaml(SPEC), session=race_session)


def test_yaml_round_trip():
    spec = service.load_yaml(SPEC)
    assert service.load_yaml(service.dump_yaml(spec)) == spec
    assert spec.start_date == date(2024, 6, 1) and spec.confirm_against == "control"


def test_the_report_states_the_rule_from_the_first_step(race_session):
    spec = service.load_yaml(
        SPEC.replace(
            "guardrails: []",
            "guardrails: [refund_rate, nps]\nguardrail_margins: {nps: 3}\nbest_threshold: 0.9",
        )  # fmt: skip
    )
    service.create(spec, session=race_session)
    doc = report_json(service.report_data("checkout-race", session=race_session))
    rule = doc["rule"]
    assert (rule["best_threshold"], rule["eliminate_below"], rule["min_units"]) == (0.9, 0.01, 50)
    assert (rule["confirm_against"], rule["confirm_units"], rule["alpha"]) == ("control", 300, 0.05)
    assert rule["guardrails"] == [
        {"metric": "refund_rate", "margin": 0.05, "scale": "relative", "higher_is_better": False},
        {"metric": "nps", "margin": 3.0, "scale": "absolute", "higher_is_better": True},
    ]
    page = report_html(service.report_data("checkout-race", session=race_session))
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert "Decision rule" in text and "no winner yet" in text  # before any step
    assert "leader's chance reaches 90%, every arm still racing has 50 units" in text
    assert "guardrail refund_rate: at most 5.0% worse (lower is better)" in text
    assert "guardrail nps: at most 3 (absolute) worse (higher is better)" in text
