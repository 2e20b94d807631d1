"""The pure core against reference numbers: posteriors (scipy), chance to be best (closed
forms and numerical integration), top-two Thompson (its definition, by brute force),
shares and budgets (invariants), and the race rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from tianping.errors import InvalidInput
from tianping.races.allocation import (
    allocate_budget,
    bounded_shares,
    moved_share,
    traffic_weights,
)
from tianping.races.budget import budget_step
from tianping.races.posterior import posteriors
from tianping.races.race import Guardrail, RaceRules, confirm, race_step
from tianping.races.thompson import (
    chance_to_be_best,
    draw_matrix,
    expected_loss,
    top_two_probabilities,
)
from tianping.stats import ArmStats


def _mean_arm(name, values):
    v = np.asarray(values, dtype=float)
    return ArmStats(name, len(v), v.sum(), (v * v).sum())


# -- posteriors ---------------------------------------------------------------------------


def test_beta_posterior_matches_scipy():
    (p,) = posteriors([ArmStats("a", 200, 37)], "proportion", prior=(1, 1))
    ref = stats.beta(38, 164)
    assert (p.a, p.b) == (38, 164)
    assert p.mean == pytest.approx(ref.mean())
    assert p.sd == pytest.approx(ref.std())


def test_normal_posterior_of_a_mean_is_the_clt(rng):
    values = rng.gamma(2.0, 30.0, 5000)
    (p,) = posteriors([_mean_arm("a", values)], "mean")
    assert p.mean == pytest.approx(values.mean())
    assert p.sd == pytest.approx(values.std(ddof=1) / np.sqrt(len(values)))


def test_ratio_posterior_is_the_delta_method(rng):
    d = rng.poisson(3, 4000) + 1
    y = d * rng.gamma(2.0, 20.0, 4000)
    arm = ArmStats("a", 4000, y.sum(), (y * y).sum(), d.sum(), (d * d).sum(), (y * d).sum())
    (p,) = posteriors([arm], "ratio")
    r = y.sum() / d.sum()
    cov = np.cov(y, d)  # ddof 1
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (d.mean() ** 2 * len(d))
    assert p.mean == pytest.approx(r)
    assert p.sd == pytest.approx(np.sqrt(var))
    # and the bootstrap agrees with the delta method's standard error
    boot = [(lambda i: y[i].sum() / d[i].sum())(rng.integers(0, 4000, 4000)) for _ in range(400)]
    assert np.std(boot) == pytest.approx(p.sd, rel=0.15)


def test_an_arm_without_data_borrows_the_pooled_variance():
    posts = posteriors([_mean_arm("a", [1.0, 2.0, 3.0]), ArmStats("new", 0, 0.0, 0.0)], "mean")
    assert posts[1].n == 0 and posts[1].sd == pytest.approx(1.0) and posts[1].mean == 2.0


def test_bad_statistics_name_the_arm():
    with pytest.raises(InvalidInput, match="'a'"):
        posteriors([ArmStats("a", 10, 11)], "proportion")
    with pytest.raises(InvalidInput, match="ratio needs"):
        posteriors([ArmStats("a", 10, 5.0, 9.0)], "ratio")
    with pytest.raises(InvalidInput, match="metric type"):
        posteriors([ArmStats("a", 10, 5.0)], "median")


# -- chance to be best --------------------------------------------------------------------


def test_chance_to_be_best_of_two_normals_is_the_closed_form():
    a, b = _mean_arm("a", [0.0, 2.0] * 50), _mean_arm("b", [0.3, 2.3] * 50)
    posts = posteriors([a, b], "mean")
    p = chance_to_be_best(draw_matrix(posts, 200_000, np.random.default_rng(1)))
    exact = stats.norm.cdf(0.3 / np.hypot(posts[0].sd, posts[1].sd))
    assert p[1] == pytest.approx(exact, abs=0.005)


def test_chance_to_be_best_of_two_betas_matches_integration():
    posts = posteriors([ArmStats("a", 1000, 100), ArmStats("b", 1000, 120)], "proportion")
    fa, fb = stats.beta(posts[0].a, posts[0].b), stats.beta(posts[1].a, posts[1].b)
    exact, _ = integrate.quad(lambda x: fb.pdf(x) * fa.cdf(x), 0, 1, points=[0.1, 0.12])
    p = chance_to_be_best(draw_matrix(posts, 200_000, np.random.default_rng(2)))
    assert p[1] == pytest.approx(exact, abs=0.005)


def test_lower_is_better_flips_the_best_and_the_loss():
    s = np.array([[1.0, 2.0], [3.0, 0.0]])
    assert chance_to_be_best(s, higher_is_better=False).tolist() == [0.5, 0.5]
    assert expected_loss(s).tolist() == [0.5, 1.5]
    assert expected_loss(s, higher_is_better=False).tolist() == [1.5, 0.5]


def test_monte_carlo_is_seeded():
    posts = posteriors([ArmStats("a", 100, 10), ArmStats("b", 100, 12)], "proportion")
    one = draw_matrix(posts, 1000, np.random.default_rng(9))
    two = draw_matrix(posts, 1000, np.random.default_rng(9))
    assert np.array_equal(one, two)


def test_top_two_matches_its_definition_by_brute_force():
    rng = np.random.default_rng(3)
    p = np.array([0.6, 0.25, 0.1, 0.05])
    beta, n = 0.5, 400_000
    leader = rng.choice(4, n, p=p)
    play_leader = rng.random(n) < beta
    # challenger: resample the best arm until it differs from the leader
    challenger = np.empty(n, dtype=int)
    for i in range(4):
        rows = np.flatnonzero(leader == i)
        q = np.where(np.arange(4) == i, 0.0, p) / (1 - p[i])
        challenger[rows] = rng.choice(4, len(rows), p=q)
    played = np.where(play_leader, leader, challenger)
    empirical = np.bincount(played, minlength=4) / n
    np.testing.assert_allclose(top_two_probabilities(p, beta), empirical, atol=0.003)


def test_top_two_with_a_certain_best_shares_the_rest():
    assert top_two_probabilities(np.array([1.0, 0.0, 0.0])).tolist() == [0.5, 0.25, 0.25]
    with pytest.raises(InvalidInput, match="beta"):
        top_two_probabilities(np.array([0.5, 0.5]), beta=1.0)


# -- shares and budgets -------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=2, max_size=20),
    st.floats(0, 1),
    st.floats(0, 1),
)
def test_bounded_shares_hold_their_bounds(target, floor_frac, cap_frac):
    k = len(target)
    floor = floor_frac / k
    cap = max(1 / k + cap_frac * (1 - 1 / k), floor)
    w = bounded_shares(target, floor, cap)
    assert w.sum() == pytest.approx(1.0)
    assert (w >= floor - 1e-12).all() and (w <= cap + 1e-12).all()


def test_bounded_shares_keep_proportions_among_free_arms():
    w = bounded_shares([0.5, 0.3, 0.2, 0.0], 0.05, 0.45)
    assert w[0] == pytest.approx(0.45) and w[3] == pytest.approx(0.05)
    assert w[1] / w[2] == pytest.approx(1.5)


def test_bounds_that_cannot_hold_are_refused():
    with pytest.raises(InvalidInput, match="floors"):
        bounded_shares([1, 1, 1], 0.4, 1)
    with pytest.raises(InvalidInput, match="caps"):
        bounded_shares([1, 1, 1], 0, 0.3)


def test_traffic_weights_fix_the_control_and_zero_the_eliminated():
    w = traffic_weights(
        [0.1, 0.8, 0.1, 0.0], [True, True, True, False], control=0, control_share=0.3,
        min_share=0.1, max_share=0.5,
    )  # fmt: skip
    assert w.tolist() == pytest.approx([0.3, 0.5, 0.2, 0.0])


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 10**9),
    st.lists(st.floats(0, 1), min_size=2, max_size=10),
    st.integers(0, 1000),
)
def test_budget_parts_add_up_exactly(total, target, floor):
    k = len(target)
    if k * floor > total:
        with pytest.raises(InvalidInput):
            allocate_budget(total, target, floor_minor=floor)
        return
    parts = allocate_budget(total, target, floor_minor=floor)
    assert parts.sum() == total and (parts >= floor).all()


def test_budget_caps_leave_the_rest_unallocated():
    parts = allocate_budget(1000, [1, 0, 0], cap_minor=300)
    assert parts.tolist() == [300, 300, 300]
    parts = allocate_budget(1000, [0.7, 0.2, 0.1], cap_minor=500, active=[True, True, False])
    assert parts.tolist() == [500, 500, 0]


def test_budget_step_follows_the_best_return_on_spend():
    arms = [_mean_arm("a", [10.0, 12.0] * 500), _mean_arm("b", [30.0, 31.0] * 500)]
    first = budget_step(
        arms, [0, 0], total_minor=10_000, active=[True, True], rng=np.random.default_rng(1)
    )
    assert [b.allocated_minor for b in first] == [5000, 5000]
    lines = budget_step(
        arms, [500_000, 500_000], total_minor=10_000, active=[True, True],
        floor_minor=1000, rng=np.random.default_rng(1),
    )  # fmt: skip
    assert [b.allocated_minor for b in lines] == [1000, 9000]
    assert lines[1].roi == pytest.approx(30500 / 5000) and lines[1].p_best == 1.0


def test_moved_share_counts_buckets_that_change_arm():
    assert moved_share([1, 1], [1, 1]) == 0.0
    # buckets [0,2500) stay with arm 0 and [9000,10000) with arm 3: 35% stay, 65% move
    assert moved_share([1, 1, 1, 1], [0.7, 0.1, 0.1, 0.1]) == pytest.approx(0.65)


# -- the race rules -----------------------------------------------------------------------


def _rules(**kw):
    base = dict(arms=("a", "b", "c"), metric_type="proportion", min_units=100, draws=4000)
    return RaceRules(**(base | kw))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"arms": ("a",)}, "arms"),
        ({"arms": ("a", "a")}, "arms"),
        ({"control": "z", "control_share": 0.2}, "control"),
        ({"control": "a"}, "control_share"),
        ({"min_share": 0.6}, "min_share"),
        ({"best_threshold": 1.0}, "best_threshold"),
        ({"allocation": "greedy"}, "allocation"),
        ({"confirm_against": "control"}, "confirm_against"),
    ],
)
def test_bad_rules_name_the_field(change, field):
    with pytest.raises(InvalidInput) as err:
        _rules(**change)
    assert err.value.field == field


def test_clear_leader_stops_and_losers_are_eliminated():
    arms = [ArmStats("a", 1000, 100), ArmStats("b", 1000, 160), ArmStats("c", 1000, 98)]
    r = race_step(_rules(confirm_against="runner_up"), arms, rng=np.random.default_rng(1))
    assert r.leader == "b" and r.stop
    assert set(r.eliminated) == {"a", "c"}
    assert r.comparator == "a"  # the runner-up among the eliminated
    assert r.weights == {"a": 0.0, "b": 1.0, "c": 0.0}


def test_small_arms_are_neither_eliminated_nor_allow_a_stop():
    arms = [ArmStats("a", 1000, 100), ArmStats("b", 1000, 160), ArmStats("c", 20, 0)]
    r = race_step(_rules(), arms, rng=np.random.default_rng(1))
    assert not r.stop and "c" not in r.eliminated
    assert any("waiting for 100 units in c" in x for x in r.reasons)


def test_a_hurt_guardrail_blocks_the_stop():
    arms = [ArmStats("a", 1000, 100), ArmStats("b", 1000, 160), ArmStats("c", 1000, 98)]
    refunds = [ArmStats("a", 1000, 50), ArmStats("b", 1000, 120), ArmStats("c", 1000, 50)]
    g = Guardrail("refund_rate", "proportion", False, refunds)
    r = race_step(
        _rules(control="a", control_share=0.2, confirm_against="control"),
        arms,
        guardrails=[g],
        rng=np.random.default_rng(1),
    )
    assert r.leader == "b" and not r.stop and r.comparator == "a"
    assert r.guardrails[0].hurt
    assert any("hurts guardrail refund_rate" in x for x in r.reasons)


def test_the_control_is_never_eliminated():
    arms = [ArmStats("a", 1000, 50), ArmStats("b", 1000, 160), ArmStats("c", 1000, 150)]
    r = race_step(_rules(control="a", control_share=0.2), arms, rng=np.random.default_rng(1))
    assert "a" not in r.eliminated and r.weights["a"] == pytest.approx(0.2)


def test_confirm_uses_the_engine_comparison():
    win, comp = ArmStats("b", 5000, 650), ArmStats("a", 5000, 500)
    v = confirm(win, comp, metric_type="proportion")
    assert v.ship and v.comparison.effect_size == pytest.approx(0.03)
    se = np.sqrt(0.13 * 0.87 / 5000 + 0.1 * 0.9 / 5000)
    assert v.comparison.effect_size_ci_lower == pytest.approx(0.03 - 1.959964 * se, rel=1e-3)
    flat = confirm(ArmStats("b", 5000, 505), comp, metric_type="proportion")
    assert not flat.ship and "do not ship" in flat.reasons[-1]
