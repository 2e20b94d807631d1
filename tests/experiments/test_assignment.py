"""Assignment: pinned cases, single vs batch parity, and statistical properties."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from tianping import Client
from tianping.clock import FixedClock
from tianping.errors import InvalidInput
from tianping.experiments.assignment import (
    BUCKETS,
    ExperimentConfig,
    Holdout,
    Layer,
    Snapshot,
    Variant,
    assign,
    assign_batch,
    draw,
    draws,
    fmix32,
    fnv1a32,
    unit_hash,
    unit_hashes,
    variant_boundaries,
    variant_labels,
)

CASES = json.loads((Path(__file__).parents[1] / "cases" / "assignment.json").read_text("utf-8"))
AB = (Variant("control"), Variant("treatment"))


def _ids(n: int, prefix: str = "buyer-") -> np.ndarray:
    return np.array([f"{prefix}{i}" for i in range(n)])


# -- pinned, language-neutral cases ------------------------------------------------------


def test_fnv1a32_matches_published_vectors_and_growthbook():
    from growthbook.core import fnv1a32 as gb_fnv

    assert fnv1a32(b"") == 0x811C9DC5
    assert fnv1a32(b"a") == 0xE40C292C
    assert fnv1a32(b"foobar") == 0xBF9CF968
    for text in ("buyer-1", "12345", "experiment:variant"):
        assert fnv1a32(text.encode()) == gb_fnv(text)


def test_fmix32_matches_murmur3_empty_input_vectors():
    # MurmurHash3_x86_32 of no bytes is fmix32(seed): the SMHasher verification values.
    assert fmix32(0) == 0
    assert fmix32(1) == 0x514E28B7
    assert fmix32(0xFFFFFFFF) == 0x81F16F39


@pytest.mark.parametrize(("text", "expected"), CASES["fnv1a32"])
def test_cases_fnv1a32(text, expected):
    assert fnv1a32(text.encode("utf-8")) == expected
    assert unit_hashes(np.array([text])).tolist() == [expected]


@pytest.mark.parametrize(("value", "expected"), CASES["fmix32"])
def test_cases_fmix32(value, expected):
    assert fmix32(value) == expected


@pytest.mark.parametrize(("seed", "unit", "expected"), CASES["draw"])
def test_cases_draw(seed, unit, expected):
    assert draw(seed, unit) == expected
    assert draws(seed, unit_hashes(np.array([unit]))).tolist() == [expected]


@pytest.mark.parametrize(("weights", "expected"), CASES["boundaries"])
def test_cases_boundaries(weights, expected):
    assert list(variant_boundaries(weights)) == expected


@pytest.mark.parametrize("case", CASES["assign"], ids=lambda c: f"{c['case']}-{c['experiment']}")
def test_cases_assign_single_and_batch(case):
    snap = Snapshot.from_dict(case["snapshot"])
    units = list(case["expected"])
    expected = [case["expected"][u] for u in units]
    assert [assign(snap, case["experiment"], u) for u in units] == expected
    batch = assign_batch(snap, case["experiment"], np.array(units))
    assert variant_labels(snap, case["experiment"], batch).tolist() == expected


# -- single and batch agree ----------------------------------------------------------------

unit_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)


@settings(max_examples=60, deadline=None)
@given(st.lists(unit_text, min_size=1, max_size=40))
def test_unit_hashes_equal_scalar_hash_for_any_text(ids):
    assert unit_hashes(np.array(ids, dtype=object)).tolist() == [unit_hash(u) for u in ids]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=40))
def test_integer_ids_hash_as_their_decimal_string(ids):
    assert unit_hashes(np.array(ids, dtype=np.int64)).tolist() == [unit_hash(str(u)) for u in ids]


snapshots = st.builds(
    lambda weights, traffic, start, width, hold, forced: Snapshot(
        experiments=(
            ExperimentConfig(
                "e",
                "salt-e",
                tuple(Variant(f"v{i}", w) for i, w in enumerate(weights)),
                traffic=traffic,
                layer="L",
                layer_buckets=(start, min(BUCKETS, start + width)),
                forced=(("qa-1", "v1"),) if forced else (),
            ),
        ),
        layers=(Layer("L", "salt-L"),),
        holdout=Holdout("h", hold) if hold else None,
    ),
    st.lists(st.floats(0.01, 10), min_size=2, max_size=5),
    st.floats(0, 1),
    st.integers(0, BUCKETS - 1),
    st.integers(1, BUCKETS),
    st.sampled_from([0.0, 0.05, 0.5]),
    st.booleans(),
)


@settings(max_examples=40, deadline=None)
@given(snapshots, st.lists(unit_text, min_size=1, max_size=30))
def test_batch_equals_single(snap, ids):
    ids = [*ids, "qa-1"]
    batch = variant_labels(snap, "e", assign_batch(snap, "e", np.array(ids)))
    assert batch.tolist() == [assign(snap, "e", u) for u in ids]


# -- statistical properties ----------------------------------------------------------------


def test_draws_are_uniform():
    buckets = draws("uniformity", unit_hashes(_ids(200_000)))
    counts = np.bincount(buckets // 100, minlength=100)
    assert stats.chisquare(counts).pvalue > 0.001


def test_draws_under_different_salts_are_independent():
    h = unit_hashes(_ids(200_000))
    for a, b in [("layer-a", "layer-b"), ("exp", "exp:variant"), ("a", "b")]:
        table = np.histogram2d(draws(a, h) // 1000, draws(b, h) // 1000, bins=10)[0]
        assert stats.chi2_contingency(table).pvalue > 0.001, (a, b)


def test_layers_are_orthogonal_and_layer_members_exclusive():
    layered = Snapshot(
        experiments=(
            ExperimentConfig("a1", "a1", AB, layer="A", layer_buckets=(0, 5000)),
            ExperimentConfig("a2", "a2", AB, layer="A", layer_buckets=(5000, 10000)),
            ExperimentConfig("b1", "b1", AB, layer="B"),
        ),
        layers=(Layer("A", "layer-A"), Layer("B", "layer-B")),
    )
    ids = _ids(100_000)
    a1, a2, b1 = (assign_batch(layered, name, ids) for name in ("a1", "a2", "b1"))
    assert not ((a1 >= 0) & (a2 >= 0)).any()
    assert ((a1 >= 0) | (a2 >= 0)).all()
    in_a1 = a1 >= 0
    table = np.array(
        [[np.sum((a1[in_a1] == i) & (b1[in_a1] == j)) for j in (0, 1)] for i in (0, 1)]
    )
    assert stats.chi2_contingency(table).pvalue > 0.001


def test_split_follows_weights():
    e = ExperimentConfig("w", "w", (Variant("c", 0.5), Variant("t1", 0.3), Variant("t2", 0.2)))
    counts = np.bincount(assign_batch(e, "w", _ids(100_000)), minlength=3)
    assert stats.chisquare(counts, 100_000 * np.array([0.5, 0.3, 0.2])).pvalue > 0.001


def test_holdout_units_see_no_experiment():
    snap = Snapshot(
        experiments=(ExperimentConfig("x", "x", AB), ExperimentConfig("y", "y", AB)),
        holdout=Holdout("global", 0.1),
    )
    ids = _ids(50_000)
    held = draws("global", unit_hashes(ids)) < 1000
    for name in ("x", "y"):
        out = assign_batch(snap, name, ids)
        assert (out[held] == -1).all() and (out[~held] >= 0).all()
    assert abs(held.mean() - 0.1) < 0.01


@settings(max_examples=25, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1))
def test_ramping_traffic_up_never_moves_a_unit(t1, t2):
    low, high = sorted((t1, t2))
    ids = _ids(3_000)
    before = assign_batch(ExperimentConfig("r", "r", AB, traffic=low), "r", ids)
    after = assign_batch(ExperimentConfig("r", "r", AB, traffic=high), "r", ids)
    kept = before >= 0
    assert (after[kept] == before[kept]).all()
    assert abs((after >= 0).mean() - high) < 0.05


def test_forced_variant_bypasses_holdout_and_traffic():
    snap = Snapshot(
        experiments=(
            ExperimentConfig("f", "f", AB, traffic=0.0, forced=(("qa-bob", "treatment"),)),
        ),
        holdout=Holdout("h", 0.99),
    )
    assert assign(snap, "f", "qa-bob") == "treatment"
    assert assign(snap, "f", "buyer-1") is None


# -- configuration ------------------------------------------------------------------------


def test_snapshot_round_trips_through_json():
    snap = Snapshot.from_dict(CASES["assign"][-1]["snapshot"])
    assert Snapshot.from_json(snap.to_json()) == snap


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"experiments": [{"name": "x", "variants": ["a"]}]}, "at least two variants"),
        ({"experiments": [{"name": "x", "variants": ["a", "a"]}]}, "unique"),
        ({"experiments": [{"name": "x", "variants": ["a", "b"], "traffic": 1.5}]}, "traffic"),
        ({"experiments": [{"name": "x", "variants": ["a", "b"], "layer": "L"}]}, "not defined"),
        ({"experiments": [{"name": "x", "variants": ["a", "b"], "colour": 1}]}, "unknown field"),
        ({"experiments": [{"name": "x", "variants": [{"name": "a", "weight": 0}, "b"]}]}, "weight"),
        (
            {"experiments": [{"name": "x", "variants": ["a", "b"], "forced": {"u": "z"}}]},
            "unknown variant",
        ),
        (
            {
                "layers": [{"name": "L", "salt": "L"}],
                "experiments": [
                    {"name": "x", "variants": ["a", "b"], "layer": "L", "layer_buckets": [0, 6000]},
                    {
                        "name": "y",
                        "variants": ["a", "b"],
                        "layer": "L",
                        "layer_buckets": [5000, 10000],
                    },
                ],
            },
            "overlap",
        ),
    ],
)
def test_invalid_snapshots_are_rejected_with_reasons(data, message):
    with pytest.raises(InvalidInput, match=message):
        Snapshot.from_dict(data)


# -- the SDK ------------------------------------------------------------------------------


def test_client_reports_each_exposure_once():
    seen = []
    clock = FixedClock(datetime(2024, 6, 18, 10, tzinfo=UTC))
    client = Client(CASES["assign"][0]["snapshot"], on_exposure=seen.append, clock=clock)
    for _ in range(3):
        assert client.variant("price-badge", "buyer-3") == "control"
    assert client.variant("price-badge", 7) == "treatment"
    assert [(e.unit_id, e.variant, e.exposed_at) for e in seen] == [
        ("buyer-3", "control", clock.now()),
        ("7", "treatment", clock.now()),
    ]


def test_client_does_not_report_units_outside_the_experiment():
    seen = []
    client = Client(CASES["assign"][2]["snapshot"], on_exposure=seen.append)
    assert client.variant("door", "buyer-0") is None
    assert not client.in_experiment("door", "buyer-0")
    assert seen == []
    # not served (stopped, a draft, unknown): None, as documented, and nothing reported
    assert client.variant("nope", "buyer-0") is None
    assert not client.in_experiment("nope", "buyer-0") and seen == []
    assert "door" in client.experiments and "nope" not in client.experiments
