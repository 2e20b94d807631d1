"""Calibration of the sharper methods: A/A false-positive rate and coverage of a known lift.

For each method, 1,000 independently simulated experiments without an effect (A/A) and
1,000 with a known one. Buyers have a hidden taste (gamma) that drives their orders before
and during the experiment (Poisson), their order values (lognormal, one price level per
buyer) and refunds (binomial per order); a unit attribute ``returning`` (ordered before)
is declared. The treatment multiplies order values by 1.05 and the refund chance by 0.9, so
the true relative effects are exactly +5 % (GMV per buyer, p90 order value) and -10 %
(refund rate). Each run aggregates the unit values into the sums the warehouse would return
and analyses them with the library.

Methods: regression adjustment on every covariate (GMV per buyer, refund rate), the ratio
covariate (refund rate: last period's refund rate), the p90 of order value (Woodruff,
clustered by buyer) and post-stratification by ``returning`` (GMV per buyer). Prints, per
method, the false-positive rate at alpha 5 %, the coverage of the true relative effect by
the 95 % relative interval, each with its exact 95 % binomial interval, and the variance of
the effect relative to single-covariate CUPED.

python bench/calibration.py [--runs 1000] [--units 20000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from tianping.stats import (
    ArmStats,
    CovariateSums,
    QuantileArm,
    analyze,
    analyze_stratified,
    woodruff_ranks,
)


def simulate(rng, units: int, lift: bool):
    """Unit-level arrays of one experiment (half the units treated)."""
    taste = rng.gamma(1.2, 0.5, units)
    returning = (rng.random(units) < 0.6).astype(float)
    taste *= np.where(returning == 1, 1.4, 0.5)
    price = rng.lognormal(0, 0.5, units)
    treated = rng.permutation(units) < units // 2
    pre_orders = rng.poisson(taste)
    orders = rng.poisson(taste)
    value_lift = np.where(treated & lift, 1.05, 1.0)
    refund_p = 0.08 * np.where(treated & lift, 0.9, 1.0)

    def period(counts, scale, p):
        buyer = np.repeat(np.arange(units), counts)
        amount = rng.lognormal(4, 0.6, buyer.size) * price[buyer] * scale[buyer]
        refunded = rng.random(buyer.size) < p[buyer]
        return buyer, amount, refunded

    b0, a0, r0 = period(pre_orders, np.ones(units), np.full(units, 0.08))
    b1, a1, r1 = period(orders, value_lift, refund_p)
    u = {
        "treated": treated,
        "returning": returning,
        "gmv": np.bincount(b1, a1, units),
        "orders": orders.astype(float),
        "refunded": np.bincount(b1, r1, units),
        "pre_gmv": np.bincount(b0, a0, units),
        "pre_orders": pre_orders.astype(float),
        "pre_refunded": np.bincount(b0, r0, units),
    }
    return u, (b1, a1)


def arm(u, sel, name, y, d=None, xs=()):
    """The arm's sufficient statistics as the warehouse query would return them."""
    yv = u[y][sel]
    f = {"sum": yv.sum(), "sum_sq": yv @ yv}
    if d is not None:
        dv = u[d][sel]
        f |= {"den_sum": dv.sum(), "den_sum_sq": dv @ dv, "num_den_sum": yv @ dv}
    x1 = u[f"pre_{y}"][sel]
    f |= {"pre_sum": x1.sum(), "pre_sum_sq": x1 @ x1, "pre_cross_sum": yv @ x1}
    if d is not None:
        f["pre_den_cross_sum"] = u[d][sel] @ x1
    if xs:
        x = np.column_stack([u[c][sel] for c in xs])
        f["covariates"] = CovariateSums(
            tuple(xs), tuple(x.sum(0)), tuple(map(tuple, x.T @ x)), tuple(yv @ x),
            None if d is None else tuple(u[d][sel] @ x),
        )  # fmt: skip
    return ArmStats(name, int(sel.sum()), **f)


