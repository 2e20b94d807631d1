"""``tianping demo``: the whole system on a simulated marketplace, end to end (orchestration).

The demo is a list of steps (:data:`STEPS`), each a function that reads what the steps before
it left in a :class:`DemoRun` and adds its own section:

1. **simulate** the default marketplace and scenario into the warehouse, keeping the truth;
2. **metrics**: the headline metrics of the window, per month and per day;
3. **market**: competitors simulated at the marketplace's own scale for every month it covers
   (``<home>/market_simulated.csv``, :mod:`tianping.simulate.market`), imported and compared
   like with like: the latest month our data covers wholly;
4. **experiment**: the scenario's checkout red-packet A/B test stored as an experiment and
   analysed by the experiment engine, beside its true effect;
5. **refunds**: every refund request of the last 30 days decided again, in one vectorised
   batch, by a shipped policy and compared with another (the what-if replay);
6. **store**: the last two weeks replayed through the refund service on a clock that follows
   the simulation (:mod:`tianping.demo_store`): orders recorded, refund requests decided by the
   policy in force, merchants answering and appealing, reviewers working the queue, SLA
   timers firing, red packets given back;
7. **race**: the scenario's five-strategy homepage race stored as a horse race and stepped
   :data:`RACE_STEPS` times by the race engine over the simulated window: standings, chance of
   being best, the traffic it would move, beside the true effects;
8. **people**: named approvers with API keys, a goal revised by an approved decision, an
   approved refund-policy change and a pending decision;
9. **report**: a self-contained HTML report (``<home>/report.html``).

A capability the demo cannot show yet is listed under "not in this demo yet" (:data:`NOT_YET`)
instead of pretending; a new capability becomes one more entry of :data:`STEPS`.

Re-running on a home that already holds event data is refused unless ``rebuild`` is set; a
rebuild replaces every simulated table, re-imports the market file (idempotent) and starts the
home's store afresh, so nothing is ever counted twice. A store named with ``--store`` is never
wiped: the demo fills it only while it holds no orders.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

from tianping.errors import UsageError
from tianping.settings import Settings, default_store, make_home

REPORT_FILE = "report.html"
DEMO_EXPERIMENT = "checkout_red_packet"
POLICY, AGAINST = "taobao-2024-08", "pinduoduo-2021"
MARKET_FILE = "market_simulated.csv"
#: The refund policy the demo's approvers adopt by decision, with its replay as evidence.
NEXT_POLICY = "1688-2025-03"
REPLAY_DAYS = 30
MIN_DAYS = 45  # the A/B test starts on day 7 and the replay needs history before its window
#: Sizes of the full demo and of the small one CI runs.
FULL = {"buyers": 20_000, "days": 90, "store_days": 14}
SMALL = {"buyers": 4_000, "days": 60, "store_days": 10}
#: Capabilities the demo will show once they exist: (title, what is there already).
DEMO_RACE = "homepage_feed_race"
NOT_YET = (
    (
        "Traffic that follows the horse race",
        "The race engine's steps are real: each reads the race's exposures and outcomes "
        "so far and decides where traffic should go next. But the simulator draws the whole "
        "window at the scenario's fixed, equal weights, so the traffic never moved as the "
        "steps asked, and the race is not run to its confirmation (that needs fresh units). A "
        "simulator that follows the race day by day would let the demo show both.",
    ),
)
#: How many times the demo steps its horse race over the simulated window.
RACE_STEPS = 3


class DemoProgress(Protocol):
    """What the demo reports while it runs (the CLI draws progress bars)."""

    def step(self, name: str, title: str) -> None:
        """A step named ``name`` begins; ``title`` is what people read."""

    def simulated(self, done: int, total: int) -> None:
        """The simulation has written ``done`` of ``total`` days."""


class _Quiet:
    def step(self, name: str, title: str) -> None:
        pass

    def simulated(self, done: int, total: int) -> None:
        pass


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """Sizes and seed of the simulated marketplace, and whether to replace existing data."""

    buyers: int = FULL["buyers"]
    days: int = FULL["days"]
    seed: int = 0
    rebuild: bool = False
    store_days: int = FULL["store_days"]  # the last days replayed through the store


@dataclass(slots=True)
class DemoRun:
    """Everything the steps produce; the report renders it."""

    settings: Settings
    options: DemoOptions
    wh: Any
    start: date = date(2024, 4, 1)
    end: date = date(2024, 6, 29)
    truth: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    headline: dict[str, Any] = field(default_factory=dict)
    monthly: list[dict[str, Any]] = field(default_factory=list)
    daily: list[dict[str, Any]] = field(default_factory=list)
    marks: dict[str, str] = field(default_factory=dict)  # ISO day -> event, for the charts
    market: dict[str, Any] = field(default_factory=dict)
    experiment: dict[str, Any] = field(default_factory=dict)
    refunds: dict[str, Any] = field(default_factory=dict)
    race: dict[str, Any] = field(default_factory=dict)
    store: dict[str, Any] = field(default_factory=dict)
    people: Any = None
    not_yet: tuple[tuple[str, str], ...] = NOT_YET
    seconds: dict[str, float] = field(default_factory=dict)
    report_path: Path | None = None


def check_options(options: DemoOptions) -> None:
    """Reject sizes the demo cannot show, naming the option.

    Raises:
        UsageError: too few days for the A/B test and the replay window, or no buyers.
    """
    if options.days < MIN_DAYS:
        raise UsageError(
            f"--days must be at least {MIN_DAYS} for the demo, not {options.days}", field="days"
        )
    if options.buyers < 500:
        raise UsageError(
            f"--buyers must be at least 500 for the demo, not {options.buyers}", field="buyers"
        )


def run_demo(
    settings: Settings, options: DemoOptions, *, progress: DemoProgress | None = None
) -> DemoRun:
    """Run every step of the demo on the home, warehouse and store of ``settings``.

    Raises:
        UsageError: bad options, or the warehouse already holds data and ``rebuild`` is off.
    """
    from tianping.metrics.calendar import load_calendar
    from tianping.warehouse import connect

    check_options(options)
    load_calendar(settings.calendar)  # a broken calendar file stops here, not after simulating
    progress = progress or _Quiet()
    wh = connect(settings, write=True)
    try:
        run = DemoRun(settings, options, wh)
        refuse_existing_data(run)
        for name, title, step in STEPS:
            progress.step(name, title)
            began = time.perf_counter()
            step(run, progress)
            run.seconds[name] = time.perf_counter() - began
        return run
    finally:
        wh.close()


def refuse_existing_data(run: DemoRun) -> None:
    """Stop before touching a home that already holds orders, unless rebuilding; a rebuild
    starts the home's own store afresh, and refuses a store named elsewhere that holds orders.
    """
    wh = run.wh
    orders = wh.row_count("orders") if wh.has_table("orders") else 0
    if orders and not run.options.rebuild:
        raise UsageError(
            f"{run.settings.home} already holds data ({orders} orders); "
            "`tianping demo --rebuild` replaces it with a fresh simulation, "
            "or choose an empty home with `tianping --home DIR demo`",
            field="home",
        )
    settings = run.settings
    if run.options.rebuild and settings.store == default_store(settings.home):
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"{settings.store_file}{suffix}").unlink(missing_ok=True)
        return
    held = _store_orders(settings)
    if held:
        raise UsageError(
            f"the store {settings.store} already holds {held} orders; the demo fills only an "
            "empty store (the home's own store is started afresh by --rebuild)",
            field="store",
        )


def _store_orders(settings: Settings) -> int:
    from sqlalchemy import func, select

    from tianping.refunds.models import Order

    if settings.store_file is not None and not settings.store_file.exists():
        return 0
    with _store(settings) as session:
        return session.scalar(select(func.count()).select_from(Order)) or 0


def simulate_step(run: DemoRun, progress: DemoProgress) -> None:
    """Simulate the marketplace into the warehouse and keep its ground truth."""
    from tianping.simulate.service import load_scenario, run_simulation

    o = run.options
    result = run_simulation(
        run.wh, buyers=o.buyers, days=o.days, seed=o.seed, scenario=load_scenario("default"),
        truth_dir=run.settings.home / "ground_truth", progress=progress.simulated,
    )  # fmt: skip
    run.truth, run.rows = result.truth, result.rows
    run.start = date.fromisoformat(result.truth["start"])
    run.end = date.fromisoformat(result.truth["end"]) - timedelta(days=1)


def metrics_step(run: DemoRun, progress: DemoProgress) -> None:
    """Headline metrics for the whole window, by month and by day; the calendar's events."""
    from tianping.metrics.calendar import load_calendar
    from tianping.metrics.service import compute_metrics

    whole = compute_metrics(run.wh, "year", run.start, run.end)
    run.headline = whole[0] if whole else {}
    run.monthly = compute_metrics(run.wh, "month", run.start, run.end)
    run.daily = compute_metrics(run.wh, "day", run.start, run.end)
    run.marks = load_calendar(run.settings.calendar).marks(run.start, run.end)


