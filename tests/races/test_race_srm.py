"""The sample-ratio check of a race's experiment expects each window's new units at the weights
the race had written then: no false "split broken" after several steps, through the library,
`tianping experiment analyze <race>` and the dashboard page; a real break is still caught."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import numpy as np
import pytest
from race_data import day_of_traffic, write
from scipy import stats
from typer.testing import CliRunner

from tianping.clock import FixedClock
from tianping.settings import Settings

RATES = {"plain": 0.06, "coupon": 0.08, "bundle": 0.09}
SPEC = """
name: checkout-race
goal_metric: conversion
strategies: [plain, coupon, bundle]
control: plain
control_share: 0.2
min_share: 0.05
guardrails: []
min_units: 50
draws: 4000
seed: 7
confirm_units: 300
start_date: 2024-06-01
"""


def _day(n: int) -> datetime:
    return datetime(2024, 6, n, tzinfo=UTC)


@pytest.fixture(scope="module")
def race_home(tmp_path_factory):
    """A home whose race took a step every day for five days on traffic assigned with the
    weights in force that day (the last step ends the adaptive phase or not: either way the
    experiment saw several splits)."""
    from tianping.experiments import service as experiments
    from tianping.races import service
    from tianping.races.models import Race, RaceStep
    from tianping.store import Base, init_schema, make_engine, session_scope
    from tianping.warehouse import connect

    home = tmp_path_factory.mktemp("race-srm")
    settings = Settings(home=home)
    engine = make_engine(settings.store)
    init_schema(engine)
    Base.metadata.create_all(engine, tables=[Race.__table__, RaceStep.__table__])
    engine.dispose()
    wh = connect(settings)
    rng = np.random.default_rng(11)
    batches = []
    with session_scope(settings.store) as s:
        service.create(service.load_yaml(SPEC), session=s, clock=FixedClock(_day(1)))
    for day in range(1, 6):
        with session_scope(settings.store) as s:
            if service.get_or_raise("checkout-race", session=s).phase != "racing":
                break
            snap = experiments.snapshot(session=s)
        ids = np.array([f"d{day}u{i}" for i in range(400)])
        batches.append(day_of_traffic(snap, "checkout-race", ids, RATES, _day(day), rng))
        write(wh, batches)
        with session_scope(settings.store) as s:
            service.step("checkout-race", session=s, warehouse=wh, clock=FixedClock(_day(day + 1)))
    wh.close()
    return {"home": home, "settings": settings, "batches": batches}


def _analyze(settings, warehouse=None):
    from tianping.experiments import service as experiments
    from tianping.races.service import weight_schedule
    from tianping.store import session_scope
    from tianping.warehouse import connect

    wh = warehouse or connect(settings)
    try:
        with session_scope(settings.store) as s:
            return experiments.analyze_experiment(
                "checkout-race", session=s, warehouse=wh, clock=FixedClock(_day(20)),
                weight_history=weight_schedule,
            )  # fmt: skip
    finally:
        if warehouse is None:
            wh.close()


def test_the_library_expects_each_window_at_its_weights(race_home, capsys):
    from tianping.stats import srm_test

    report = _analyze(race_home["settings"])
    doc = report.to_dict()
    windows = doc["srm_windows"]
    assert len(windows) >= 3 and windows[0]["from"] is None
    assert sum(sum(w["units"]) for w in windows) == sum(report.counts) == 400 * len(windows[:-1])
    assert len({tuple(round(x, 6) for x in w["weights"]) for w in windows}) >= 3  # re-weighted
    naive = srm_test(list(report.counts), list(report.plan.weights))  # the current weights
    with capsys.disabled():
        print(f"\nrace SRM over {len(windows)} windows: before p = {naive.pvalue:.3g}, "
              f"after p = {report.srm.pvalue:.3g} (counts {list(report.counts)})")  # fmt: skip
    assert naive.flagged and naive.pvalue < 1e-6
    assert not report.srm.flagged and report.srm.windows == len(windows)
    statistic, dof = 0.0, 0  # by hand with scipy: one chi-square per window, summed
    for w in windows:
        share = np.array(w["weights"]) / sum(w["weights"])
        live = share > 1e-6
        units = np.array(w["units"])
        if units.sum():
            expected = units.sum() * share[live] / share[live].sum()
            statistic += stats.chisquare(units[live], expected).statistic
            dof += int(live.sum()) - 1
    assert report.srm.dof == dof and dof >= 4
    assert report.srm.pvalue == pytest.approx(stats.chi2.sf(statistic, dof), rel=1e-9)
    assert "split is broken" not in " ".join(report.reasons)
    assert not any(w.startswith("SRM") for w in report.warnings)
    expected = [a["expected_units"] for a in doc["arms"]]
    assert sum(expected) == pytest.approx(sum(report.counts))


def test_a_real_break_in_one_window_is_still_caught(race_home, tmp_path):
    from tianping.warehouse import connect

    batches = [dict(b) for b in race_home["batches"]]
    for day in (1, 2):  # most of one arm's exposures lost on days 2 and 3
        exposures = batches[day]["exposures"]
        keep = np.ones(exposures.num_rows, dtype=bool)
        bundle = np.flatnonzero(np.asarray(exposures["variant"]) == "bundle")
        keep[bundle[: len(bundle) * 4 // 5]] = False
        batches[day]["exposures"] = exposures.filter(keep)
    wh = connect(Settings(home=tmp_path, warehouse=f"duckdb://{tmp_path / 'w.duckdb'}"))
    try:
        write(wh, batches)
        report = _analyze(race_home["settings"], warehouse=wh)
    finally:
        wh.close()
    assert report.srm.flagged
    assert report.recommendation == "investigate"  # the rule's SRM gate failed
    assert report.health[0].name == "SRM" and report.health[0].status == "fail"
    assert any("splits in force over time" in w for w in report.warnings)


def test_cli_and_dashboard_show_the_same_check(race_home):
    from fastapi.testclient import TestClient

    from auth_helpers import make_key
    from tianping.cli.main import app as cli
    from tianping.server.app import create_app

    home, settings = race_home["home"], race_home["settings"]
    expected = _analyze(settings).to_dict()
    out = CliRunner().invoke(cli, ["--home", str(home), "experiment", "analyze", "checkout-race",
                                   "--format", "json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["srm_pvalue"] == pytest.approx(expected["srm_pvalue"], rel=1e-9)
    assert doc["srm_flagged"] is False and len(doc["srm_windows"]) == len(expected["srm_windows"])
    table = CliRunner().invoke(cli, ["--home", str(home), "experiment", "analyze", "checkout-race"])
    text = " ".join(table.stdout.split())
    assert f"SRM p = {doc['srm_pvalue']:.3g} (against the weights in force over" in text
    assert "broken" not in text

    with TestClient(create_app(settings)) as client:
        key = make_key(client.app, "analyst")
        client.post("/dashboard/sign-in", data={"key": key})
        page = client.get("/dashboard/experiments/checkout-race")
    assert page.status_code == 200
    shown = re.search(r"sample-ratio check against the weights in force over time "
                      r"\((\d+) windows:[^)]*\): p = ([0-9.e+-]+)", page.text)  # fmt: skip
    assert shown, page.text[:2000]
    assert int(shown.group(1)) == len(doc["srm_windows"])
    assert shown.group(2) == f"{doc['srm_pvalue']:.3g}"
    assert "split is broken" not in page.text
