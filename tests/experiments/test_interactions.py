"""Interactions between concurrent experiments: the difference-in-differences equals the OLS
interaction coefficient, planted interactions are found, and Benjamini–Hochberg holds the
false-discovery rate on pairs without one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from tianping.experiments.interactions import Cell, pair_test, screen


def _cells(y, a, b):
    df = pd.DataFrame({"y": y, "a": a, "b": b})
    return [Cell(str(ka), str(kb), len(g), float(g.y.sum()), float((g.y**2).sum()))
            for (ka, kb), g in df.groupby(["a", "b"])]  # fmt: skip


def _units(rng, n, interaction):
    a = np.where(rng.random(n) < 0.5, "c", "t")
    b = np.where(rng.random(n) < 0.5, "c", "u")
    mean = 2.0 * (1 + 0.05 * (a == "t") + 0.03 * (b == "u") + interaction * (a == "t") * (b == "u"))
    return rng.poisson(mean).astype(float), a, b


def test_the_contrast_is_the_ols_interaction_with_hc2_errors():
    rng = np.random.default_rng(1)
    y, a, b = _units(rng, 20_000, 0.04)
    t = pair_test("A", "B", "orders", _cells(y, a, b), ["c", "t"], ["c", "u"])
    fit = smf.ols("y ~ C(a) * C(b)", pd.DataFrame({"y": y, "a": a, "b": b})).fit(cov_type="HC2")
    name = "C(a)[T.t]:C(b)[T.u]"
    assert t.estimate == pytest.approx(fit.params[name], rel=1e-10)
    assert t.pvalue == pytest.approx(fit.pvalues[name], rel=1e-6)
    assert t.contrast == ("t", "u") and t.units == 20_000
    assert t.relative == pytest.approx(fit.params[name] / y[(a == "c") & (b == "c")].mean())


def test_planted_interactions_are_found_and_the_fdr_holds_on_the_others():
    rng = np.random.default_rng(2)
    found, false_flags, flagged_total, runs = 0, 0, 0, 100
    for _ in range(runs):
        tests = []
        for i in range(10):  # one pair with a planted +15 % interaction, nine without
            y, a, b = _units(rng, 8000, 0.15 if i == 0 else 0.0)
            tests.append(pair_test(f"A{i}", f"B{i}", "orders", _cells(y, a, b), ["c", "t"],
                                   ["c", "u"]))  # fmt: skip
        out = screen(tests, fdr=0.05)
        found += out[0].flagged
        nulls = sum(t.flagged for t in out[1:])
        false_flags += nulls / max(1, nulls + out[0].flagged)
        flagged_total += nulls
    assert found / runs >= 0.9
    assert false_flags / runs <= 0.05 + 0.03  # the false-discovery proportion, averaged


def test_a_pair_without_the_needed_cells_is_not_tested():
    assert (
        pair_test("A", "B", "orders", [Cell("c", "c", 5, 5.0, 9.0)], ["c", "t"], ["c", "u"]) is None
    )
    assert screen([]) == []
