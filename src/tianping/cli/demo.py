"""``tianping demo``: simulate, measure, compare, experiment, decide refunds, race, report."""

from __future__ import annotations

import importlib.util

import typer


def register(app: typer.Typer) -> None:
    """Add ``tianping demo`` to the root command (called once at start-up for every command module)."""
    app.command("demo")(demo)


def demo(
    ctx: typer.Context,
    buyers: int | None = typer.Option(
        None, help="Simulated buyers (default 20000; 4000 with --small)."
    ),
    days: int | None = typer.Option(
        None, help="Simulated days from 2024-04-01 (default 90; 60 with --small)."
    ),
    seed: int = typer.Option(
        0, help="Seed of the simulation: the same seed gives the same report."
    ),
    small: bool = typer.Option(
        False, "--small", help="A small marketplace that runs in seconds (CI)."
    ),
    rebuild: bool = typer.Option(
        False, "--rebuild", help="Replace the data of a home that already has some (else refused)."
    ),
) -> None:
    """Run the whole system on a simulated marketplace and write <home>/report.html.

    Simulates buyers, merchants, orders, refunds, reviews, NPS and experiments into the
    warehouse; compares its figures with competitors simulated at its own scale; analyses the
    scenario's A/B test; replays a batch of refund decisions under two shipped policies; runs
    the last days through the refund service into the store (orders, refunds, appeals, a review
    queue); steps the scenario's horse race; names approvers with API keys (written to
    <home>/demo-keys.txt), a goal revised by decision and a decision waiting for a vote.
    """
    from tianping.cli.common import settings_of
    from tianping.demo import FULL, SMALL, DemoOptions, run_demo

    sizes = SMALL if small else FULL
    options = DemoOptions(
        buyers=sizes["buyers"] if buyers is None else buyers,
        days=sizes["days"] if days is None else days,
        seed=seed,
        rebuild=rebuild,
        store_days=sizes["store_days"],
    )
    settings = settings_of(ctx)
    settings.check_warehouse(write=True)  # a mistyped folder is an error, not a new database
    settings.check_store(write=True)
    with _progress() as progress:
        run = run_demo(settings, options, progress=progress)
    _print_summary(run)


class _Bars:
    """Rich progress bars: one over the demo's steps, one over the simulated buyers."""

    def __init__(self, bar, steps: int):
        self.bar = bar
        self.steps = bar.add_task("demo", total=steps)
        self.buyers = None
        self.current = None

    def step(self, name: str, title: str) -> None:
        if self.current is not None:
            self.bar.advance(self.steps)
        self.current = name
        self.bar.update(self.steps, description=title)
        if name == "simulate":
            self.buyers = self.bar.add_task("buyers simulated", total=None)

    def simulated(self, done: int, total: int) -> None:
        if self.buyers is not None:
            self.bar.update(self.buyers, completed=done, total=total)

    def finish(self) -> None:
        self.bar.update(self.steps, completed=self.bar.tasks[0].total, description="done")