def market_step(run: DemoRun, progress: DemoProgress) -> None:
    """Competitors at our scale into the store, compared with our figures."""
    from tianping.market.service import compare_with_market, forget_figures, import_figures
    from tianping.simulate.market import SOURCE

    path = write_market_file(run)
    with _store(run.settings) as session:
        forget_figures(session, source_prefix=SOURCE)  # a rebuild: the old window's months
        imported = import_figures(path, session=session)
        view = compare_with_market(run.wh, session=session)
    run.market = {
        **view.to_dict(),
        "imported": imported.rows,
        "file": path,
        "periods": [c.to_dict() for c in view.periods],
    }


def write_market_file(run: DemoRun) -> Path:
    """``<home>/market_simulated.csv``: competitors at our scale for every month the simulation
    touches (:mod:`tianping.simulate.market`), from the measured GMV and buyers."""
    import csv

    from tianping.simulate.market import competitor_rows

    days = (run.end - run.start).days + 1
    gmv_per_day = float(sum(r["gmv"] or 0 for r in run.daily)) / days
    whole = [r for r in run.monthly if _whole_month(r["period"], run.start, run.end)]
    buyers = sum(r["buyers"] for r in (whole or run.monthly)) / len(whole or run.monthly)
    months = [r["period"].strftime("%Y-%m") for r in run.monthly]
    rows = competitor_rows(months, gmv_per_day, buyers, run.options.seed)
    make_home(run.settings.home)
    path = run.settings.home / MARKET_FILE
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _whole_month(first: date, start: date, end: date) -> bool:
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return start <= first and last <= end


