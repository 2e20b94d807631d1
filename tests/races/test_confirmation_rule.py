"""The confirmation phase judges guardrails with the experiments' rule: non-inferior within a
margin, not merely "not significantly worse"."""

from __future__ import annotations

import numpy as np
import pytest

from tianping.races.race import confirm
from tianping.stats import ArmStats


def _arm(name, y):
    return ArmStats(name, len(y), float(y.sum()), float((y * y).sum()))


def _case(rng, n, guard_lift):
    goal = (_arm("control", rng.normal(10.0, 3.0, n)), _arm("winner", rng.normal(10.6, 3.0, n)))
    guard = (_arm("control", rng.normal(4.0, 2.0, n)),
             _arm("winner", rng.normal(4.0 * (1 + guard_lift), 2.0, n)))  # fmt: skip
    return goal, {"review_score": ("mean", True, guard[0], guard[1])}


def test_an_underpowered_guardrail_no_longer_passes():
    rng = np.random.default_rng(1)
    goal, guards = _case(rng, 400, 0.0)  # guardrail unchanged but measured loosely
    old = confirm(goal[1], goal[0], metric_type="mean", guardrails=guards)
    assert old.ship  # the harm test alone lets it through
    tight = confirm(goal[1], goal[0], metric_type="mean", guardrails=guards,
                    margins={"review_score": (0.01, "relative")})  # fmt: skip
    g = tight.guardrails[0]
    assert not tight.ship and g.non_inferior is False and not g.hurt
    assert any("review_score not shown non-inferior" in r for r in tight.reasons)
    # the bound is the lower end of the two-sided 90 % interval of the relative change
    from tianping.stats import AnalysisConfig, compare

    wide = compare(guards["review_score"][2], guards["review_score"][3],
                   AnalysisConfig("mean", alpha=0.1))  # fmt: skip
    assert g.bound == pytest.approx(wide.rel_effect_size_ci_lower, rel=1e-12)
    loose = confirm(goal[1], goal[0], metric_type="mean", guardrails=guards,
                    margins={"review_score": (0.15, "relative")})  # fmt: skip
    assert loose.ship and loose.guardrails[0].non_inferior


def test_a_guardrail_worse_than_its_margin_blocks_the_winner():
    rng = np.random.default_rng(2)
    shipped = 0
    for _ in range(200):
        goal, guards = _case(rng, 4000, -0.03)  # 3 % worse against a 2 % margin
        v = confirm(goal[1], goal[0], metric_type="mean", guardrails=guards,
                    margins={"review_score": (0.02, "relative")})  # fmt: skip
        shipped += v.ship
    assert shipped / 200 <= 0.05


def test_the_race_report_shows_each_guardrail_against_its_margin():
    from tianping.races.report import _confirmation_html

    v = {"effect_size": 0.5, "effect_size_ci_lower": 0.1, "effect_size_ci_upper": 0.9,
         "pvalue": 0.01, "ship": False, "final": True,
         "guardrails": [{"metric": "review_score", "hurt": False, "bound": -0.031,
                         "margin": 0.01, "scale": "relative", "non_inferior": False}],
         "reasons": ["guardrail review_score not shown non-inferior"]}  # fmt: skip
    race = {"phase": "decided", "winner": "b", "comparator": "a", "confirm_start": "2024-06-01"}
    text = _confirmation_html(v, race)
    assert (
        "guardrail review_score: worst case -3.10% against a margin of 1.00%: not shown "
        "non-inferior"
        in text
        and "do not ship" in text
    )
