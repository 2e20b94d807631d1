"""The four shipped policies replayed on a small simulated marketplace, each doing what its
documentation (``docs/aftersales.md``) says.

The market is the simulator's defaults with few products per merchant and clearer lemons, so
that 8,000 buyers over 90 days give products enough orders for the defect signal to speak. The
replay window is the last four weeks; scores are taken at its start.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tianping.aftersales.policy import PAYERS, evaluate_batch, load_builtin
from tianping.aftersales.replay import replay, replay_inputs
from tianping.settings import Settings

START, END = date(2024, 6, 1), date(2024, 6, 29)
QUALITY = {"quality", "damaged", "not_as_described", "counterfeit", "wrong_item"}
EVERYDAY = {"apparel", "baby", "beauty", "books", "food", "home", "sports"}


def _connect(path: Path):
    from tianping.warehouse import connect

    return connect(Settings(home=path.parent, warehouse=f"duckdb://{path}"))


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
        run_simulation(wh, buyers=8000, days=90, seed=3, params=params)
    finally:
        wh.close()
    return path


@pytest.fixture(scope="module")
def inputs(market):
    wh = _connect(market)
    try:
        return replay_inputs(wh, start=START, end=END)
    finally:
        wh.close()


@pytest.fixture(scope="module")
def cols(inputs) -> dict[str, np.ndarray]:
    c = dict(inputs.columns)
    for name in ("category", "reason"):
        coded = c[name]
        c[name] = np.asarray(coded.labels, dtype=object)[coded.codes]
    return c


def decide(inputs, name: str, *, negotiate: bool = True):
    return evaluate_batch(
        load_builtin(name), inputs.columns | {"currency": "CNY"}, negotiate=negotiate
    )


def rules(batch) -> np.ndarray:
    return np.asarray(batch.rule_ids, dtype=object)[batch.rule_index]


def test_the_simulated_requests_reach_every_input_region(inputs, cols):
    assert len(inputs.refund_ids) > 200 and inputs.unmatched == 0
    assert inputs.abusive is not None and inputs.abusive.any()
    # simulator reasons arrive as the policies' reason codes
    assert set(cols["reason"]) == {"changed_mind", "quality", "not_as_described", "not_received"}
    assert (cols["buyer_score"] >= 700).any() and (cols["buyer_score"] < 650).any()
    assert (cols["merchant_score"] >= 4.8).any() and (cols["merchant_score"] < 4.8).any()
    assert cols["defect_flag"].any() and cols["abnormal_behaviour"].any()
    assert (~cols["delivered"]).any() and (cols["amount_minor"] < 2000).any()


def test_pinduoduo_2021_small_orders_at_once_partial_refunds_for_excellent_credit(inputs, cols):
    b = decide(inputs, "pinduoduo-2021")
    fired = rules(b)
    small = (
        cols["delivered"] & (cols["amount_minor"] < 2000) & np.isin(cols["category"], list(EVERYDAY))
        & (cols["reason"] != "changed_mind")
    )  # fmt: skip
    assert small.any()
    assert (fired[small] == "small-order").all()
    assert (b.actions[small] == "refund_only").all() and not b.requires_return[small].any()
    assert (b.refund_amount_minor[small] == cols["amount_minor"][small]).all()
    partial = b.actions == "partial_refund"
    assert partial.any()
    assert (cols["buyer_score"][partial] >= 700).all()
    assert np.isin(cols["reason"][partial], list(QUALITY)).all()
    half = (cols["amount_minor"][partial] + 1) // 2  # half, rounded half up
    assert (b.refund_amount_minor[partial] == half).all()
    assert not b.requires_return[partial].any()
    # below excellent credit the same claims go back to the merchant with the goods
    big_quality = (
        cols["delivered"] & (cols["amount_minor"] >= 2000) & np.isin(cols["reason"], list(QUALITY))
    )
    assert (b.actions[big_quality & (cols["buyer_score"] < 700)] == "return_and_refund").all()
    assert (b.actions[~cols["delivered"]] == "refund_only").all()
    assert b.payers[b.refund_amount_minor > 0].tolist() == ["merchant"] * int(
        (b.refund_amount_minor > 0).sum()
    )


def test_taobao_2023_12_refunds_data_judged_defects_without_proof_or_return(inputs, cols):
    b = decide(inputs, "taobao-2023-12")
    judged = cols["delivered"] & cols["defect_flag"] & np.isin(cols["reason"], list(QUALITY))
    assert judged.any()
    assert (rules(b)[judged] == "data-judged-defect").all()
    assert (b.actions[judged] == "refund_only").all() and not b.requires_return[judged].any()
    assert (b.refund_amount_minor[judged] == cols["amount_minor"][judged]).all()
    # the same claims on unflagged products from ordinary buyers need the goods back
    ordinary = (
        cols["delivered"] & ~cols["defect_flag"] & np.isin(cols["reason"], list(QUALITY))
        & (cols["buyer_score"] < 700)
    )  # fmt: skip
    assert ordinary.any() and (b.actions[ordinary] == "return_and_refund").all()


def test_taobao_2024_08_top_stores_negotiate_and_abnormal_claims_are_rejected(inputs, cols):
    b = decide(inputs, "taobao-2024-08")
    abnormal = cols["abnormal_behaviour"]
    assert (b.actions[abnormal] == "reject").all()
    screened = ~abnormal & (cols["buyer_recent_claims"] < 5) & cols["delivered"]
    top = screened & (cols["merchant_score"] >= 4.8) & (cols["reason"] != "empty_parcel")
    table = decide(inputs, "taobao-2024-08", negotiate=False)
    refunded = np.isin(table.actions, ["refund_only", "partial_refund", "return_and_refund"])
    assert (top & refunded).any() and (top & ~refunded).any()
    # what the table would refund goes to the merchant first; its refusals stand
    assert (b.actions[top & refunded] == "merchant_negotiation").all()
    assert (b.actions[top & ~refunded] == table.actions[top & ~refunded]).all()
    assert not (b.actions[cols["merchant_score"] < 4.8] == "merchant_negotiation").any()
    # abnormal-behaviour detection catches abuse that December 2023 paid out or sent back
    before = decide(inputs, "taobao-2023-12")
    caught = inputs.abusive & abnormal
    assert caught.any() and (before.refund_amount_minor[caught] > 0).any()


def test_1688_2025_03_platform_funds_credible_quality_claims(inputs, cols):
    b = decide(inputs, "1688-2025-03")
    platform = b.payer_code == PAYERS.index("platform")
    assert platform.any()
    assert (cols["buyer_score"][platform] >= 650).all()
    assert np.isin(cols["reason"][platform], list(QUALITY)).all()
    assert (cols["amount_minor"][platform] <= 500_000).all()
    electronics = platform & (cols["category"] == "electronics")
    assert (
        b.requires_return[electronics].all()
        and not b.requires_return[platform & ~electronics].any()
    )
    doubtful = (
        cols["delivered"] & ~cols["abnormal_behaviour"] & np.isin(cols["reason"], list(QUALITY))
        & (cols["buyer_score"] < 650)
    )  # fmt: skip
    assert doubtful.any() and (b.payers[doubtful] == "merchant").all()


def test_replay_reports_on_the_simulator_data(market):
    wh = _connect(market)
    try:
        report = replay(
            wh, load_builtin("taobao-2023-12"), start=START, end=END,
            against=load_builtin("taobao-2024-08"), currency="CNY",
        )  # fmt: skip
    finally:
        wh.close()
    dec, aug = report.outcomes
    assert dec.requests == aug.requests == report.requests
    assert aug.by_action["merchant_negotiation"] > 0 == dec.by_action["merchant_negotiation"]
    assert aug.auto_decision_rate < dec.auto_decision_rate  # top stores settle it themselves
    assert aug.abusive_requests == dec.abusive_requests > 0
    assert aug.abuse_loss_minor <= dec.abuse_loss_minor
    assert report.comparison.changed == sum(t["requests"] for t in report.comparison.transitions)
    targets = {t["to"] for t in report.comparison.transitions}
    assert {"reject", "merchant_negotiation"} <= targets


def test_cli_replays_all_four_policies_on_simulator_data(market):
    from tianping.cli.main import app

    runner = CliRunner()
    base = ["--home", str(market.parent), "--warehouse", f"duckdb://{market}", "policy", "replay"]
    window = ["--from", START.isoformat(), "--to", END.isoformat(), "--format", "json"]
    pairs = [("pinduoduo-2021", "taobao-2023-12"), ("taobao-2024-08", "1688-2025-03")]
    outcomes = {}
    for a, b in pairs:
        out = runner.invoke(app, [*base, a, "--against", b, *window])
        assert out.exit_code == 0, out.output
        body = json.loads(out.output)
        for row in body["outcome"]:
            outcomes[row["policy"].split("@")[0]] = row
        assert body["comparison"][0]["changed"] > 0
    assert set(outcomes) == {"pinduoduo-2021", "taobao-2023-12", "taobao-2024-08", "1688-2025-03"}
    assert float(outcomes["1688-2025-03"]["refunded_by_platform"]) > 0
    for name in ("pinduoduo-2021", "taobao-2023-12", "taobao-2024-08"):
        assert outcomes[name]["refunded_by_platform"] == "0.00"
    assert all(row["abusive_requests"] > 0 for row in outcomes.values())


def test_policies_are_ab_tested_by_buyer_with_the_experiment_engine(inputs):
    from tianping.aftersales import whatif
    from tianping.errors import InvalidInput
    from tianping.experiments.assignment import assign

    control, treatment = decide(inputs, "taobao-2023-12"), decide(inputs, "1688-2025-03")
    experiment = whatif.policy_experiment("refund-policy-ab", ["control", "treatment"])
    arms = whatif.ab_split(experiment, [control, treatment], inputs.buyer_ids, inputs.abusive)
    assert [a.variant for a in arms] == ["control", "treatment"]
    assert sum(a.outcome.requests for a in arms) == len(inputs.refund_ids)
    # each buyer is in the arm the engine assigns, and sees only that arm's policy
    in_treatment = np.array([assign(experiment, "refund-policy-ab", b) == "treatment"
                             for b in inputs.buyer_ids])  # fmt: skip
    expected = whatif.outcome(whatif.take(treatment, in_treatment), inputs.abusive[in_treatment])
    assert arms[1].outcome == expected
    assert arms[1].buyers == len(set(inputs.buyer_ids[in_treatment]))
    assert (
        arms[0].outcome.refunded_minor["platform"] == 0 < arms[1].outcome.refunded_minor["platform"]
    )
    with pytest.raises(InvalidInput, match="2 variants for 1 policies"):
        whatif.ab_split(experiment, [control], inputs.buyer_ids)


def test_cli_split_reports_both_arms(market):
    from tianping.cli.main import app

    args = ["--home", str(market.parent), "--warehouse", f"duckdb://{market}", "policy", "replay",
            "taobao-2023-12", "--from", START.isoformat(), "--to", END.isoformat(),
            "--format", "json", "--split", "ab"]  # fmt: skip
    alone = CliRunner().invoke(app, args)
    assert alone.exit_code != 0 and "needs a second policy" in alone.output
    out = CliRunner().invoke(app, [*args, "--against", "1688-2025-03"])
    assert out.exit_code == 0, out.output
    arms = json.loads(out.output)["A/B split by buyer (experiment ab)"]
    assert [a["arm"] for a in arms] == ["control", "treatment"]
    assert arms[1]["policy"].startswith("1688-2025-03@")