def experiment_spec(truth: dict[str, Any], name: str = DEMO_EXPERIMENT):
    """The stored definition of a simulated A/B test, from the simulation's truth."""
    from tianping.experiments.schemas import parse_spec

    t = next(e for e in truth["experiments"] if e["name"] == name)
    return parse_spec(
        {
            "name": name,
            "hypothesis": " ".join(t["description"].split()),
            "salt": t["salt"],
            "layer": t["layer"],
            "variants": [{"name": a["name"], "weight": a["weight"]} for a in t["arms"]],
            "traffic": t["traffic"],
            "status": "stopped",
            "primary_metric": "orders",
            "secondary_metrics": ["gmv", "conversion", "aov"],
            # The rule is sized for the simulated month: a +10 % order gain, and margins the
            # ~20,000 buyers can show (NPS is answered by few buyers, so its margin is wide).
            "rule": {
                "success": [{"metric": "orders", "min_effect": 0.10}],
                "guardrails": [
                    {"metric": "nps", "margin": 10, "scale": "absolute"},
                    {"metric": "refund_rate", "margin": 0.2},
                    {"metric": "review_score", "margin": 0.02},
                    {"metric": "door_delivery_rate", "margin": 0.06},
                ],
            },
            "start_date": t["start"],
            "end_date": (date.fromisoformat(t["end"]) - timedelta(days=1)).isoformat(),
        },
        source=f"demo experiment {name}",
    )


