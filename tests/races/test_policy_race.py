"""Refund-policy races on a small simulated market: the race stepped over consecutive windows
of past refund requests converges on the policy that is truly cheapest on the simulator's
ground truth; its statistics equal an independent per-request computation; bad input fails
with one clear error."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tianping.aftersales.policy import (
    RefundInputs,
    evaluate,
    evaluate_batch,
    load_builtin,
)
from tianping.aftersales.replay import replay_inputs
from tianping.clock import FixedClock
from tianping.errors import Conflict, InvalidInput, UsageError
from tianping.experiments import service as experiments
from tianping.experiments.assignment import assign
from tianping.races import policy_race, service
from tianping.races.refund_arms import race_snapshot
from tianping.settings import Settings

ARMS = ["taobao-2023-12", "taobao-2024-08", "1688-2025-03"]
START = date(2024, 4, 8)
SPEC = f"""
name: refund-race
kind: refund_policy
strategies: [{", ".join(ARMS)}]
min_units: 50
draws: 4000
seed: 1
confirm_units: 300
start_date: {START}
"""
HANDLING = 1000


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    from tianping.simulate.params import MarketParams
    from tianping.simulate.service import run_simulation

    path = tmp_path_factory.mktemp("market") / "w.duckdb"
    params = dataclasses.replace(
        MarketParams(), products_per_merchant=2.0, lemon_share=0.05, lemon_multiplier=10.0
    )
    wh = _connect(path)
    try:
        run_simulation(wh, buyers=20_000, days=120, seed=0, params=params)
    finally:
        wh.close()
    return path


def _connect(path: Path):
    from tianping.warehouse import connect

    return connect(Settings(home=path.parent, warehouse=f"duckdb://{path}"))


@pytest.fixture
def wh(market):
    w = _connect(market)
    yield w
    w.close()


@pytest.fixture
def sqlite_session(tmp_path):
    """The convergence test is about statistics, not store concurrency: SQLite only."""
    from tianping.store import init_schema, make_engine, make_sessionmaker

    engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    init_schema(engine)
    s = make_sessionmaker(engine)()
    yield s
    s.close()
    engine.dispose()


def _windows(n: int, days: int = 14) -> list[tuple[date, date]]:
    return [
        (START + timedelta(days=i * days), START + timedelta(days=i * days + days - 1))
        for i in range(n)
    ]


def _step(session, wh, start: date, end: date):
    clock = FixedClock(datetime.combine(end, datetime.min.time(), UTC))
    return policy_race.step(
        "refund-race", start=start, end=end, session=session, warehouse=wh, clock=clock
    )


def _cost(policy_name: str, inputs) -> tuple[float, int]:
    """Total cost and requests when one policy decides every request (by hand, from the
    decisions' fields and the ground truth)."""
    b = evaluate_batch(load_builtin(policy_name), inputs.columns | {"currency": "CNY"})
    cost = 0
    for i in range(len(b)):
        row = b.row(i)
        kept = row["action"] in ("refund_only", "partial_refund")
        if row["payer"] == "platform" or (kept and inputs.abusive[i]):
            cost += row["refund_amount_minor"]  # the platform's money, or abuse's take
        if row["action"] in ("manual_review", "merchant_negotiation"):
            cost += HANDLING
    return cost, len(b)


def test_the_race_converges_on_the_truly_cheapest_policy_and_confirms_it(sqlite_session, wh):
    session = sqlite_session
    race = policy_race.create(service.load_yaml(SPEC), session=session)
    assert set(race.spec["policy_versions"]) == set(ARMS)
    assert race.spec["policy_versions"]["taobao-2023-12"] == load_builtin("taobao-2023-12").version
    windows = iter(_windows(8))
    adaptive = []
    while race.phase == "racing":
        start, end = next(windows)
        row = _step(session, wh, start, end)
        adaptive.append((start, end))
        written = experiments.get_or_raise("refund-race", session=session).variants
        assert {v["name"]: v["weight"] for v in written} == pytest.approx(
            {s["arm"]: max(s["weight"], 1e-9) for s in row.standings}
        )
    assert len(adaptive) <= 4
    totals = {a: [0, 0] for a in ARMS}
    for start, end in adaptive:
        inputs = replay_inputs(wh, start=start, end=end)
        for a in ARMS:
            c, n = _cost(a, inputs)
            totals[a][0] += c
            totals[a][1] += n
    truth = {a: c / n for a, (c, n) in totals.items()}
    best = min(truth, key=truth.get)
    assert truth[best] < 0.5 * sorted(truth.values())[1]  # a clear winner, not a coin toss
    assert race.winner == best
    assert race.confirm_start == adaptive[-1][1] + timedelta(days=1)

    # the confirmation: fresh buyers only, winner vs comparator at equal weights
    confirm = experiments.get_or_raise("refund-race.confirm", session=session)
    assert [v["name"] for v in confirm.variants] == [race.comparator, race.winner]
    seen = set()
    for start, end in adaptive:
        seen |= set(replay_inputs(wh, start=start, end=end).buyer_ids.tolist())
    start, end = next(windows)
    row = _step(session, wh, start, end)
    assert row.phase == "confirming"
    buyers = replay_inputs(wh, start=start, end=end).buyer_ids
    fresh = {b for b in buyers.tolist() if b not in seen}
    arms = [assign(race_snapshot(confirm), "refund-race.confirm", b) for b in sorted(fresh)]
    assert [s["n"] for s in row.standings] == [
        arms.count(race.comparator),
        arms.count(race.winner),
    ]
    while race.phase == "confirming":
        row = _step(session, wh, *next(windows))
    assert race.phase == "decided" and race.decision == "ship"
    assert row.confirmation["winner"] == best and row.confirmation["effect_size"] < 0


def test_a_step_measures_each_arm_as_an_independent_computation_does(race_session, wh):
    session = race_session
    race = policy_race.create(service.load_yaml(SPEC), session=session)
    start, end = _windows(1)[0]
    config = race_snapshot(experiments.get_or_raise("refund-race", session=session))
    row = _step(session, wh, start, end)
    inputs = replay_inputs(wh, start=start, end=end)
    per_buyer: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    errs: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    arm_of = {}
    cols = inputs.columns
    for i, buyer in enumerate(inputs.buyer_ids.tolist()):
        arm = assign(config, "refund-race", buyer)  # the single-unit assignment
        arm_of[buyer] = arm
        request = {
            k: (v.labels[v.codes[i]] if hasattr(v, "codes") else v[i].item())
            for k, v in cols.items()
        }
        d = evaluate(load_builtin(arm), RefundInputs(currency="CNY", **request))
        abusive = bool(inputs.abusive[i])
        platform = d.refund_amount_minor if d.payer == "platform" else 0
        kept = d.action in ("refund_only", "partial_refund")
        people = d.action in ("manual_review", "merchant_negotiation")
        values = per_buyer[buyer]
        values["cost_per_request"].append(
            platform + (d.refund_amount_minor if kept and abusive and not platform else 0)
            + HANDLING * people
        )  # fmt: skip
        values["auto_decision_rate"].append(0.0 if people else 1.0)
        values["genuine_rejected_rate"].append(float(d.action == "reject" and not abusive))
        e = errs[arm]
        e["abusive" if abusive else "honest"] += 1
        e["honest_refused"] += d.action == "reject" and not abusive
        e["honest_refused_minor"] += request["amount_minor"] * (
            d.action == "reject" and not abusive
        )
        paid_bad = kept and abusive and d.refund_amount_minor > 0
        e["abusive_paid"] += paid_bad
        e["abusive_paid_minor"] += d.refund_amount_minor * paid_bad
        e["merchant_loss_minor"] += d.refund_amount_minor * (paid_bad and d.payer == "merchant")
        e["platform_cost_minor"] += platform
        e["to_a_person"] += people
        honest_paid = not abusive and d.refund_amount_minor > 0
        e["paid_at_once"] += honest_paid and not d.requires_return
        e["paid_after_return"] += honest_paid and d.requires_return
    assert race.spec["goal_metric"] == "cost_per_request"
    for s in row.standings:
        buyers = [b for b, a in arm_of.items() if a == s["arm"]]
        assert s["n"] == s["new_units"] == len(buyers) > 0
        for metric, stats in s["stats"].items():
            y = np.array([sum(per_buyer[b][metric]) for b in buyers])
            d = np.array([len(per_buyer[b][metric]) for b in buyers], dtype=float)
            assert stats["n"] == len(buyers)
            assert stats["sum"] == pytest.approx(y.sum())
            assert stats["sum_sq"] == pytest.approx((y * y).sum())
            assert stats["den_sum"] == d.sum()
            assert stats["den_sum_sq"] == (d * d).sum()
            assert stats["num_den_sum"] == pytest.approx((y * d).sum())
        goal = s["stats"]["cost_per_request"]
        assert s["estimate"] == pytest.approx(goal["sum"] / goal["den_sum"])
        # the window's two-sided errors, judged by the simulator's ground truth
        assert s["errors"] == dict(errs[s["arm"]]) | {
            "source": "ground truth (refund_truth)", "currency": "CNY"
        }  # fmt: skip
    # the next window adds to the running totals; the report sums the errors over the steps
    row2 = _step(session, wh, *_windows(2)[1])
    for s1, s2 in zip(row.standings, row2.standings, strict=True):
        assert s2["n"] == s1["n"] + s2["new_units"]
    from tianping.races import report as rr

    doc = rr.report_json(service.report_data("refund-race", session=session))
    by_arm = {r["arm"]: r for r in doc["errors"]}
    assert sorted(by_arm) == sorted(ARMS)
    for s1, s2 in zip(row.standings, row2.standings, strict=True):
        honest = s1["errors"]["honest"] + s2["errors"]["honest"]
        refused = s1["errors"]["honest_refused"] + s2["errors"]["honest_refused"]
        assert by_arm[s1["arm"]]["honest_requests"] == honest
        assert by_arm[s1["arm"]]["honest_refused"] == refused
        assert by_arm[s1["arm"]]["honest_refused_rate"] == round(refused / honest, 4)
    html = rr.report_html(service.report_data("refund-race", session=session))
    assert "Two-sided errors" in html


def test_bad_definitions_and_windows_fail_with_one_clear_error(race_session, wh, tmp_path):
    session = race_session
    with pytest.raises(InvalidInput, match="goal_metric: unknown policy-race metric 'conversion'"):
        service.load_yaml(SPEC + "goal_metric: conversion\n")
    with pytest.raises(InvalidInput, match="guardrails: unknown policy-race metric 'nps'"):
        service.load_yaml(SPEC + "guardrails: [nps]\n")
    with pytest.raises(InvalidInput, match="policies: pdd is not one of the strategies"):
        service.load_yaml(SPEC + "policies: {pdd: pinduoduo-2021}\n")
    with pytest.raises(InvalidInput, match="budget: a policy race has no budget mode"):
        service.load_yaml(SPEC + "budget: {period_minor: 100}\n")
    with pytest.raises(InvalidInput, match="policies: only a race of kind refund_policy"):
        service.load_yaml(
            "name: x\ngoal_metric: conversion\nstrategies: [a, b]\nstart_date: 2024-06-01\n"
            "policies: {a: taobao-2023-12}\n"
        )
    with pytest.raises(UsageError, match="policy file .*missing.yaml does not exist"):
        policy_race.create(
            service.load_yaml(SPEC + "policies: {taobao-2023-12: missing.yaml}\n"),
            session=session,
        )
    pinned = SPEC + "policy_versions: {taobao-2023-12: '" + "0" * 64 + "'}\n"
    with pytest.raises(InvalidInput, match="policy_versions: taobao-2023-12: the definition pins"):
        policy_race.create(service.load_yaml(pinned), session=session)

    policy_race.create(service.load_yaml(SPEC), session=session)
    with pytest.raises(Conflict, match="policy race 'refund-race' is running"):
        policy_race.create(service.load_yaml(SPEC.replace("refund-race", "other")), session=session)
    with pytest.raises(UsageError, match="step it over a window"):
        service.step("refund-race", session=session, warehouse=wh)
    with pytest.raises(UsageError, match="the race starts on 2024-04-08"):
        _step(session, wh, date(2024, 4, 1), date(2024, 4, 10))
    with pytest.raises(UsageError, match="ends .* before it starts"):
        _step(session, wh, date(2024, 4, 20), date(2024, 4, 10))
    _step(session, wh, START, START + timedelta(days=13))
    with pytest.raises(UsageError, match="overlaps step 1's"):
        _step(session, wh, START + timedelta(days=13), START + timedelta(days=20))


def test_a_policy_file_arm_and_a_missing_ground_truth(race_session, tmp_path):
    """A policy file next to the YAML is an arm (stored by content version); without the
    simulator's ground truth the abuse-based metrics refuse, and truth-free ones work."""
    from tianping.refunds import policies
    from tianping.simulate.service import run_simulation

    session = race_session
    content = dict(load_builtin("taobao-2023-12").content, name="strict")
    (tmp_path / "strict.json").write_text(json.dumps(content))
    spec = SPEC.replace("1688-2025-03", "strict") + "policies: {strict: strict.json}\n"
    race = policy_race.create(service.load_yaml(spec), session=session, base=tmp_path)
    version = race.spec["policy_versions"]["strict"]
    assert policies.by_version(version, session=session).name == "strict"

    wh = _connect(tmp_path / "no-truth.duckdb")
    try:
        run_simulation(wh, buyers=2000, days=30, seed=2)
        wh.drop("refund_truth")
        with pytest.raises(InvalidInput, match="cost_per_request needs the abuse ground truth"):
            policy_race.step("refund-race", start=START, end=START, session=session, warehouse=wh)
        service.stop("refund-race", session=session)
        free = SPEC.replace("refund-race", "free") + (
            "goal_metric: platform_refund_per_request\nguardrails: [auto_decision_rate]\n"
        )
        policy_race.create(service.load_yaml(free), session=session)
        row = policy_race.step(
            "free", start=START, end=START + timedelta(days=13), session=session, warehouse=wh
        )
        assert sum(s["n"] for s in row.standings) > 0
    finally:
        wh.close()


def test_shipping_a_policy_race_activates_the_shipped_policy(race_session):
    """The race stops; the shipped arm's policy (its pinned version) decides from then on."""
    from tianping.refunds import policies

    session = race_session
    race = policy_race.create(service.load_yaml(SPEC), session=session)
    shipped = service.ship("refund-race", "1688-2025-03", session=session)
    assert (shipped.phase, shipped.shipped_variant) == ("stopped", "1688-2025-03")
    active = policies.active(session=session, now=datetime.now(UTC))
    assert active.version == race.spec["policy_versions"]["1688-2025-03"]
    assert active.name == "1688-2025-03"


def test_the_cli_steps_a_policy_race_over_a_window_as_the_library_does(market, tmp_path):
    from typer.testing import CliRunner

    from tianping.cli.main import app
    from tianping.store import init_schema, make_engine, make_sessionmaker

    runner = CliRunner()
    spec = tmp_path / "race.yaml"
    spec.write_text(SPEC)
    base = ["--home", str(tmp_path / "h"), "--warehouse", f"duckdb://{market}"]

    def run(*args):
        return runner.invoke(app, [*base, *args])

    assert run("race", "create", str(spec)).exit_code == 0
    end = START + timedelta(days=13)
    out = run("race", "step", "refund-race", "--from", str(START), "--to", str(end),
              "--format", "json")  # fmt: skip
    assert out.exit_code == 0, out.output
    step = json.loads(out.stdout)
    assert step["number"] == 1 and step["window"] == [str(START), str(end)]

    engine = make_engine(f"sqlite:///{tmp_path / 'library.sqlite'}")  # the same step, by hand
    init_schema(engine)
    with make_sessionmaker(engine)() as s:
        policy_race.create(service.load_yaml(SPEC), session=s)
        w = _connect(market)
        try:
            row = _step(s, w, START, end)
        finally:
            w.close()
        assert step["standings"] == json.loads(json.dumps(row.standings))
        assert step["leader"] == row.leader and step["reasons"] == row.reasons
    engine.dispose()

    half = run("race", "step", "refund-race", "--from", str(START))
    assert half.exit_code != 0 and "give both --from and --to, or neither" in half.output
    again = run("race", "step", "refund-race", "--from", str(START), "--to", str(end))
    assert again.exit_code != 0 and "overlaps step 1's" in again.output
    assert "Traceback" not in half.output + again.output
    shown = run("race", "report", "refund-race", "--format", "json")
    assert shown.exit_code == 0 and len(json.loads(shown.stdout)["steps"]) == 1
