"""The change bridge on the warehouse and the store: each planted cause is found in its part,
with its evidence, and the parts add up to the change exactly."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from tianping.attribution.service import bridge_rows, change_bridge
from tianping.clock import FixedClock
from tianping.errors import UsageError
from tianping.experiments import service as experiments
from tianping.experiments.assignment import BUCKETS, Holdout, draws, round_half_up, unit_hashes
from tianping.market.models import MarketFigure
from tianping.metrics.calendar import parse_calendar

APRIL = (date(2024, 4, 1), date(2024, 4, 30))
MAY = (date(2024, 5, 1), date(2024, 5, 31))
HOLDOUT = Holdout("global-holdout", 0.2)
GROWTH, LIFT, CAMPAIGN = 1.1, 1.2, 3.0  # the market, the shipped experiment, the campaign days
CALENDAR = parse_calendar({"campaigns": {"may_sale": {"date": "05-11", "before_days": 1,
                                                      "after_days": 1}}})  # fmt: skip
EXPERIMENT = """
name: one-click
hypothesis: One-click checkout raises spend.
variants: [{name: control, weight: 1}, {name: treatment, weight: 1}]
primary_metric: gmv
start_date: 2024-03-01
"""


class World:
    """Buyers each spending a fixed amount a day (so the holdout's size error cancels between
    the periods); in May the market grows, the shipped experiment lifts the buyers outside
    the holdout, and a three-day campaign triples everyone's spend."""

    def __init__(self, buyers: int = 3000, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.ids = np.array([f"B{i:06d}" for i in range(buyers)])
        self.spend = np.round(rng.lognormal(np.log(3000), 0.6, buyers))  # fen a day
        threshold = round_half_up(BUCKETS * HOLDOUT.fraction)
        self.inside = draws(HOLDOUT.salt, unit_hashes(self.ids)) < threshold

    def day_spend(self, day: date) -> np.ndarray:
        if day < MAY[0]:
            return self.spend
        lift = np.where(self.inside, 1.0, LIFT) * GROWTH
        campaign = CAMPAIGN if date(2024, 5, 10) <= day <= date(2024, 5, 12) else 1.0
        return np.round(self.spend * lift * campaign)

    def orders(self) -> pa.Table:
        days = [APRIL[0] + timedelta(k) for k in range(61)]
        amounts = np.concatenate([self.day_spend(d) for d in days]).astype(np.int64)
        buyers = np.tile(self.ids, len(days))
        at = np.repeat([datetime(d.year, d.month, d.day, 12) for d in days], len(self.ids))
        n = amounts.size
        return pa.table({
            "order_id": [f"O{i:08d}" for i in range(n)], "buyer_id": buyers,
            "merchant_id": np.full(n, "m1"), "category": np.full(n, "food"),
            "amount": pa.array([f"{a / 100:.2f}" for a in amounts]).cast(pa.decimal128(18, 2)),
            "created_at": pa.array(at, pa.timestamp("us")),
            "channel": pa.nulls(n, pa.string()), "delivery_mode": pa.nulls(n, pa.string()),
            "product_id": pa.nulls(n, pa.string()),
            "coupon_amount": pa.nulls(n, pa.decimal128(18, 2)),
            "delivered_at": pa.nulls(n, pa.timestamp("us")),
        })  # fmt: skip

    def total(self, span) -> int:
        return int(sum(self.day_spend(span[0] + timedelta(k)).sum()
                       for k in range((span[1] - span[0]).days + 1)))  # fmt: skip


@pytest.fixture
def planted(duckdb_warehouse, session):
    world = World()
    duckdb_warehouse.append("orders", world.orders())
    for platform, april, may in (("jd", 3_000_000, 3_410_000), ("douyin", 2_600_000, 2_955_333)):
        for period, start, end, value in (("2024-04", *APRIL, april), ("2024-05", *MAY, may)):
            session.add(MarketFigure(platform=platform, period=period, period_start=start,
                                     period_end=end, metric="gmv", value=value, source="test",
                                     imported_at=datetime(2024, 6, 1, tzinfo=UTC)))  # fmt: skip
    experiments.create(experiments.load_yaml(EXPERIMENT), session=session)
    experiments.set_status("one-click", "running", session=session)
    experiments.ship("one-click", "treatment", session=session, decision_id=7,
                     clock=FixedClock(datetime(2024, 5, 1, tzinfo=UTC)))  # fmt: skip
    session.flush()
    return world, duckdb_warehouse, session


def _bridge(planted, **kw):
    _, wh, session = planted
    kw.setdefault("calendar", CALENDAR)
    return change_bridge(wh, session=session, before=APRIL, after=MAY, **kw)


def test_every_planted_cause_lands_in_its_part(planted):
    world, _, _ = planted
    b = _bridge(planted, holdout=HOLDOUT)
    assert (b.before_minor, b.after_minor) == (world.total(APRIL), world.total(MAY))
    assert sum(p.amount_minor for p in b.parts) == b.change_minor
    parts = {p.kind if p.kind != "calendar" else p.label: p for p in b.parts}
    april_day = world.total(APRIL) / 30
    assert parts["31 days against 30"].amount_minor == pytest.approx(april_day, abs=1)
    # competitors' GMV per day: (3.41 + 2.955333) / 31 against (3.0 + 2.6) / 30 = 1.1
    assert parts["market"].amount_minor == pytest.approx(april_day * 31 * 0.1, rel=1e-5)
    may_day = world.day_spend(date(2024, 5, 2)).sum()
    assert parts["may_sale"].amount_minor == pytest.approx(3 * (CAMPAIGN - 1) * may_day, rel=1e-6)
    # the experiment: what the buyers outside the holdout spent beyond their May rate
    outside = world.spend[~world.inside].sum() * GROWTH * (31 + 3 * (CAMPAIGN - 1))
    truth = outside * (LIFT - 1)
    assert parts["experiment"].amount_minor == pytest.approx(truth, rel=0.03)
    refs = {(e.kind, e.ref) for e in parts["experiment"].evidence}
    assert refs == {("experiment", "one-click"), ("decision", "7")}
    assert {e.ref for e in parts["market"].evidence} == {"2024-04", "2024-05"}
    assert [e.ref for e in parts["may_sale"].evidence] == ["may_sale:2024"]
    assert parts["residual"].kind == "residual"


def test_without_a_holdout_the_shipped_experiment_stays_in_the_residual(planted):
    b = _bridge(planted)
    assert "experiment" not in {p.kind for p in b.parts}
    assert any("one-click" in n and "--holdout" in n for n in b.notes)
    assert sum(p.amount_minor for p in b.parts) == b.change_minor


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"metric": "orders"}, "cannot bridge 'orders'; use one of gmv, net_gmv"),
        ({"before": MAY, "after": APRIL}, "the periods overlap"),
    ],
)
def test_bad_questions_are_named(planted, kw, message):
    _, wh, session = planted
    args = {"before": APRIL, "after": MAY, **kw}
    with pytest.raises(UsageError, match=message):
        change_bridge(wh, session=session, **args)