def experiment_step(run: DemoRun, progress: DemoProgress) -> None:
    """Store the scenario's A/B test (replacing a previous demo's) and analyse it."""
    from tianping.experiments import repository, service
    from tianping.races.service import weight_schedule

    spec = experiment_spec(run.truth)
    with _store(run.settings) as session:
        old = repository.get_by_name(spec.name, session=session)
        if old is not None:  # a rebuild: the old definition described the old data
            session.delete(old)
            session.flush()
        service.create(spec, session=session)
        report = service.analyze_experiment(
            spec.name, session=session, warehouse=run.wh, weight_history=weight_schedule
        )
    truth = next(e for e in run.truth["experiments"] if e["name"] == spec.name)
    run.experiment = {
        "name": spec.name,
        "hypothesis": spec.hypothesis,
        "report": report.to_dict(),
        "truth": truth,
        "true_lift": {a["name"]: a["effects"] for a in truth["arms"]},
    }


def refunds_step(run: DemoRun, progress: DemoProgress) -> None:
    """Replay the last days' refund requests under the two shipped policies."""
    from tianping.aftersales.policy import load_builtin
    from tianping.aftersales.replay import replay, report_sections

    start = run.end - timedelta(days=REPLAY_DAYS - 1)
    report = replay(
        run.wh, load_builtin(POLICY), start=start, end=run.end, against=load_builtin(AGAINST),
        sample=5, seed=run.options.seed, currency=run.settings.currency,
    )  # fmt: skip
    run.refunds = {
        "policy": POLICY,
        "against": AGAINST,
        "requests": report.requests,
        "outcomes": report.outcomes,
        "sections": report_sections(report),
    }


def race_spec(truth: dict[str, Any], seed: int, name: str = DEMO_RACE):
    """The stored definition of the scenario's horse race, from the simulation's truth."""
    from tianping.races.schemas import RaceSpec

    t = next(e for e in truth["experiments"] if e["name"] == name)
    return RaceSpec(
        name=name,
        hypothesis=" ".join(t["description"].split()),
        goal_metric="orders",
        strategies=[a["name"] for a in t["arms"]],
        layer=t["layer"],
        traffic=t["traffic"],
        start_date=date.fromisoformat(t["start"]),
        seed=seed,
    )


def race_days(start: date, end: date, steps: int = RACE_STEPS) -> list[date]:
    """The days the demo steps its race: ``steps`` days evenly spread from the race's first
    week to the simulation's last day.

    >>> race_days(date(2024, 4, 15), date(2024, 5, 30))
    [datetime.date(2024, 4, 21), datetime.date(2024, 5, 11), datetime.date(2024, 5, 30)]
    """
    first = min(start + timedelta(days=6), end)
    span = (end - first).days
    days = {first + timedelta(days=round(span * k / max(steps - 1, 1))) for k in range(steps)}
    return sorted(days)


def horse_race_step(run: DemoRun, progress: DemoProgress) -> None:
    """Create the scenario's horse race and step it :data:`RACE_STEPS` times over the window."""
    from datetime import UTC, datetime, time

    from tianping.clock import FixedClock
    from tianping.races import service as races

    spec = race_spec(run.truth, run.options.seed)
    clock = FixedClock(datetime.combine(spec.start_date, time(0, 0), tzinfo=UTC))
    with _store(run.settings) as session:
        _forget_race(spec.name, session)
        races.create(spec, session=session, clock=clock)
        for day in race_days(spec.start_date, run.end):
            clock.set(datetime.combine(day, time(23, 59), tzinfo=UTC))
            step = races.step(spec.name, session=session, warehouse=run.wh, clock=clock)
            if races.get_or_raise(spec.name, session=session).phase != "racing":
                break  # its confirmation needs fresh units the simulation does not have
        data = races.report_data(spec.name, session=session)
    truth = next(e for e in run.truth["experiments"] if e["name"] == spec.name)
    effects = {a["name"]: a["effects"] for a in truth["arms"]}
    run.race = {
        "name": spec.name,
        "goal": spec.goal_metric,
        "steps": len(data["steps"]),
        "phase": data["race"]["phase"],
        "leader": step.leader,
        "stop": step.stop,
        "reasons": list(step.reasons),
        "standings": [s | {"true_effects": effects.get(s["arm"], {})} for s in step.standings],
        "window": (step.window_start, step.window_end),
        "true_best": max(effects, key=lambda a: effects[a].get("conversion", 0.0)),
        "description": truth["description"],
    }


