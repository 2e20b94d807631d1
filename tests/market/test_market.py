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
    label, ours, rows = compare_with_market(duckdb_warehouse, session=session, period="2024-01")
    assert label == "2024-01" and ours.coverage == 1.0
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
    _, ours, rows = compare_with_market(
        duckdb_warehouse,
        session=session,
        period="2023",
        ours_from=date(2024, 1, 1),
        ours_to=date(2024, 1, 31),
        project=True,
    )
    assert ours.projected
    gmv = next(r for r in rows if r.metric == "gmv")
    assert gmv.ours == pytest.approx(100.5 * 365 / 31)
