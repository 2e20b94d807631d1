"""Experiment definitions in the store, YAML round trips and the definition commands."""

from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from tianping.cli.main import app
from tianping.errors import Conflict, InvalidInput, NotFound
from tianping.experiments import service
from tianping.experiments.assignment import Holdout, assign

YAML = """
name: one-click
hypothesis: One-click checkout raises conversion without hurting refunds.
layer: checkout
layer_buckets: [0, 5000]
variants:
  - {name: control, weight: 1}
  - {name: treatment, weight: 1}
traffic: 0.5
forced: {qa-alice: treatment}
primary_metric: conversion
secondary_metrics: [gmv, aov]
mde: 0.02
start_date: 2024-06-01
end_date: 2024-06-28
"""


def test_defaults_are_consumer_first():
    spec = service.load_yaml(YAML)
    assert [(g.metric, g.higher_is_better) for g in spec.guardrails] == [
        ("nps", True),
        ("refund_rate", False),
        ("review_score", True),
        ("door_delivery_rate", True),
    ]
    assert (spec.alpha, spec.power, spec.method, spec.correction, spec.status) == (
        0.05,
        0.8,
        "frequentist",
        "holm",
        "draft",
    )
    assert spec.metrics[:3] == ("conversion", "gmv", "aov")


def test_create_then_export_round_trips(session):
    row = service.create(service.load_yaml(YAML), session=session)
    assert row.salt == "one-click" and row.start_date == date(2024, 6, 1)
    spec = service.spec_of(service.get_or_raise("one-click", session=session))
    again = service.load_yaml(service.dump_yaml(spec))
    assert again == spec
    assert again.to_config() == service.load_yaml(YAML).to_config()


def test_duplicate_names_and_unknown_experiments(session):
    service.create(service.load_yaml(YAML), session=session)
    with pytest.raises(Conflict, match="already exists"):
        service.create(service.load_yaml(YAML), session=session)
    with pytest.raises(NotFound, match="no experiment named 'nope'"):
        service.get_or_raise("nope", session=session)


def test_running_experiments_of_a_layer_may_not_overlap(session):
    service.create(service.load_yaml(YAML), session=session)
    service.set_status("one-click", "running", session=session)
    other = YAML.replace("name: one-click", "name: coupon-first").replace(
        "[0, 5000]", "[4000, 10000]"
    )
    service.create(service.load_yaml(other), session=session)
    with pytest.raises(Conflict, match="overlap"):
        service.set_status("coupon-first", "running", session=session)


def test_snapshot_holds_running_experiments(session):
    service.create(service.load_yaml(YAML), session=session)
    assert service.snapshot(session=session).experiments == ()
    service.set_status("one-click", "running", session=session)
    snap = service.snapshot(session=session, holdout=Holdout("h", 0.05))
    assert [e.name for e in snap.experiments] == ["one-click"]
    assert assign(snap, "one-click", "qa-alice") == "treatment"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("primary_metric: conversion", "primary_metric: happiness"), "unknown metric 'happiness'"),
        (("traffic: 0.5", "traffic: 2"), "traffic"),
        (("mde: 0.02", "mde: 0.02\ncolour: red"), "colour"),
        (("end_date: 2024-06-28", "end_date: 2024-05-28"), "end_date is before start_date"),
        (("forced: {qa-alice: treatment}", "forced: {qa-alice: blue}"), "unknown variant"),
        (("name: one-click", "name: one click"), "name"),
    ],
)
def test_invalid_definitions_are_rejected(change, message):
    with pytest.raises(InvalidInput, match=message):
        service.load_yaml(YAML.replace(*change))


def test_cli_create_list_show_export(tmp_path):
    runner = CliRunner()
    home = ["--home", str(tmp_path / "home")]
    path = tmp_path / "exp.yaml"
    path.write_text(YAML, encoding="utf-8")
    result = runner.invoke(app, [*home, "experiment", "create", str(path)])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(app, [*home, "experiment", "list", "--format", "json"])
    assert json.loads(listed.output)[0]["name"] == "one-click"
    shown = runner.invoke(app, [*home, "experiment", "show", "one-click"])
    assert "primary_metric: conversion" in shown.output
    as_json = json.loads(
        runner.invoke(app, [*home, "experiment", "show", "one-click", "--format", "json"]).output
    )
    assert as_json["status"] == "draft" and as_json["variants"][1] == {
        "name": "treatment",
        "weight": 1.0,
    }
    table = runner.invoke(app, [*home, "experiment", "show", "one-click", "--format", "table"])
    assert table.exit_code == 0 and "conversion" in table.output and "qa-alice" in table.output
    out = tmp_path / "out.yaml"
    runner.invoke(app, [*home, "experiment", "export", "one-click", "-o", str(out)])
    assert service.load_yaml(out.read_text()) == service.load_yaml(shown.output)
    assert runner.invoke(app, [*home, "experiment", "start", "one-click"]).exit_code == 0
    snap = json.loads(runner.invoke(app, [*home, "experiment", "snapshot"]).output)
    assert snap["experiments"][0]["forced"] == {"qa-alice": "treatment"}
    again = runner.invoke(app, [*home, "experiment", "create", str(path)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_cli_reports_bad_yaml_in_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed", encoding="utf-8")
    result = CliRunner().invoke(app, ["--home", str(tmp_path), "experiment", "create", str(path)])
    assert result.exit_code == 1
    assert "not valid YAML" in result.output and "Traceback" not in result.output
