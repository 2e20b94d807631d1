"""``tianping race`` end to end through the real CLI: exit codes, formats, one-line errors."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest
from race_data import day_of_traffic, write
from typer.testing import CliRunner

from tianping.cli.main import app
from tianping.settings import Settings

runner = CliRunner()
SPEC = """name: promo
goal_metric: conversion
strategies: [a, b, c]
guardrails: []
min_units: 20
draws: 2000
start_date: 2024-06-01
budget: {period_minor: 100000}
"""


def run(home, *args):
    return runner.invoke(app, ["--home", str(home), *args])


@pytest.fixture
def home(tmp_path):
    """A home whose store has the race tables (whether or not a migration covers them yet)."""
    from tianping.races.models import Race, RaceStep
    from tianping.store import Base, init_schema, make_engine

    home = tmp_path / "h"
    engine = make_engine(Settings(home=home).store)
    init_schema(engine)
    Base.metadata.create_all(engine, tables=[Race.__table__, RaceStep.__table__])
    engine.dispose()
    return home


def test_create_step_report(home, tmp_path):
    spec = tmp_path / "race.yaml"
    spec.write_text(SPEC)
    out = run(home, "race", "create", str(spec))
    assert out.exit_code == 0, out.output
    out = run(home, "experiment", "snapshot")
    snap = json.loads(out.stdout)
    assert [v["name"] for v in snap["experiments"][0]["variants"]] == ["a", "b", "c"]

    from tianping.experiments.assignment import Snapshot
    from tianping.warehouse import connect

    wh = connect(Settings(home=home))
    ids = np.array([f"u{i}" for i in range(600)])
    rates = {"a": 0.05, "b": 0.1, "c": 0.1}
    write(wh, [day_of_traffic(Snapshot.from_dict(snap), "promo", ids, rates,
                              datetime(2024, 6, 1), np.random.default_rng(3))])  # fmt: skip
    wh.close()

    out = run(home, "race", "step", "promo", "--format", "json")
    assert out.exit_code == 0, out.output
    step = json.loads(out.stdout)
    assert step["number"] == 1 and sum(s["n"] for s in step["standings"]) == 600
    assert sum(b["allocated_minor"] for b in step["budget"]) == 100000
    out = run(home, "race", "step", "promo")
    assert out.exit_code == 0 and "step 2" in out.stdout and "biased" in out.stdout

    page = tmp_path / "promo.html"
    out = run(home, "race", "report", "promo", "--format", "html", "--output", str(page))
    assert out.exit_code == 0, out.output
    html = page.read_text()
    assert html.startswith("<!doctype html>") and html.count("<svg") == 3
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://', "")
    doc = json.loads(run(home, "race", "report", "promo", "--format", "json").stdout)
    assert [s["number"] for s in doc["steps"]] == [1, 2]
    assert {r["strategy"] for r in doc["budget"]} == {"a", "b", "c"}
    out = run(home, "race", "report", "promo")
    assert out.exit_code == 0 and "regret" in out.stdout and "standings over time" in out.stdout
    assert "goal_metric: conversion" in run(home, "race", "show", "promo").stdout
    assert "promo" in run(home, "race", "list").stdout
    assert run(home, "race", "stop", "promo").exit_code == 0
    out = run(home, "race", "step", "promo")
    assert out.exit_code == 1 and "is stopped" in out.output and "Traceback" not in out.output


def test_errors_are_one_line(home, tmp_path):
    out = run(home, "race", "step", "nope")
    assert out.exit_code == 2 and out.output.strip() == "error: no race named 'nope'"
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.replace("strategies: [a, b, c]", "strategies: [a, b, c]\nmin_share: 0.5"))
    out = run(home, "race", "create", str(bad))
    assert out.exit_code == 1 and "min_share" in out.output and "Traceback" not in out.output
    out = run(home, "race", "report", "nope", "--format", "pdf")
    assert out.exit_code == 2 and "unknown format" in out.output