def _forget_race(name: str, session: Any) -> None:
    """A rebuild: remove the old race, its steps and its experiments (they describe old data)."""
    from tianping.experiments import repository as experiments
    from tianping.races import repository as races

    old = races.get_by_name(name, session=session)
    if old is not None:
        for row in races.steps_of(old.id, session=session):
            session.delete(row)
        session.flush()
        for experiment in (old.experiment, old.confirm_experiment):
            found = experiment and experiments.get_by_name(experiment, session=session)
            if found:
                session.delete(found)
        session.delete(old)
        session.flush()
    leftover = experiments.get_by_name(name, session=session)
    if leftover is not None:
        session.delete(leftover)
        session.flush()


def store_step(run: DemoRun, progress: DemoProgress) -> None:
    """Run the last days through the refund service into the store."""
    from tianping.aftersales.policy import load_builtin
    from tianping.audit.log import acting_as
    from tianping.demo_store import fill_aftersales

    with _store(run.settings) as session:
        acting_as(session, "demo")
        done = fill_aftersales(run.wh, session, end=run.end, seed=run.options.seed,
                               policy=load_builtin(POLICY), currency=run.settings.currency,
                               days=run.options.store_days)  # fmt: skip
    run.store = done.to_dict()


def people_step(run: DemoRun, progress: DemoProgress) -> None:
    """Name approvers and an analyst with keys, revise a goal and adopt a policy by decision, leave one decision waiting."""
    from tianping.audit.log import acting_as
    from tianping.demo_store import fill_governance

    make_home(run.settings.home)
    with _store(run.settings) as session:
        acting_as(session, "demo")
        dac = run.monthly[-1].get("dac") if run.monthly else None
        run.people = fill_governance(
            session, run.wh, end=run.end, home=run.settings.home, experiment=DEMO_EXPERIMENT,
            merchant=run.store.get("merchant"), replay_policy=NEXT_POLICY, replay_days=REPLAY_DAYS,
            dac=float(dac) if dac is not None else 1.0,
        )  # fmt: skip


def report_step(run: DemoRun, progress: DemoProgress) -> None:
    """Write ``<home>/report.html``."""
    from tianping.report.html import render_demo_report

    make_home(run.settings.home)
    path = run.settings.home / REPORT_FILE
    path.write_text(render_demo_report(run), encoding="utf-8")
    run.report_path = path


def _store(settings: Settings):
    """A committed-on-success store session (the store's own helper, without the CLI)."""
    from tianping.store import session_scope

    return session_scope(settings.store)


Step = Callable[[DemoRun, DemoProgress], None]
#: The demo's steps in order: (name, title shown while it runs, function).
STEPS: tuple[tuple[str, str, Step], ...] = (
    ("simulate", "simulating the marketplace", simulate_step),
    ("metrics", "computing headline metrics", metrics_step),
    ("market", "comparing with the market", market_step),
    ("experiment", "analysing the A/B test", experiment_step),
    ("refunds", "replaying refund decisions", refunds_step),
    ("store", "recording orders and refunds", store_step),
    ("race", "stepping the horse race", horse_race_step),
    ("people", "naming approvers, goal, decisions", people_step),
    ("report", "writing the HTML report", report_step),
)
