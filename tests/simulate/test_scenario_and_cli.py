"""Scenario validation names what is wrong and where; the CLI prints one line, no traceback."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tianping.cli.main import app
from tianping.errors import InvalidInput
from tianping.simulate.params import MarketParams
from tianping.simulate.scenario import parse_scenario
from tianping.simulate.world import nps_of_latent, nps_shift


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("experiments: {}", "experiments must be a list"),
        ("experiments: [{name: x, arms: [{name: a}]}]", "at least two arms"),
        ("experiments: [{name: x, arms: [{name: a}, {name: a}]}]", "duplicate arm name 'a'"),
        (
            "experiments: [{name: x, arms: [{name: a}, {name: b, effects: {ctr: 1}}]}]",
            "unknown key 'ctr'",
        ),
        (
            "experiments: [{name: x, arms: [{name: a}, {name: b, effects: {conversion: -1}}]}]",
            "effects.conversion must be above -1",
        ),
        ("experiments: [{name: x, traffic: 0, arms: [{name: a}, {name: b}]}]", "traffic"),
        ("market: {refund_magic: 2}", "unknown key 'refund_magic'"),
        ("name: [unclosed", "not valid YAML"),
    ],
)
def test_bad_scenarios_are_rejected_with_the_field(text, words):
    with pytest.raises(InvalidInput) as err:
        parse_scenario(text, "s.yaml")
    assert words in err.value.message
    assert err.value.message.startswith("s.yaml")


def test_nps_effect_in_points_moves_the_population_nps_by_that_much():
    params = MarketParams()
    spread = float((params.nps_buyer_sigma**2 + params.nps_noise**2) ** 0.5)
    base = nps_of_latent(params.nps_mean, spread)
    for points in (-8.0, 5.0, 12.0):
        shifted = nps_of_latent(params.nps_mean + nps_shift(params, points), spread)
        assert abs(100 * (shifted - base) - points) < 1e-6
    with pytest.raises(InvalidInput):
        nps_shift(params, 95.0, "too_good")


def test_cli_simulates_into_the_home_and_writes_the_truth(tmp_path):
    home = tmp_path / "home"
    result = CliRunner().invoke(
        app, ["--home", str(home), "simulate", "--buyers", "800", "--days", "20", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert rows["orders"] > 0 and rows["exposures"] > 0
    truth = json.loads((home / "ground_truth" / "truth.json").read_text())
    assert truth["buyers"] == 800 and truth["scenario"]["name"] == "default"


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["--home", str(tmp_path), "simulate", "--buyers", "0"])
    assert bad.exit_code != 0
    assert "buyers must be a positive whole number" in bad.output
    assert "Traceback" not in bad.output
    missing = runner.invoke(
        app, ["--home", str(tmp_path), "simulate", "--scenario", str(tmp_path / "nope.yaml")]
    )
    assert missing.exit_code != 0 and "cannot read scenario" in missing.output


def test_every_parameter_is_documented():
    import dataclasses
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "simulator.md").read_text(encoding="utf-8")
    missing = [f.name for f in dataclasses.fields(MarketParams) if f"`{f.name}`" not in doc]
    assert not missing, f"parameters without a line in docs/simulator.md: {missing}"