class _progress:
    def __enter__(self) -> _Bars:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from tianping.cli.common import err_console
        from tianping.demo import STEPS

        columns = (
            TextColumn("{task.description:<32}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        self.progress = Progress(*columns, console=err_console, transient=True)
        self.progress.__enter__()
        self.bars = _Bars(self.progress, len(STEPS))
        return self.bars

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.bars.finish()
        self.progress.__exit__(*exc)


def _print_summary(run) -> None:
    from tianping.cli.common import console, render_rows
    from tianping.report.html import HEADLINE, fmt

    o, t = run.options, run.truth
    console.print(
        f"[bold]tianping demo[/bold]: {o.buyers:,} buyers, {t['merchants']:,} merchants, "
        f"{o.days} days ({run.start} to {run.end}), seed {o.seed}: "
        f"{run.rows['orders']:,} orders simulated in {run.seconds['simulate']:.1f} s"
    )
    render_rows([{"metric": label, "value": fmt(run.headline.get(key), kind)}
                 for key, label, kind in HEADLINE], "table", title="headline metrics")  # fmt: skip
    _print_market(run.market)
    _print_experiment(run.experiment)
    _print_refunds(run.refunds)
    _print_store(run.store)
    _print_race(run.race)
    _print_people(run.people)
    for title, _ in run.not_yet:
        console.print(f"[dim]{title}: not in the demo yet (the report says why).[/dim]")
    path = run.report_path.resolve()
    console.print(
        f"\nreport: [bold]{path}[/bold]\nopen it in any browser, e.g. `xdg-open {path}` (Linux) or `open {path}` (macOS)"
    )
    if importlib.util.find_spec("tianping.cli.serve") is not None:
        _print_sign_in(run)


def _print_store(store: dict) -> None:
    from tianping.cli.common import console

    decided = ", ".join(f"{n} {a.replace('_', ' ')}" for a, n in sorted(store["decided"].items(),
                                                                       key=lambda x: -x[1]))  # fmt: skip
    packets = ", ".join(f"{n} {k}" for k, n in sorted(store["packets"].items())) or "none"
    console.print(
        f"in the store since {store['since']} (through the refund service): {store['orders']:,} "
        f"orders, {store['requests']:,} refund requests decided {decided}; "
        f"{store['queue']} waiting for a reviewer; red packets given back: {packets}"
    )
    fund = store.get("fund")
    if fund:
        from tianping.report.figures import money

        cur = fund["currency"]
        console.print(
            f"merchant protection fund: filled by decision #{fund['decision']}; "
            f"{fund['payouts']} upheld appeal(s) paid {money(fund['paid_out_minor'], cur, minor=True)}"
            f", {money(fund['balance_minor'], cur, minor=True)} left "
            "(tianping ledger fund show)",
            highlight=False,
        )


def _print_people(people) -> None:
    from tianping.cli.common import console

    if people is None:
        return
    names = ", ".join(k["name"] for k in people.keys if k["role"] != "merchant")
    console.print(f"people: {names}; approvers decide two of three")
    for d in people.decisions:
        console.print(f"  decision #{d['id']} {d['title']}: {d['status']} "
                      f"({d['approvals']} of {d['required']} approvals)")  # fmt: skip
    g = people.goal
    console.print(
        f"  goal {g['name']}: {g['first']:g} raised to {g['raised']:g} by decision #{g['decision']}"
    )


def _print_sign_in(run) -> None:
    from tianping.cli.common import console

    home, people = run.settings.home, run.people
    admin = next((k for k in (people.keys if people else []) if k["role"] == "admin"), None)
    if admin is None:
        console.print(f"dashboard and API: `tianping --home {home} keys create --role admin` prints "
                      f"a key, then `tianping --home {home} serve`")  # fmt: skip
        return
    console.print(
        f"dashboard and API: `tianping --home {home} serve`, then sign in at "
        f"http://127.0.0.1:8000/dashboard with {admin['name']}'s key ({admin['role']}):\n"
        f"  {admin['key']}\nevery demo key (approvers, analyst, a merchant) is in "
        f"{people.keys_file}; the API's own pages are at /docs",
        soft_wrap=True,
    )


def _print_market(market: dict) -> None:
    from tianping.cli.common import console
    from tianping.report.html import fmt

    console.print(
        f"market {market['period']} (competitors simulated at our scale, "
        f"{market['file'].name}): our data {market['covered_days']} of {market['period_days']} days"
    )
    for c in market["comparisons"]:
        against = ", ".join(f"{g['platform']} {fmt(g['value'], 'big')}" for g in c["competitors"])
        if not c["comparable"]:
            console.print(f"  {c['metric']} {fmt(c['ours'], 'big')}: not compared ({c['basis']})")
            continue
        console.print(
            f"  {c['metric']} {fmt(c['ours'], 'big')}: share {fmt(c['share'], 'share')}, "
            f"rank {c['rank']}/{c['platforms']} against {against}"
        )


def _print_experiment(experiment: dict) -> None:
    from tianping.cli.common import console
    from tianping.report.html import experiment_context, fmt

    view = experiment_context(experiment)
    console.print(f"A/B test {experiment['name']}: [bold]{view['recommendation']}[/bold]")
    for r in view["rows"]:
        if r["role"] == "primary" or r["truth"] is not None:
            truth = "" if r["truth"] is None else f"; true lift {fmt(r['truth'], 'pct')}"
            console.print(
                f"  {r['metric']} ({r['role']}): lift {fmt(r['lift'], 'pct')} "
                f"[{fmt(r['lower'], 'pct')} … {fmt(r['upper'], 'pct')}], relative p {r['pvalue']:.3g}{truth}"
            )


def _print_refunds(refunds: dict) -> None:
    from tianping.cli.common import console

    console.print(
        f"refund decisions replayed: {refunds['requests']:,} requests of the last 30 days"
    )
    for o in refunds["outcomes"]:
        loss = (
            "" if o.abuse_loss_minor is None else f", abuse loss ¥{o.abuse_loss_minor / 100:,.2f}"
        )
        console.print(
            f"  {o.policy_name}: {o.auto_decision_rate:.1%} decided automatically, "
            f"¥{o.refunded_total_minor / 100:,.2f} refunded{loss}"
        )


def _print_race(race: dict) -> None:
    from tianping.cli.common import console

    chances = ", ".join(
        f"{s['arm']} {s['p_best']:.0%}" + ("" if s["active"] else " (eliminated)")
        for s in race["standings"]
    )
    console.print(
        f"horse race {race['name']} after {race['steps']} steps: leader {race['leader']} "
        f"(truly best: {race['true_best']}); chance best: {chances}"
    )
