"""Market import (all-or-nothing, idempotent) and comparison, on SQLite and PostgreSQL."""

from datetime import date
from pathlib import Path

import pytest

from fixtures_events import load
from tianping.errors import InvalidInput, UsageError
from tianping.market.compare import compare, growth
from tianping.market.periods import parse_period
from tianping.market.service import compare_with_market, import_figures

EXAMPLE = Path(__file__).parents[2] / "src" / "tianping" / "data" / "market_example.csv"


def test_compare_share_rank_gap_growth():
    c = compare("gmv", "2024", 2.0, {"big": 6.0, "small": 1.0}, 1.0, {"big": 5.0})
    assert c.share == pytest.approx(2 / 9)
    assert c.rank == 2 and c.platforms == 3
    assert c.our_growth == pytest.approx(1.0)
    big = c.gaps[0]
    assert (big.platform, big.gap, big.ratio, big.their_growth) == ("big", -4.0, 2 / 6, 0.2)
    assert c.gaps[1].their_growth is None


def test_growth_edge_cases():
    assert growth(None, 1.0) is None and growth(1.0, 0.0) is None


@pytest.mark.parametrize(
    ("label", "start", "end", "prev"),
    [
        ("2023", date(2023, 1, 1), date(2023, 12, 31), "2022"),
        ("2024-Q1", date(2024, 1, 1), date(2024, 3, 31), "2023-Q4"),
        ("2024-03", date(2024, 3, 1), date(2024, 3, 31), "2024-02"),
        ("2024-03-01", date(2024, 3, 1), date(2024, 3, 1), "2024-02-29"),
    ],
)
def test_periods(label, start, end, prev):
    p = parse_period(label)
    assert (p.start, p.end, p.label, p.previous().label) == (start, end, label, prev)


def test_example_file_imports_once_and_cites_sources(session):
    first = import_figures(EXAMPLE, session=session)
    assert (first.inserted, first.updated) == (5, 0)
    again = import_figures(EXAMPLE, session=session)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 5)
    from sqlalchemy import select

    from tianping.market.models import MarketFigure

    figures = session.scalars(select(MarketFigure)).all()
    assert all(f.source for f in figures)
    alibaba = next(f for f in figures if f.platform == "alibaba")
    assert float(alibaba.value) == 8e12


