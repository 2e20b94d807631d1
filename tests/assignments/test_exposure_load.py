"""Queued exposures reach the warehouse's exposures table once, however often they are loaded."""

from __future__ import annotations

from datetime import UTC, datetime

from typer.testing import CliRunner

from tianping.assignments import service
from tianping.assignments.schemas import ExposureIn
from tianping.cli.main import app as cli
from tianping.experiments import service as experiments
from tianping.experiments.schemas import ExperimentSpec
from tianping.settings import Settings
from tianping.store import init_schema, make_engine, make_sessionmaker
from tianping.warehouse import connect

runner = CliRunner()
AT = datetime(2026, 1, 5, 10, tzinfo=UTC)


def test_load_copies_the_queue_once(tmp_path):
    settings = Settings(home=tmp_path)
    engine = make_engine(settings.store)
    init_schema(engine)
    with make_sessionmaker(engine)() as s:
        spec = ExperimentSpec(name="checkout", variants=["control", "treatment"],
                              primary_metric="gmv", status="running")  # fmt: skip
        experiments.create(spec, session=s)
        batch = [ExposureIn(experiment="checkout", variant="control", unit_id=f"u{i}",
                            exposed_at=AT) for i in range(5)]  # fmt: skip
        assert service.queue_exposures(batch, session=s, now=AT, key_id=None) == (5, 0)
        s.commit()
    engine.dispose()
    r = runner.invoke(cli, ["--home", str(tmp_path), "exposures", "load"])
    assert r.exit_code == 0 and "5 exposures loaded, 0 already there" in r.output, r.output
    r = runner.invoke(cli, ["--home", str(tmp_path), "exposures", "load"])
    assert "0 exposures loaded, 5 already there" in r.output, r.output
    wh = connect(settings)
    try:
        rows = wh.execute(wh.table("exposures")).sort_values("unit_id")
    finally:
        wh.close()
    assert list(rows["unit_id"]) == [f"u{i}" for i in range(5)]
    assert set(rows["variant"]) == {"control"}
