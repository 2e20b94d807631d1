"""A ship verdict proposes the ship decision (pending, the report frozen as evidence); any
other verdict proposes nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "experiments"))
from experiment_data import load, make_data  # noqa: E402

from tianping.experiments import service  # noqa: E402

YAML = """
name: checkout
variants: [{name: control}, {name: treatment}, {name: bold, weight: 0.5}]
primary_metric: orders
status: running
start_date: 2024-06-01
end_date: 2024-06-14
rule:
  success: [{metric: orders, min_effect: 0.3}]
  guardrails: [{metric: aov, margin: 0.5}]
"""


@pytest.fixture
def wh(tmp_path):
    from tianping.settings import Settings
    from tianping.warehouse import connect

    w = connect(Settings(home=tmp_path, warehouse=f"duckdb://{tmp_path / 'w.duckdb'}"))
    load(w, make_data(np.random.default_rng(3), n_units=3000))
    yield w
    w.close()


def test_a_ship_verdict_proposes_once_and_never_approves(ruled, wh, clock):
    from tianping.governance.verdicts import propose_ship

    service.create(service.load_yaml(YAML), session=ruled)
    out = propose_ship("checkout", session=ruled, warehouse=wh, actor="ana", clock=clock)
    d = out.decision
    assert out.verdict == "ship" and out.created
    assert (d.kind, d.status, d.payload) == (
        "ship_experiment", "pending", {"experiment": "checkout", "variant": "treatment"},
    )  # fmt: skip
    frozen = json.loads(d.evidence[0].content)
    assert d.evidence[0].ref == "experiment:checkout"
    assert frozen["verdict"] == {"verdict": "ship", "treatment": "treatment",
                                 "reasons": list(out.reasons)}  # fmt: skip
    assert service.get_or_raise("checkout", session=ruled).shipped_variant is None
    again = propose_ship("checkout", session=ruled, warehouse=wh, actor="bo", clock=clock)
    assert again.decision.id == d.id and not again.created


def test_any_other_verdict_proposes_nothing(ruled, wh, clock):
    from tianping.governance.verdicts import pending_ship, propose_ship

    strict = YAML.replace("margin: 0.5", "margin: 0.001")  # aov cannot be shown that close
    service.create(service.load_yaml(strict), session=ruled)
    out = propose_ship("checkout", session=ruled, warehouse=wh, actor="ana", clock=clock)
    assert out.decision is None and out.verdict in ("do not ship", "keep running")
    assert any("aov not shown non-inferior" in r for r in out.reasons)
    assert pending_ship("checkout", session=ruled) is None
