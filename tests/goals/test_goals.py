"""KPI goals: every revision kept; status against path and forecast."""

from datetime import UTC, date, datetime, timedelta

import pytest

from fixtures_events import load
from tianping.audit import log as audit
from tianping.clock import FixedClock
from tianping.errors import Forbidden, InvalidInput, NotFound
from tianping.goals.forecast import linear_forecast, path_value, status
from tianping.goals.service import check_target, get_goal, goal_status, set_goal


def test_path_and_forecast_by_hand():
    assert path_value(10, 20, date(2024, 1, 1), date(2024, 1, 31), date(2024, 1, 16)) == 15
    assert path_value(10, 20, date(2024, 1, 1), date(2024, 1, 31), date(2025, 1, 1)) == 20
    days = [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)]
    assert linear_forecast(days, [1.0, 3.0, 5.0], date(2024, 1, 5)) == pytest.approx(9.0)
    s = status(
        10.0,
        5.0,
        date(2024, 1, 1),
        date(2024, 1, 11),
        date(2024, 1, 6),
        [(date(2024, 1, 1), 10.0), (date(2024, 1, 6), 8.0)],
    )
    assert s.direction == "down" and s.expected == 7.5
    assert s.forecast == pytest.approx(6.0) and s.on_track is False
    assert s.progress == pytest.approx(0.4)


def test_revisions_are_kept_with_reason_and_time(session, duckdb_warehouse):
    load(duckdb_warehouse)
    clock = FixedClock(datetime(2024, 2, 22, tzinfo=UTC))
    set_goal(
        "double-gmv",
        metric="gmv",
        target=200,
        deadline=date(2024, 6, 30),
        reason="FY plan",
        session=session,
        wh=duckdb_warehouse,
        clock=clock,
    )
    clock.advance(days=30)
    change = {"metric": "gmv", "target": 300, "deadline": date(2024, 6, 30),
              "reason": "raised by the board", "author": "cfo", "session": session,
              "wh": duckdb_warehouse, "clock": clock}  # fmt: skip
    with pytest.raises(Forbidden, match="needs an approved goal_change decision"):
        set_goal("double-gmv", **change)  # nobody changes a goal silently
    set_goal("double-gmv", **change, forced_by="cfo")
    goal = get_goal("double-gmv", session=session)
    assert [(r.number, r.target, r.reason) for r in goal.revisions] == [
        (1, 200.0, "FY plan"),
        (2, 300.0, "raised by the board (forced by cfo)"),
    ]
    log = [audit.entry_dict(e) for e in audit.entries(session=session)]
    assert [(e["action"], e["subject"], e["actor"]) for e in log] == [
        ("goal.set", "goal:double-gmv", "system"),
        ("goal.forced", "goal:double-gmv", "cfo"),
    ]
    assert log[1]["detail"]["target"] == 300.0 and log[1]["detail"]["revision"] == 2
    assert goal.revisions[1].created_at.replace(tzinfo=UTC) == datetime(2024, 3, 23, tzinfo=UTC)
    assert goal.revisions[0].baseline == goal.revisions[1].baseline == pytest.approx(105.25)
    report = goal_status(goal, duckdb_warehouse)
    assert report.changes == 1
    assert report.status.actual == pytest.approx(105.25)
    assert report.status.as_of == date(2024, 2, 21)
    # two monthly points: 100.50 in Jan, 105.25 in Feb -> line reaches ~124 by June 30
    assert report.status.forecast == pytest.approx(
        linear_forecast([date(2024, 1, 1), date(2024, 2, 1)], [100.5, 105.25], date(2024, 6, 30))
    )
    assert report.status.on_track is False


def test_goal_errors(session):
    with pytest.raises(InvalidInput, match="unknown metric"):
        set_goal(
            "g", metric="profit", target=1, deadline=date(2024, 1, 1), reason="x", session=session
        )
    with pytest.raises(InvalidInput, match="needs a reason"):
        set_goal(
            "g", metric="gmv", target=1, deadline=date(2024, 1, 1), reason=" ", session=session
        )
    with pytest.raises(NotFound):
        get_goal("nope", session=session)


def test_goal_set_revises_only_with_force_and_an_actor(tmp_path):
    from typer.testing import CliRunner

    from tianping.cli.main import app

    runner = CliRunner()

    def run(*args, **env):
        return runner.invoke(app, ["--home", str(tmp_path), "goal", "set", "dac-fy26", "--metric",
                                   "dac", "--by", NEXT_YEAR, *args], env=env)  # fmt: skip

    r = run("--target", "2000000", "--reason", "FY plan", "--actor", "dan")
    assert r.exit_code == 0, r.output
    r = run("--target", "1500000", "--reason", "market shrank", "--actor", "dan")
    assert r.exit_code == 1 and "needs an approved goal_change decision" in r.output
    r = run("--target", "1500000", "--reason", "market shrank", "--force", TIANPING_ACTOR="")
    assert r.exit_code != 0 and "--force needs --actor" in r.output
    r = run("--target", "1500000", "--reason", "market shrank", "--force", "--actor", "ceo")
    assert r.exit_code == 0 and "revised (revision 2)" in r.output
    log = runner.invoke(app, ["--home", str(tmp_path), "audit", "--subject", "goal:dac-fy26",
                              "--format", "json"])  # fmt: skip
    import json

    rows = json.loads(log.output)
    assert [(e["action"], e["actor"]) for e in rows] == [
        ("goal.set", "dan"),
        ("goal.forced", "ceo"),
    ]


NEXT_YEAR = (date.today() + timedelta(days=365)).isoformat()  # the CLI judges by today's date


@pytest.mark.parametrize(
    ("metric", "target", "by", "message"),
    [
        ("gmv", "-5", NEXT_YEAR, "target -5 for gmv is negative; a goal's target is at least 0"),
        ("refund_rate", "5", NEXT_YEAR, "target 5 for refund_rate is outside 0..1 (a fraction"),
        ("nps", "150", NEXT_YEAR, "target 150 for nps is outside -100..100"),
        ("dac", "100", "2020-01-31", "deadline 2020-01-31 has already passed (today is"),
    ],
)
def test_goals_that_cannot_be_met_are_refused_in_one_line(tmp_path, metric, target, by, message):
    from typer.testing import CliRunner

    from tianping.cli.main import app

    r = CliRunner().invoke(app, ["--home", str(tmp_path), "goal", "set", "g", "--metric", metric,
                                 "--target", target, "--by", by, "--reason", "plan"])  # fmt: skip
    assert r.exit_code == 1 and message in r.output, r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_a_negative_nps_target_is_a_goal():
    check_target("nps", -20.0, date(2025, 1, 1), date(2024, 6, 1))  # NPS runs from -100
    with pytest.raises(InvalidInput, match="deadline 2024-05-31 has already passed"):
        check_target("nps", 10.0, date(2024, 5, 31), date(2024, 6, 1))
