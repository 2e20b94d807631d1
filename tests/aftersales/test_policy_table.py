"""Policy format: validation errors name rules and regions; the version is a content hash."""

from __future__ import annotations

import copy
import json
import random

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tianping.aftersales.policy import builtin_names, load_builtin, parse_policy, read_policy
from tianping.aftersales.policy_table import canonical_json, load_policy, resolve_policy
from tianping.errors import InvalidInput, NotFound

REASONS = {"r": {"buyer": "for the buyer", "merchant": "for the merchant"}}


def table(*rules, **top):
    return (
        {"name": "t", "title": "T", "source": "test", "currency": "CNY", "reasons": REASONS}
        | top
        | {"rules": list(rules)}
    )


def rule(rid, when=None, action="reject", priority=0, **then):
    return {
        "id": rid,
        "priority": priority,
        "when": when or {},
        "then": {"action": action, "reasons": ["r"], **then},
    }


def error_of(doc) -> str:
    with pytest.raises(InvalidInput) as exc:
        parse_policy(doc)
    return exc.value.message


def test_every_builtin_loads_cleanly():
    names = builtin_names()
    assert {"pinduoduo-2021", "taobao-2023-12", "taobao-2024-08", "1688-2025-03"} <= set(names)
    for name in names:
        p = load_builtin(name)
        assert p.name == name and len(p.version) == 64 and p.warnings == ()


def test_unknown_builtin_lists_the_known_ones():
    with pytest.raises(NotFound, match="taobao-2024-08"):
        load_builtin("taobao-1999")


def test_split_at_a_threshold_is_complete_and_exclusive():
    p = parse_policy(
        table(
            rule("small", {"amount_minor": {"lt": 2000}}),
            rule("large", {"amount_minor": {"gte": 2000}}),
        )
    )
    assert [r.id for r in p.rules] == ["small", "large"]


def test_overlap_names_both_rules_and_the_shared_region():
    msg = error_of(
        table(
            rule("a", {"amount_minor": {"lte": 2000}}), rule("b", {"amount_minor": {"gte": 2000}})
        )
    )
    assert "rules a and b: overlap at priority 0 where amount_minor = 2000" in msg


def test_overlap_on_categories_and_a_real_range():
    msg = error_of(
        table(
            rule("a", {"category": {"not_in": ["food"]}, "buyer_score": {"lt": 700}}),
            rule("b", {"category": ["toys", "food"], "buyer_score": {"gt": 600}}),
            rule("rest", priority=-1),
        )
    )
    assert "rules a and b: overlap" in msg
    assert "category = toys" in msg and "600 < buyer_score < 700" in msg


def test_rules_at_different_priorities_may_overlap():
    p = parse_policy(table(rule("vip", {"buyer_score": {"gte": 800}}, priority=1), rule("all")))
    assert [r.id for r in p.rules] == ["vip", "all"]


def test_gap_names_the_uncovered_region():
    msg = error_of(
        table(
            rule("small", {"amount_minor": {"lt": 2000}}),
            rule("large", {"amount_minor": {"gt": 2000}, "delivered": True}),
        )
    )
    assert "no rule covers inputs where amount_minor = 2000" in msg
    assert "no rule covers inputs where amount_minor >= 2001, delivered = false" in msg


def test_gap_in_an_open_category_vocabulary():
    msg = error_of(table(rule("a", {"category": ["food"]}), rule("b", {"category": ["toys"]})))
    assert "no rule covers inputs where category not in {food, toys}" in msg


def test_integer_ranges_touching_at_whole_numbers_leave_no_gap():
    p = parse_policy(
        table(
            rule("a", {"buyer_recent_claims": {"lte": 4}}),
            rule("b", {"buyer_recent_claims": {"gte": 5}}),
        )
    )
    assert len(p.rules) == 2


