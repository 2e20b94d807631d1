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


def test_alpha_split_and_by_correction_are_stored(session):
    text = YAML + "correction: by\nalpha_split: {primary: 4, secondary: 1}\n"
    service.create(service.load_yaml(text), session=session)
    session.flush()
    spec = service.spec_of(service.get_or_raise("one-click", session=session))
    assert spec.correction == "by" and spec.alpha_split == {"primary": 4, "secondary": 1}
    assert service.load_yaml(service.dump_yaml(spec)) == spec


def test_cupac_is_stored_and_off_by_default(session):
    assert service.load_yaml(YAML).cupac is False
    service.create(service.load_yaml(YAML + "cupac: true\n"), session=session)
    session.flush()
    spec = service.spec_of(service.get_or_raise("one-click", session=session))
    assert spec.cupac is True and spec.cuped is True
    assert service.load_yaml(service.dump_yaml(spec)) == spec


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
        (("mde: 0.02", "mde: 0.02\nalpha_split: {primary: 0}"), "positive number"),
        (("mde: 0.02", "mde: 0.02\nalpha_split: {tertiary: 1}"), "alpha_split"),
        (("mde: 0.02", "mde: 0.02\ncorrection: sidak"), "correction"),
        (("mde: 0.02", "mde: 0.02\ncuped: false\ncupac: true"), "cupac needs cuped"),
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


def test_a_shipped_experiment_serves_its_variant_to_every_unit(session):
    from datetime import UTC, datetime

    import numpy as np

    from tianping.assignments.schemas import ExposureIn
    from tianping.assignments.service import queue_exposures
    from tianping.audit import log as audit
    from tianping.clock import FixedClock
    from tianping.experiments.assignment import Snapshot, assign_batch, draw, variant_labels
    from tianping.experiments.client import Client

    service.create(service.load_yaml(YAML), session=session)
    with pytest.raises(Conflict, match="is a draft: it never ran"):
        service.ship("one-click", "control", session=session)
    service.set_status("one-click", "running", session=session)
    with pytest.raises(NotFound, match="no variant 'blue'; variants: control, treatment"):
        service.ship("one-click", "blue", session=session)
    at = datetime(2024, 6, 20, 15, tzinfo=UTC)
    row = service.ship("one-click", "control", session=session, clock=FixedClock(at))
    assert (row.status, row.shipped_variant, row.shipped_at) == ("stopped", "control", at)
    assert row.end_date == date(2024, 6, 20)  # the analysis window ends on the ship day

    snap = service.snapshot(session=session, holdout=Holdout("hold", 0.1))
    ids = [f"b{i}" for i in range(3000)]
    got = [assign(snap, "one-click", u) for u in ids]
    held = [draw("hold", u) < 1000 for u in ids]
    assert [g is None for g in got] == held  # only the global holdout is left out
    assert {g for g in got if g is not None} == {"control"}  # layer and traffic no longer apply
    assert assign(snap, "one-click", "qa-alice") in ("control", None)  # forced QA units too
    labels = variant_labels(snap, "one-click", assign_batch(snap, "one-click", np.array(ids)))
    assert list(labels) == got
    again = Snapshot.from_json(snap.to_json())
    assert again.experiment("one-click").shipped == "control" and again == snap

    seen = []
    client = Client(snap, on_exposure=seen.append)
    assert client.variant("one-click", "b1") == got[1] and seen == []  # no exposures any more
    assert not client.in_experiment("one-click", "b1")
    with pytest.raises(NotFound, match="no running experiment 'one-click'"):
        queue_exposures([ExposureIn(experiment="one-click", variant="control", unit_id="b1",
                                    exposed_at=at)], session=session, now=at, key_id=None)  # fmt: skip

    with pytest.raises(Conflict, match="was shipped \\(control\\); it cannot run again"):
        service.set_status("one-click", "running", session=session)
    with pytest.raises(Conflict, match="already shipped"):
        service.ship("one-click", "treatment", session=session)
    other = service.load_yaml(YAML.replace("name: one-click", "name: two-click"))
    service.create(other, session=session)
    service.set_status("two-click", "running", session=session)  # the layer range is free again
    actions = [e.action for e in audit.entries(
        session=session, where=audit.AuditFilter(subject="experiment:one-click"))]  # fmt: skip
    assert actions == ["experiment.created", "experiment.started", "experiment.shipped"]
