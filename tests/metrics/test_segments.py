"""Which segments moved GMV: planted causes are found, noise is not, contributions add up."""

import math
from itertools import combinations

import numpy as np
import pytest

from tianping.errors import InvalidInput
from tianping.metrics.segments import Cube, cube_of_orders, explain_cube
from tianping.simulate.shocks import DIMENSIONS, PlantedWorld, Shock, planted_orders

SHOCK = (("channel", "live_stream"), ("city_tier", "tier3"))
SEEDS = range(40)


def _explain(world: PlantedWorld, seed: int, **kw):
    o = planted_orders(world, seed)
    cube = cube_of_orders(o.dimensions, o.labels, o.period, o.day, o.codes, o.amount_minor, o.days)
    return explain_cube(cube, **kw)


@pytest.mark.slow
def test_a_planted_shock_ranks_first_in_at_least_95_percent_of_seeds():
    world = PlantedWorld(shocks=(Shock(dict(SHOCK), order_value=0.85),))
    first = [e.causes[0].segment == SHOCK if e.causes else False
             for e in (_explain(world, s) for s in SEEDS)]  # fmt: skip
    assert sum(first) / len(first) >= 0.95


@pytest.mark.slow
def test_with_no_shock_no_cause_is_reported_in_at_least_95_percent_of_seeds():
    quiet = [not _explain(PlantedWorld(), s).causes for s in SEEDS]
    assert sum(quiet) / len(quiet) >= 0.95


def test_a_rate_shock_is_rate_and_a_mix_shock_is_mix():
    rate = _explain(PlantedWorld(shocks=(Shock(dict(SHOCK), order_value=0.85),)), 1).causes[0]
    assert rate.rate < 0 and abs(rate.mix) < abs(rate.rate) / 5
    assert rate.aov_after / rate.aov_before == pytest.approx(0.85, abs=0.03)
    mix = _explain(PlantedWorld(shocks=(Shock({"category": "beauty"}, orders=1.3),)), 1).causes[0]
    assert mix.segment == (("category", "beauty"),)
    assert mix.mix > 0 and abs(mix.rate) < mix.mix / 5
    assert mix.share_after / mix.share_before == pytest.approx(1.3 / (1 + 0.3 * 0.12), abs=0.03)


def test_a_one_dimension_shock_is_named_by_one_dimension():
    e = _explain(PlantedWorld(shocks=(Shock({"channel": "mini_program"}, order_value=0.8),)), 2)
    assert e.causes[0].segment == (("channel", "mini_program"),)
    # its children inside the channel move alike: the shorter name says it
    assert all(len(c.segment) == 1 or ("channel", "mini_program") not in c.segment
               for c in e.causes)  # fmt: skip


def test_contributions_add_up_and_the_interval_is_around_the_effect():
    e = _explain(PlantedWorld(shocks=(Shock(dict(SHOCK), order_value=0.85),)), 4)
    assert e.change == e.gmv_after - e.gmv_before
    for c in e.causes:
        assert c.volume + c.mix + c.rate == pytest.approx(c.change, rel=1e-9, abs=1e-6)
        assert c.own == pytest.approx(c.mix + c.rate)
        assert c.interval[0] < c.own < c.interval[1]
        assert c.interval[0] > 0 or c.interval[1] < 0  # above the noise floor
        assert c.explanatory_power == pytest.approx(c.own / e.change)


def test_the_floor_is_bonferroni_over_the_segments_tested():
    e = _explain(PlantedWorld(orders_per_day=2000, days=(10, 12)), 0, alpha=0.1)
    from scipy import stats

    assert e.critical == pytest.approx(stats.t.ppf(1 - 0.1 / (2 * e.tested), 9))
    # every value, pair and triple of values of the six dimensions, less those too small
    sizes = [len(v) for v, _ in DIMENSIONS.values()]
    every = sum(math.prod(c) for k in (1, 2, 3) for c in combinations(sizes, k))
    assert every - 200 < e.tested <= every


def test_noise_variance_matches_the_ratio_estimator_by_hand():
    # one dimension, two values, three days each period; hand-computed delta method
    rows = [  # period, day, code, orders, gmv
        (0, 0, 0, 10, 1000), (0, 1, 0, 12, 1300), (0, 2, 0, 9, 850),
        (0, 0, 1, 10, 1000), (0, 1, 1, 11, 1150), (0, 2, 1, 10, 990),
        (1, 0, 0, 10, 700), (1, 1, 0, 12, 800), (1, 2, 0, 9, 640),
        (1, 0, 1, 10, 1010), (1, 1, 1, 11, 1120), (1, 2, 1, 10, 1000),
    ]  # fmt: skip
    period, day, code, n, g = (np.array(x) for x in zip(*rows, strict=True))
    cube = Cube(("c",), (("a", "b"),), code[:, None], period, day, n, g, (3, 3))
    e = explain_cube(cube, min_orders=1, alpha=0.5)
    a = next(c for c in e.causes if c.segment == (("c", "a"),))

    def var_ln(y, x):
        r = y.sum() / x.sum()
        return 3 / 2 * ((y - r * x) ** 2).sum() / x.sum() ** 2 / r**2

    ga = [np.array([1000, 1300, 850.0]), np.array([700, 800, 640.0])]
    tot = [np.array([20, 23, 19.0]), np.array([20, 23, 19.0])]
    se = math.sqrt(var_ln(ga[0], tot[0]) + var_ln(ga[1], tot[1]))
    weight = (2140 - 3150) / math.log(2140 / 3150)
    assert a.own == pytest.approx(weight * math.log(2140 / 3150))
    assert (a.own - a.interval[0]) == pytest.approx(e.critical * weight * se)


@pytest.mark.parametrize(("kw", "field"), [({"depth": 4}, "depth"), ({"alpha": 0}, "alpha")])
def test_bad_settings_are_named(kw, field):
    with pytest.raises(InvalidInput) as err:
        _explain(PlantedWorld(orders_per_day=100, days=(3, 3)), 0, **kw)
    assert err.value.field == field


def test_a_shock_on_an_unknown_value_is_named():
    with pytest.raises(InvalidInput, match="unknown channel 'tv'"):
        planted_orders(PlantedWorld(shocks=(Shock({"channel": "tv"}),)), 0)