def test_real_ranges_touching_at_whole_numbers_leave_a_gap():
    msg = error_of(
        table(
            rule("a", {"merchant_score": {"lte": 4}}), rule("b", {"merchant_score": {"gte": 4.5}})
        )
    )
    assert "no rule covers inputs where 4 < merchant_score < 4.5" in msg


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (
            {"amount_minor": {"lt": 20.5}},
            "must be an integer (money thresholds are integers in minor units)",
        ),
        ({"buyer_score": {"gte": 300}}, "outside the domain [350, 950] of buyer_score"),
        ({"merchant_score": {"gt": 4, "gte": 3}}, "at most one lower bound"),
        ({"amount_minor": {"gt": 5000, "lt": 4000}}, "5000 < amount_minor < 4000 matches no value"),
        ({"amount_minor": {"gt": 5000, "lt": 5001}}, "matches no value of amount_minor"),
        ({"amount_minor": {"between": 5}}, "gt/gte/lt/lte"),
        ({"colour": "red"}, "unknown input 'colour'"),
        ({"delivered": "yes"}, "must be true or false"),
        ({"reason": "Quality"}, "reasons are normalised"),
        ({"category": {"in": []}}, "non-empty list"),
    ],
)
def test_bad_conditions_are_named(when, expected):
    msg = error_of(table(rule("a", when, priority=1), rule("rest")))
    assert "rule a.when." in msg and expected in msg


@pytest.mark.parametrize(
    ("then", "expected"),
    [
        ({"action": "refund"}, "'refund' is not one of"),
        ({"action": "refund_only"}, "refund_only needs a payer"),
        ({"action": "reject", "payer": "merchant"}, "takes no payer"),
        ({"action": "partial_refund", "payer": "merchant"}, "strictly between 0 and 1"),
        (
            {"action": "partial_refund", "payer": "merchant", "fraction": 1.5},
            "strictly between 0 and 1",
        ),
        (
            {"action": "partial_refund", "payer": "merchant", "fraction": "0.12345"},
            "more than 4 decimal places",
        ),
        (
            {"action": "return_and_refund", "payer": "merchant", "fraction": 0.5},
            "only partial_refund",
        ),
        ({"action": "reject", "reasons": ["nope"]}, "unknown reason code 'nope'"),
        ({"action": "reject", "colour": 1}, "unknown field 'colour'"),
    ],
)
def test_bad_actions_are_named(then, expected):
    doc = table({"id": "a", "then": {"reasons": ["r"], **then}})
    assert expected in error_of(doc)


def test_unknown_top_level_field_and_duplicate_rule_id():
    msg = error_of(table(rule("a"), rule("a", priority=1), colour="red"))
    assert "unknown field 'colour'" in msg and "rule a: duplicate rule id" in msg


def test_duplicate_yaml_keys_are_an_error():
    with pytest.raises(InvalidInput, match="duplicate key 'name'"):
        read_policy("name: a\nname: b\n")


def test_refund_only_outside_the_category_scope_is_an_error():
    doc = table(
        rule(
            "keep",
            {"category": ["food", "jewellery"]},
            action="refund_only",
            priority=1,
            payer="merchant",
        ),
        rule("rest"),
        refund_only_categories=["food"],
    )
    msg = error_of(doc)
    assert (
        "rule keep: refund_only lets the buyer keep delivered goods outside refund_only_categories"
        in msg
    )
    assert "category = jewellery, delivered = true" in msg


def test_refund_only_of_undelivered_goods_is_outside_the_scope_check():
    doc = table(
        rule(
            "undelivered", {"delivered": False}, action="refund_only", priority=1, payer="merchant"
        ),
        rule("rest"),
        refund_only_categories=["food"],
    )
    assert parse_policy(doc).refund_only_categories is not None


def test_higher_buyer_score_with_a_worse_outcome_is_an_error():
    doc = table(
        rule("low", {"buyer_score": {"lt": 600}}, action="refund_only", payer="merchant"),
        rule("high", {"buyer_score": {"gte": 600}}, action="manual_review"),
    )
    msg = error_of(doc)
    assert "rules low and high: a higher buyer score gets a worse outcome" in msg
    assert "refund_only at buyer_score < 600, manual_review at buyer_score >= 600" in msg


