"""This year's Double 11 against last year's on the simulated marketplace: a planted change in
the festival's strength is recovered within the aligned comparison's interval."""

import csv
import dataclasses
import json
from datetime import date

import numpy as np
import pytest
from typer.testing import CliRunner

from tianping.cli.main import app
from tianping.metrics.calendar import default_calendar
from tianping.metrics.why import compare_event, explain_event
from tianping.simulate.calendar import day_intensity
from tianping.simulate.params import Festival, MarketParams
from tianping.simulate.service import run_simulation

START = date(2023, 10, 25)
DAYS = (date(2024, 11, 20) - START).days
STRENGTH = 1.5  # Double 11 2024 half as strong again as 2023's


def _params(strength: float) -> MarketParams:
    double11 = Festival("double11", 11, 11, strength_by_year=((2024, strength),))
    # no buyers join during the window, so the population is the same in both years and the
    # expected ratio of the windows is the ratio of the calendar's intensities
    return dataclasses.replace(
        MarketParams(), festivals=(Festival("618", 6, 18), double11), new_buyer_share=0.0
    ).with_window(START, DAYS)


def _truth(params: MarketParams) -> float:
    """Expected GMV of this year's window over last year's, from the simulator's own calendar."""
    intensity = day_intensity(params).orders
    last, this = default_calendar().aligned("double11", 2024)

    def total(o):
        first = (o.start - START).days
        return intensity[first : first + o.days].sum()

    return float(total(this) / total(last))


@pytest.fixture(scope="module")
def festival_home(tmp_path_factory):
    from pathlib import Path

    from tianping.settings import Settings
    from tianping.warehouse import connect

    home = Path(tmp_path_factory.mktemp("festival"))
    settings = Settings(home=home)
    wh = connect(settings, write=True)
    run_simulation(wh, buyers=60_000, days=DAYS, seed=3, start=START, params=_params(STRENGTH))
    yield home, wh
    wh.close()


@pytest.mark.slow
def test_a_planted_festival_effect_is_recovered_within_the_interval(festival_home):
    _, wh = festival_home
    truth = _truth(_params(STRENGTH))
    assert truth == pytest.approx(1.116, abs=0.002)  # the plant: +11.6 % over the window
    last, this, c = compare_event(wh, default_calendar(), "double11", 2024)
    assert (last.start, this.start) == (date(2023, 11, 1), date(2024, 11, 1))
    lo, hi = c.ratio_interval
    assert lo <= truth <= hi
    assert abs(c.ratio - truth) < 0.05
    # the same answer from the segment search's one grouped pass
    ev = explain_event(wh, default_calendar(), "double11", 2024, ("channel", "category"))
    assert ev.comparison == c


@pytest.mark.slow
def test_the_month_before_would_have_called_the_festival_growth(festival_home):
    # what the aligned comparison avoids: the festival window against the fortnight before it
    _, wh = festival_home
    _, this, c = compare_event(wh, default_calendar(), "double11", 2024)
    from tianping.metrics.service import span_summary

    before = span_summary(wh, date(2024, 10, 18), date(2024, 10, 31), by="channel")
    gmv_before = sum(float(r["gmv"]) for r in before.values())
    naive = (c.after_minor / 100) / gmv_before
    assert naive > 1.5 > c.ratio_interval[1]


@pytest.mark.slow
def test_the_cli_prints_the_aligned_comparison(festival_home):
    home, wh = festival_home
    _, _, c = compare_event(wh, default_calendar(), "double11", 2024)
    runner = CliRunner()
    out = runner.invoke(app, ["--home", str(home), "metrics", "why", "--event", "double11",
                              "--year", "2024", "--dims", "channel", "--format", "json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    aligned = json.loads(out.stdout)["aligned"]
    assert aligned["before"]["from"] == "2023-11-01" and aligned["after"]["peak"] == "2024-11-11"
    assert aligned["gmv_change"] == c.change_minor / 100
    assert aligned["gmv_ratio_low"] == round(c.ratio_interval[0], 4)
    out = runner.invoke(app, ["--home", str(home), "metrics", "explain", "--event", "double11",
                              "--year", "2024", "--format", "json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["aligned"]["gmv_ratio"] == round(c.ratio, 4)
    assert report["gmv_change"] == round(c.change_minor / 100, 2)
    out = runner.invoke(app, ["--home", str(home), "metrics", "explain", "--event", "double11",
                              "--year", "2024"])  # fmt: skip
    assert "double11 2024: 2024-11-01…2024-11-14 against 2023-11-01…2023-11-14" in out.stdout


@pytest.fixture
def orders_csv(tmp_path):
    path = tmp_path / "orders.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["order_id", "buyer_id", "merchant_id", "category", "amount", "created_at"])
        w.writerow(["o1", "b1", "m1", "food", "10.10", "2024-03-01T10:00:00Z"])
        w.writerow(["o2", "b2", "m1", "toys", "20.20", "2024-06-10T10:00:00Z"])
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--event", "double11"], "--event needs --year"),
        (["--event", "double11", "--year", "2024", "--from", "2024-01"], "leave out --from"),
        (["--from", "2024-01"], "give --from and --to (a day in each period), or --event"),
        (["--event", "double_11", "--year", "2024"], "did you mean 'double11'"),
        (["--event", "spring_festival", "--year", "2101"], "known for 1900–2100 only"),
        (["--event", "618", "--year", "2024"], "no orders in 618 2023 (2023-06-08…2023-06-21)"),
    ],
)
@pytest.mark.parametrize("command", ["why", "explain"])
def test_bad_event_questions_are_one_line(tmp_path, orders_csv, command, args, message):
    runner = CliRunner()
    home = tmp_path / "h"
    runner.invoke(app, ["--home", str(home), "ingest", "orders", str(orders_csv)])
    out = runner.invoke(app, ["--home", str(home), "metrics", command, *args])
    assert out.exit_code in (1, 2)
    assert len(out.output.strip().splitlines()) == 1, out.output
    assert message in " ".join(out.output.split()), out.output


def test_a_calendar_file_names_a_campaign(tmp_path, orders_csv):
    runner = CliRunner()
    home = tmp_path / "h"
    runner.invoke(app, ["--home", str(home), "ingest", "orders", str(orders_csv)])
    cal = tmp_path / "calendar.yaml"
    cal.write_text("campaigns:\n  spring_sale: {date: 03-01, after_days: 1}\n", encoding="utf-8")
    out = runner.invoke(app, ["--home", str(home), "metrics", "why", "--event", "spring_sale",
                              "--year", "2024", "--calendar", str(cal)])  # fmt: skip
    # the campaign is known; the orders (March 2024 only) have no 2023 window to compare with
    assert "no orders in spring_sale 2023 (2023-03-01…2023-03-02)" in " ".join(out.output.split())


def test_the_aligned_days_are_the_orders_grouped_on_every_engine(warehouse):
    from tianping.metrics.aligned import compare_windows
    from tianping.simulate.shocks import PlantedWorld, orders_table, planted_orders

    o = planted_orders(PlantedWorld(orders_per_day=300, days=(14, 14)), 2)
    warehouse.append("orders", orders_table(o, date(2023, 11, 1), date(2024, 11, 1)))
    daily = [np.bincount(o.day[o.period == p], weights=o.amount_minor[o.period == p],
                         minlength=14).astype(np.int64) for p in (0, 1)]  # fmt: skip
    _, _, c = compare_event(warehouse, default_calendar(), "double11", 2024)
    assert c == compare_windows(*daily)