def quantile_arm(buyer, amount, sel_units, name):
    keep = sel_units[buyer]
    b, v = buyer[keep], amount[keep]
    order = np.lexsort((b, v))
    b, v = b[order], v[order]
    lo, k, hi = woodruff_ranks(v.size, 0.9)
    below = np.bincount(b[:k], minlength=sel_units.size).astype(float)
    events = np.bincount(b, minlength=sel_units.size).astype(float)
    seen = events > 0
    below, events = below[seen], events[seen]
    return QuantileArm(name, v.size, 0.9, v[k - 1], v[lo - 1], v[hi - 1], units=int(seen.sum()),
                       below_sum=below.sum(), below_sum_sq=below @ below,
                       events_sum_sq=events @ events, below_events_sum=below @ events)  # fmt: skip


COVARIATES = ("pre_gmv", "pre_orders", "pre_refunded", "returning")


def methods(u, events):
    """Each method's comparison, and the same metric's single-CUPED one (None: no CUPED)."""
    c, t = ~u["treated"], u["treated"]
    gmv = [arm(u, c, "control", "gmv", xs=COVARIATES), arm(u, t, "t", "gmv", xs=COVARIATES)]
    rr = [arm(u, s, n, "refunded", "orders", xs=COVARIATES) for s, n in ((c, "control"), (t, "t"))]
    ratio_x = [arm(u, s, n, "refunded", "orders", xs=("pre_refunded", "pre_orders"))
               for s, n in ((c, "control"), (t, "t"))]  # fmt: skip
    strata = {
        str(r): [arm(u, s & (u["returning"] == r), n, "gmv") for s, n in ((c, "control"), (t, "t"))]
        for r in (0.0, 1.0)
    }
    p90 = [quantile_arm(*events, c, "control"), quantile_arm(*events, t, "t")]

    def one(arms, **cfg):
        return analyze(arms, **cfg).comparisons[0]

    return {
        "regression: GMV per buyer": (
            one(gmv, metric_type="mean", covariates="regression"),
            one(gmv, metric_type="mean", cuped=True),
            0.05,
        ),
        "regression: refund rate": (
            one(rr, metric_type="ratio", covariates="regression"),
            one(rr, metric_type="ratio", cuped=True),
            -0.10,
        ),
        "ratio covariate: refund rate": (
            one(ratio_x, metric_type="ratio", covariates="ratio"),
            one(ratio_x, metric_type="ratio", cuped=True),
            -0.10,
        ),
        "post-stratified: GMV per buyer": (
            analyze_stratified(strata, metric_type="mean").comparisons[0],
            one(gmv, metric_type="mean", cuped=True),
            0.05,
        ),
        "quantile: p90 order value": (one(p90, metric_type="quantile"), None, 0.05),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--units", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    tally: dict[str, dict[str, list]] = {}
    for lift in (False, True):
        for _ in range(args.runs):
            u, events = simulate(rng, args.units, lift)
            for name, (c, cuped, truth) in methods(u, events).items():
                t = tally.setdefault(name, {"fp": [], "cover": [], "ratio": []})
                if not lift:
                    t["fp"].append(c.rel_pvalue < 0.05)
                else:
                    lo, hi = c.rel_effect_size_ci_lower, c.rel_effect_size_ci_upper
                    t["cover"].append(lo <= truth <= hi)
                if cuped is not None:
                    t["ratio"].append(c.se**2 / cuped.se**2)
    print(f"{args.runs} A/A and {args.runs} known-effect runs per method, {args.units:,} units "
          f"each ({time.perf_counter() - start:.0f}s)")  # fmt: skip
    print(f"{'method':<34}{'A/A rejections at 5%':>26}{'coverage of truth (95%)':>28}"
          f"{'var / CUPED':>13}")  # fmt: skip
    for name, t in tally.items():
        cells = []
        for key in ("fp", "cover"):
            k, n = int(np.sum(t[key])), len(t[key])
            ci = stats.binomtest(k, n).proportion_ci(0.95)
            cells.append(f"{k / n:6.1%} [{ci.low:.1%}, {ci.high:.1%}]")
        ratio = f"{np.mean(t['ratio']):.3f}" if t["ratio"] else "—"
        print(f"{name:<34}{cells[0]:>26}{cells[1]:>28}{ratio:>13}")


if __name__ == "__main__":
    main()
