"""The notebook API on a demo home: docs/notebook.md's examples run as written, every frame holds
plain floats and timestamps, and each function gives the CLI's numbers for the same question."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import tianping as tp
from tianping.cli.main import app

DOC = Path(__file__).parents[1] / "docs" / "notebook.md"
runner = CliRunner()


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("notebook") / ".tianping"
    out = runner.invoke(app, ["--home", str(home), "demo", "--small"])
    assert out.exit_code == 0, out.output
    return home


def _cli(home: Path, *args: str):
    out = runner.invoke(app, ["--home", str(home), *args, "--format", "json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def test_the_public_names_are_curated_and_documented():
    import types

    import tianping.market.service  # noqa: F401 - subpackages must not shadow a public name
    import tianping.metrics.service  # noqa: F401

    assert tp.__all__ == sorted(tp.__all__) and "__version__" in tp.__all__
    for name in tp.__all__:
        if name != "__version__":
            value = getattr(tp, name)
            assert callable(value) and not isinstance(value, types.ModuleType), name
            assert value.__doc__, name
    with pytest.raises(AttributeError):
        tp.no_such_thing  # noqa: B018
    assert all(f"tp.{n}" in DOC.read_text() for n in tp.__all__ if n[0].islower() and n[0] != "_"
               and n not in ("settings_of",))  # fmt: skip


def test_the_docs_examples_run_on_a_demo_home(demo_home, tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 7
    monkeypatch.setenv("TIANPING_HOME", str(demo_home))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
    printed = capsys.readouterr().out
    # the small demo's month is too short to show NPS and door delivery within the rule's
    # margins: the example prints whatever verdict the rule reaches, as the CLI does
    verdict = _cli(demo_home, "experiment", "analyze", "checkout_red_packet")["recommendation"]
    assert f"{verdict} - Verdicts use" in printed and "taobao-2024-08" in printed


def _plain(frame: pd.DataFrame) -> None:
    for column in frame.columns:
        for value in frame[column]:
            assert not isinstance(value, Decimal), column
            assert not (isinstance(value, date) and not isinstance(value, pd.Timestamp)), column


def test_frames_hold_plain_values_and_the_cli_numbers(demo_home):
    home = str(demo_home)
    monthly = tp.headline_metrics(grain="month", home=home)
    cli = _cli(demo_home, "metrics", "--grain", "month")
    assert len(monthly) == len(cli)
    for row, doc in zip(monthly.to_dict("records"), cli, strict=True):
        assert row["period"] == pd.Timestamp(doc["period"])
        assert row["gmv"] == pytest.approx(float(doc["gmv"]), abs=0.005)
        assert row["buyers"] == doc["buyers"] and row["nps"] == pytest.approx(doc["nps"])

    market = tp.market_comparison(home=home)
    doc = _cli(demo_home, "market", "compare")
    assert market.attrs["period"] == doc["period"]
    for c in doc["comparisons"]:
        ours = market[(market.metric == c["metric"]) & market.ours].iloc[0]
        assert ours["value"] == pytest.approx(c["ours"]) and ours["share"] == pytest.approx(
            c["share"]
        )
        for g in c["competitors"]:
            theirs = market[(market.metric == c["metric"]) & (market.platform == g["platform"])]
            assert theirs["value"].iloc[0] == pytest.approx(g["value"])

    ab = tp.experiment("checkout_red_packet", home=home)
    doc = _cli(demo_home, "experiment", "analyze", "checkout_red_packet")
    assert ab.attrs["recommendation"] == doc["recommendation"]
    flat = [(m["metric"], c) for m in doc["metrics"] for c in m["comparisons"]]
    assert list(ab["metric"]) == [m for m, _ in flat]
    for row, (_, c) in zip(ab.to_dict("records"), flat, strict=True):
        assert row["rel_pvalue"] == pytest.approx(c["rel_pvalue"])
        assert row["decision_pvalue"] == pytest.approx(c["decision_pvalue"])

    standings = tp.race("homepage_feed_race", home=home)
    doc = _cli(demo_home, "race", "report", "homepage_feed_race")
    assert list(standings["arm"]) == [s["arm"] for s in doc["standings"]]
    assert list(standings["p_best"].round(4)) == [s["p_best"] for s in doc["standings"]]

    replay = tp.policy_replay("taobao-2024-08", "2024-05-01", "2024-05-30", home=home)
    doc = _cli(demo_home, "policy", "replay", "taobao-2024-08", "--from", "2024-05-01",
               "--to", "2024-05-30")  # fmt: skip
    outcome = doc["outcome"][0]
    assert replay["requests"].iloc[0] == outcome["requests"]
    assert replay["refunded_total"].iloc[0] == pytest.approx(float(outcome["refunded_total"]))

    for f in (monthly, market, tp.market_periods(home=home), ab, standings,
              tp.race_steps("homepage_feed_race", home=home), replay,
              tp.explain("2024-04-01", "2024-05-01", home=home),
              tp.movers("2024-04-01", "2024-05-01", home=home)):  # fmt: skip
        _plain(f)


def test_why_gives_the_clis_causes(demo_home):
    found = tp.why("2024-04-01", "2024-05-01", home=demo_home)
    doc = _cli(demo_home, "metrics", "why", "--from", "2024-04-01", "--to", "2024-05-01")
    assert found.attrs["segments_tested"] == doc["segments_tested"] > 0
    assert found.attrs["change"] == pytest.approx(doc["gmv_change"])
    assert list(found.get("segment", [])) == [c["segment"] for c in doc["causes"]]
    for row, c in zip(found.to_dict("records"), doc["causes"], strict=True):
        assert row["own"] == pytest.approx(c["own"]) and row["mix"] == pytest.approx(c["mix"])
    _plain(found)


def test_bridge_gives_the_clis_parts(demo_home):
    parts = tp.bridge("2024-04-01", "2024-05-01", home=demo_home, metric="net_gmv")
    doc = _cli(demo_home, "metrics", "bridge", "--from", "2024-04", "--to", "2024-05",
               "--metric", "net_gmv")  # fmt: skip
    assert list(parts["part"]) == [p["part"] for p in doc["parts"]]
    assert list(parts["amount_minor"]) == [p["amount_minor"] for p in doc["parts"]]
    assert parts["amount_minor"].sum() == parts.attrs["change_minor"] == doc["change_minor"]
    assert parts.attrs["notes"] == doc["notes"]


def test_settings_resolve_like_the_cli(demo_home, monkeypatch, tmp_path):
    from tianping.errors import NotFound

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIANPING_HOME", raising=False)
    assert tp.settings_of().home == Path(".tianping")
    assert tp.settings_of(home=demo_home).home == demo_home
    assert tp.settings_of(tp.Settings(home=tmp_path)).home == tmp_path
    monkeypatch.setenv("TIANPING_HOME", str(demo_home))
    assert len(tp.headline_metrics(grain="year")) == 1
    with pytest.raises(NotFound, match="no experiment named 'nope'"):
        tp.experiment("nope")


def test_a_stopped_experiment_is_none_for_the_client(demo_home):
    snapshot = runner.invoke(app, ["--home", str(demo_home), "experiment", "snapshot"]).stdout
    client = tp.Client(snapshot)
    assert "checkout_red_packet" not in client.experiments  # the demo's test is stopped
    assert client.variant("checkout_red_packet", "b1") is None
    race = client.variant("homepage_feed_race", "b1")  # the race still runs
    names = tp.assign_batch(snapshot, "homepage_feed_race", ["b1"], names=True)
    assert names.tolist() == [race]