def test_rows_carry_exact_minor_units(planted):
    rows = bridge_rows(_bridge(planted, holdout=HOLDOUT))
    assert rows[-1]["part"] == "residual"
    assert all(r["amount"] == r["amount_minor"] / 100 for r in rows)
    assert json.dumps(rows)  # plain values


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_policy_version_is_replayed_and_every_seed_closes(tmp_path, session, seed):
    """A simulated marketplace whose refund policy changed in May: the policy part is the
    replay's difference in money refunded on May's requests; the parts close exactly."""
    from tianping.aftersales.replay import replay
    from tianping.refunds import policies
    from tianping.settings import Settings
    from tianping.simulate.service import run_simulation
    from tianping.warehouse import connect

    wh = connect(Settings(home=tmp_path), write=True)
    run_simulation(wh, buyers=3000, days=61, seed=seed, start=APRIL[0])
    old = policies.activate("taobao-2023-12", session=session, by="Li Na",
                            now=datetime(2024, 3, 1, tzinfo=UTC))  # fmt: skip
    new = policies.activate("taobao-2024-08", session=session, by="decision #3",
                            now=datetime(2024, 5, 2, tzinfo=UTC))  # fmt: skip
    b = change_bridge(wh, session=session, before=APRIL, after=MAY, metric="net_gmv")
    assert sum(p.amount_minor for p in b.parts) == b.change_minor
    policy = next(p for p in b.parts if p.kind == "policy")
    r = replay(wh, new, start=MAY[0], end=MAY[1], against=old)
    refunded_new, refunded_old = (sum(o.refunded_minor.values()) for o in r.outcomes)
    assert policy.amount_minor == refunded_old - refunded_new
    assert {(e.kind, e.ref) for e in policy.evidence} == {
        ("policy", old.version), ("policy", new.version), ("decision", "3"),
    }  # fmt: skip
    gmv = change_bridge(wh, session=session, before=APRIL, after=MAY, metric="gmv")
    assert "policy" not in {p.kind for p in gmv.parts}
    assert any("net_gmv" in n for n in gmv.notes)
    wh.close()


def test_the_cli_prints_the_library_numbers(tmp_path):
    from tianping.cli.main import app
    from tianping.settings import Settings
    from tianping.store import session_scope
    from tianping.warehouse import connect

    home = tmp_path / "h"
    runner = CliRunner()
    wh = connect(Settings(home=home), write=True)
    wh.append("orders", World(buyers=300).orders())
    wh.close()
    out = runner.invoke(app, ["--home", str(home), "metrics", "bridge", "--from", "2024-04",
                              "--to", "2024-05", "--format", "json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    shown = json.loads(out.stdout)
    wh = connect(Settings(home=home))
    expected = bridge_rows(change_bridge(wh, session=None, before=APRIL, after=MAY))
    assert shown["parts"] == expected
    assert any(n.startswith("no store") for n in shown["notes"])
    # with a store (and nothing in it) the same numbers, read from it
    settings = Settings(home=home)
    settings.check_store(write=True)
    with session_scope(settings.store) as session:
        with_store = bridge_rows(change_bridge(wh, session=session, before=APRIL, after=MAY))
    wh.close()
    assert with_store == expected
    assert sum(p["amount_minor"] for p in shown["parts"]) == shown["change_minor"]
    out = runner.invoke(app, ["--home", str(home), "metrics", "bridge", "--from", "2024-04",
                              "--to", "2024-05", "--holdout", "1.5"])  # fmt: skip
    assert out.exit_code == 2 and "--holdout must be from 0 to below 1" in out.output


def test_the_bridge_reads_the_same_days_on_every_engine(warehouse):
    world = World(buyers=200)
    warehouse.append("orders", world.orders())
    b = change_bridge(warehouse, session=None, before=APRIL, after=MAY, calendar=CALENDAR)
    assert (b.before_minor, b.after_minor) == (world.total(APRIL), world.total(MAY))
    assert [p.label for p in b.parts] == ["31 days against 30", "may_sale", "residual"]
    assert sum(p.amount_minor for p in b.parts) == b.change_minor