def test_bad_market_file_imports_nothing(session, tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("platform,period,gmv\nx,2023,1\ny,20233,2\n,2023,3\nz,2023,-4\n")
    with pytest.raises(InvalidInput) as err:
        import_figures(bad, session=session)
    assert "row 2, column period" in err.value.message
    assert "row 3, column platform: missing value" in err.value.message
    assert "row 4, column gmv" in err.value.message
    from sqlalchemy import func, select

    from tianping.market.models import MarketFigure

    assert session.scalar(select(func.count()).select_from(MarketFigure)) == 0
    nocols = tmp_path / "n.csv"
    nocols.write_text("name,year\nx,2023\n")
    with pytest.raises(UsageError, match="needs columns platform, period"):
        import_figures(nocols, session=session)


def test_compare_with_our_metrics(session, duckdb_warehouse, tmp_path):
    load(duckdb_warehouse)
    f = tmp_path / "m.csv"
    f.write_text("platform,period,gmv,buyers\nrival,2024-01,301.50,6\nrival,2023-12,100,3\n")
    import_figures(f, session=session)
    view = compare_with_market(duckdb_warehouse, session=session, period="2024-01")
    label, ours, rows = view.label, view.ours, view.comparisons
    assert label == "2024-01" and ours.coverage == 1.0 and ours.covered_days == 31
    gmv = next(r for r in rows if r.metric == "gmv")
    assert gmv.ours == pytest.approx(100.5)
    assert gmv.share == pytest.approx(100.5 / 402.0)
    assert gmv.rank == 2
    assert gmv.gaps[0].their_growth == pytest.approx(2.015)
    buyers = next(r for r in rows if r.metric == "buyers")
    assert (buyers.ours, buyers.rank) == (3.0, 2)


def test_projection_scales_flows_only(session, duckdb_warehouse):
    load(duckdb_warehouse)
    import_figures(EXAMPLE, session=session)
    view = compare_with_market(
        duckdb_warehouse,
        session=session,
        period="2023",
        ours_from=date(2024, 1, 1),
        ours_to=date(2024, 1, 31),
        project=True,
    )
    assert view.ours.projected
    gmv = next(r for r in view.comparisons if r.metric == "gmv")
    assert gmv.ours == pytest.approx(100.5 * 365 / 31)
    assert (
        gmv.comparable and "projected linearly from our 31 days 2024-01-01…2024-01-31" in gmv.basis
    )
    with pytest.raises(UsageError, match="add --project"):
        compare_with_market(duckdb_warehouse, session=session, period="2023",
                            ours_from=date(2024, 1, 1), ours_to=date(2024, 1, 31))  # fmt: skip


MONTHS = (
    "platform,period,gmv,buyers,dau\n"
    "rival,2023-12,100,3,2\nrival,2024-01,301.50,6,2\nrival,2024-02,200,5,3\n"
    "rival,2024-03,150,4,3\n"
)


def test_like_with_like_the_default_period_and_the_coverage_of_every_period(
    session, duckdb_warehouse, tmp_path
):
    from tianping.market.service import period_coverage

    load(duckdb_warehouse)  # data from 2024-01-01 to 2024-02-21
    f = tmp_path / "m.csv"
    f.write_text(MONTHS)
    import_figures(f, session=session)
    covered = {c.period: (c.covered_days, c.days) for c in
               period_coverage(duckdb_warehouse, session=session)}  # fmt: skip
    assert covered == {"2023-12": (0, 31), "2024-01": (31, 31), "2024-02": (21, 29),
                       "2024-03": (0, 31)}  # fmt: skip
    view = compare_with_market(duckdb_warehouse, session=session)  # the latest wholly covered
    assert view.label == "2024-01" and [c.period for c in view.periods] == list(covered)
    gmv = next(c for c in view.comparisons if c.metric == "gmv")
    assert gmv.our_growth is None  # December is not ours: no growth from a part

    feb = compare_with_market(duckdb_warehouse, session=session, period="2024-02")
    by = {c.metric: c for c in feb.comparisons}
    assert by["gmv"].ours == pytest.approx(105.25) and not by["gmv"].comparable
    assert by["gmv"].share is None and by["gmv"].rank is None and by["gmv"].gaps[0].gap is None
    assert "21 of 29 days" in by["gmv"].basis and "--project" in by["gmv"].basis
    assert not by["buyers"].comparable and by["buyers"].ours == 2.0
    assert by["dau"].comparable and "21 of 29 days" in by["dau"].basis
    assert by["gmv"].gaps[0].their_growth == pytest.approx(200 / 301.5 - 1)

    projected = compare_with_market(duckdb_warehouse, session=session, period="2024-02",
                                    project=True)  # fmt: skip
    gmv = next(c for c in projected.comparisons if c.metric == "gmv")
    assert gmv.comparable and gmv.ours == pytest.approx(105.25 * 29 / 21)
    assert gmv.share == pytest.approx(gmv.ours / (gmv.ours + 200))
    assert gmv.basis == "projected linearly from 21 of 29 days"
    assert not next(c for c in projected.comparisons if c.metric == "buyers").comparable

    march = compare_with_market(duckdb_warehouse, session=session, period="2024-03")
    assert march.ours.covered_days == 0 and all(c.ours is None for c in march.comparisons)


def test_cli_periods_and_compare_agree(tmp_path):
    import json

    from typer.testing import CliRunner

    from tianping.cli.main import app
    from tianping.settings import Settings
    from tianping.warehouse import connect

    home = tmp_path / "h"
    wh = connect(Settings(home=home))
    load(wh)
    wh.close()
    f = tmp_path / "m.csv"
    f.write_text(MONTHS)
    run = CliRunner()
    assert run.invoke(app, ["--home", str(home), "market", "import", str(f)]).exit_code == 0
    out = run.invoke(app, ["--home", str(home), "market", "periods", "--format", "json"])
    assert out.exit_code == 0, out.output
    periods = json.loads(out.stdout)
    assert [(p["period"], p["covered_days"], p["days"]) for p in periods] == [
        ("2023-12", 0, 31), ("2024-01", 31, 31), ("2024-02", 21, 29), ("2024-03", 0, 31)]  # fmt: skip
    doc = json.loads(run.invoke(app, ["--home", str(home), "market", "compare",
                                      "--format", "json"]).stdout)  # fmt: skip
    assert (doc["period"], doc["covered_days"], doc["projected"]) == ("2024-01", 31, False)
    gmv = doc["comparisons"][0]
    assert (gmv["metric"], gmv["ours"], gmv["comparable"]) == ("gmv", 100.5, True)
    text = run.invoke(app, ["--home", str(home), "market", "compare", "--period", "2024-02"])
    assert text.exit_code == 0
    said = " ".join(text.stdout.split())
    assert "21 of 29 days" in said and "gmv: not compared: our data covers 21 of 29 days" in said