def test_monotonicity_checks_effective_regions_not_raw_rules():
    # "review" is only reached by low scores once "vip" has taken the high ones.
    doc = table(
        rule(
            "vip", {"buyer_score": {"gte": 800}}, action="refund_only", priority=1, payer="merchant"
        ),
        rule("review", action="manual_review"),
    )
    assert len(parse_policy(doc).rules) == 2


def test_lower_partial_fraction_at_higher_score_is_an_error():
    doc = table(
        rule(
            "a",
            {"buyer_score": {"lt": 800}},
            action="partial_refund",
            payer="merchant",
            fraction=0.6,
        ),
        rule(
            "b",
            {"buyer_score": {"gte": 800}},
            action="partial_refund",
            payer="merchant",
            fraction=0.5,
        ),
    )
    assert "a higher buyer score gets a worse outcome" in error_of(doc)


def test_shadowed_rule_and_unused_reason_are_warnings():
    doc = table(rule("all", priority=1), rule("never", {"delivered": True}))
    doc["reasons"] = REASONS | {"spare": {"buyer": "b", "merchant": "m"}}
    p = parse_policy(doc)
    assert "rule never can never fire: higher-priority rules cover all its inputs" in p.warnings
    assert "reason code spare is never used" in p.warnings


def test_files_and_names_resolve(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(table(rule("all"))), encoding="utf-8")
    assert load_policy(path).name == "t"
    assert resolve_policy(str(path)).version == load_policy(path).version
    assert resolve_policy("taobao-2024-08").name == "taobao-2024-08"


def _shuffled(obj, rnd: random.Random):
    if isinstance(obj, dict):
        items = list(obj.items())
        rnd.shuffle(items)
        return {k: _shuffled(v, rnd) for k, v in items}
    if isinstance(obj, list):
        return [_shuffled(v, rnd) for v in obj]
    return obj


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    name=st.sampled_from(["pinduoduo-2021", "taobao-2023-12", "taobao-2024-08", "1688-2025-03"]),
)
def test_version_is_stable_under_key_order_whitespace_and_format(seed, name):
    p = load_builtin(name)
    rnd = random.Random(seed)
    doc = _shuffled(copy.deepcopy(dict(p.content)), rnd)
    as_yaml = yaml.safe_dump(
        doc, sort_keys=False, indent=rnd.choice([2, 4]), width=rnd.choice([60, 200])
    )
    as_json = json.dumps(doc, indent=rnd.choice([None, 1, 3]))
    assert read_policy(as_yaml).version == p.version
    assert read_policy(as_json).version == p.version


def test_shorthands_and_defaults_hash_like_their_long_forms():
    short = table(
        rule(
            "a",
            {"reason": "quality", "buyer_recent_claims": 0, "amount_minor": {"lt": 2000}},
            priority=1,
        ),
        {"id": "b", "then": {"action": "reject", "reasons": "r"}},
    )
    long = table(
        rule(
            "a",
            {
                "reason": {"in": ["quality"]},
                "buyer_recent_claims": {"gte": 0, "lte": 0},
                "amount_minor": {"lt": 2000},
            },
            priority=1,
        ),
        rule("b", {}, priority=0),
    )
    long["rounding"] = "half_up"
    assert parse_policy(short).version == parse_policy(long).version


def test_version_changes_with_content():
    base = table(
        rule("small", {"amount_minor": {"lt": 2000}}),
        rule("large", {"amount_minor": {"gte": 2000}}),
    )
    moved = table(
        rule("small", {"amount_minor": {"lt": 2001}}),
        rule("large", {"amount_minor": {"gte": 2001}}),
    )
    assert parse_policy(base).version != parse_policy(moved).version
    assert (
        parse_policy(base).version
        == __import__("hashlib")
        .sha256(canonical_json(parse_policy(base).content).encode())
        .hexdigest()
    )
