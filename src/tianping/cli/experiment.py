"""``tianping experiment``: definitions, SDK snapshot, analysis and A/A checks."""

from __future__ import annotations

from pathlib import Path

import typer

experiment_app = typer.Typer(
    no_args_is_help=True,
    help="Experiments: create from YAML, list, show, export, start/stop, snapshot for SDKs, "
    "analyze from the warehouse, and A/A checks (docs/experiments.md).",
)


def register(app: typer.Typer) -> None:
    """Add the ``tianping experiment …`` command group to the root command (called once at start-up)."""
    app.add_typer(experiment_app, name="experiment")


def _read(path: Path) -> str:
    from tianping.errors import UsageError

    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}", field=str(path)) from None


@experiment_app.command("create")
def create(ctx: typer.Context, file: Path = typer.Argument(..., help="Definition (YAML).")) -> None:
    """Store an experiment defined in a YAML file."""
    from tianping.cli.common import console, store_session
    from tianping.experiments import service

    spec = service.load_yaml(_read(file), source=str(file))
    with store_session(ctx) as session:
        row = service.create(spec, session=session)
        console.print(f"created experiment [bold]{row.name}[/] ({row.status})")


@experiment_app.command("list")
def list_(
    ctx: typer.Context,
    status: str | None = typer.Option(None, help="draft | running | stopped"),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """List experiments."""
    from tianping.cli.common import check_format, render_rows, store_session
    from tianping.experiments import service

    check_format(fmt)
    with store_session(ctx, write=False) as session:
        rows = [_summary(r) for r in service.list_all(session=session, status=status)]
    render_rows(
        rows,
        fmt,
        title="experiments",
        empty="no experiments yet: `tianping experiment create FILE.yaml` (docs/experiments.md)",
    )


def _summary(row) -> dict:
    return {
        "name": row.name,
        "status": row.status,
        "primary_metric": row.primary_metric,
        "variants": ", ".join(v["name"] for v in row.variants),
        "traffic": row.traffic,
        "layer": row.layer,
        "start_date": row.start_date,
        "end_date": row.end_date,
    }


@experiment_app.command("show")
def show(
    ctx: typer.Context,
    name: str,
    fmt: str = typer.Option("yaml", "--format", help="yaml (default) | json | table | csv"),
) -> None:
    """Print an experiment's definition."""
    from tianping.cli.common import dumps_json, render_rows, store_session
    from tianping.errors import UsageError
    from tianping.experiments import service

    if fmt not in ("yaml", "json", "table", "csv"):
        raise UsageError(f"unknown format {fmt!r}; use yaml, json, table or csv", field="format")
    with store_session(ctx, write=False) as session:
        row = service.get_or_raise(name, session=session)
        spec, status = service.spec_of(row), row.status
    if fmt == "yaml":
        typer.echo(service.dump_yaml(spec), nl=False)
        return
    data = {**spec.model_dump(mode="json"), "status": status}
    if fmt == "json":
        typer.echo(dumps_json(data))
        return
    shown = {
        k: ", ".join(_short_item(x) for x in v) if isinstance(v, list) else v
        for k, v in data.items()
    }
    render_rows([{"field": k, "value": "—" if v is None else str(v)} for k, v in shown.items()],
                fmt, title=name)  # fmt: skip


def _short_item(item) -> str:
    if isinstance(item, dict):
        return " ".join(f"{k}={v}" for k, v in item.items())
    return str(item)


@experiment_app.command("export")
def export(
    ctx: typer.Context,
    name: str,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write here instead of stdout."
    ),
) -> None:
    """Export an experiment as YAML that `create` reads back."""
    from tianping.cli.common import store_session
    from tianping.experiments import service

    with store_session(ctx, write=False) as session:
        text = service.dump_yaml(service.spec_of(service.get_or_raise(name, session=session)))
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@experiment_app.command("start")
def start(ctx: typer.Context, name: str) -> None:
    """Set an experiment running (checks its layer range against running experiments)."""
    _set_status(ctx, name, "running")


@experiment_app.command("stop")
def stop(ctx: typer.Context, name: str) -> None:
    """Stop an experiment."""
    _set_status(ctx, name, "stopped")


def _set_status(ctx: typer.Context, name: str, status: str) -> None:
    from tianping.cli.common import console, store_session
    from tianping.experiments import service

    with store_session(ctx) as session:
        service.set_status(name, status, session=session)
    console.print(f"experiment [bold]{name}[/] is {status}")


@experiment_app.command("snapshot")
def snapshot(
    ctx: typer.Context,
    holdout: float = typer.Option(0.0, help="Global holdout fraction, e.g. 0.05."),
    holdout_salt: str = typer.Option("global-holdout", help="Salt of the holdout draw."),
) -> None:
    """Print the JSON snapshot of running experiments that `tianping.Client` assigns from."""
    from tianping.cli.common import store_session
    from tianping.experiments import service
    from tianping.experiments.assignment import Holdout

    hold = Holdout(holdout_salt, holdout) if holdout > 0 else None
    with store_session(ctx, write=False) as session:
        snap = service.snapshot(session=session, holdout=hold)
    typer.echo(snap.to_json())


@experiment_app.command("analyze")
def analyze(
    ctx: typer.Context,
    name: str,
    slice_by: str | None = typer.Option(
        None, "--slice-by", help="Also analyse the primary metric per buyer_type or category."
    ),
    fmt: str = typer.Option("table", "--format", help="table | json | csv | html"),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here, not stdout."),
) -> None:
    """Analyse an experiment on the warehouse: effects, intervals, SRM, guardrails, decision."""
    from tianping.cli.common import dumps_json, render_rows, store_session, warehouse_of
    from tianping.errors import UsageError
    from tianping.experiments import service
    from tianping.races.service import weight_schedule

    if fmt not in ("table", "json", "csv", "html"):
        raise UsageError(f"unknown format {fmt!r}; use table, json, csv or html", field="format")
    with store_session(ctx, write=False) as session:
        service.get_or_raise(name, session=session)  # an unknown name before a missing warehouse
        with warehouse_of(ctx) as wh:
            report = service.analyze_experiment(
                name, session=session, warehouse=wh, slice_by=slice_by,
                weight_history=weight_schedule,
            )  # fmt: skip
    if fmt == "table":
        _print_report(report.to_dict())
        return
    if fmt == "csv":
        render_rows(_comparison_rows(report.to_dict()), "csv")
        return
    if fmt == "json":
        text = dumps_json(report.to_dict()) + "\n"
    else:
        from tianping.experiments.html import render_html

        text = render_html(report.to_dict())
    _emit(text, output)


def _emit(text: str, output: Path | None) -> None:
    from tianping.errors import UsageError

    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}", field="output") from None


def _interval(c: dict, relative: bool) -> str:
    if relative:
        lo, hi = c["rel_effect_size_ci_lower"], c["rel_effect_size_ci_upper"]
        return f"{_cell(lo, '%')} .. {_cell(hi, '%')}"
    return f"{_cell(c['effect_size_ci_lower'], 'g')} .. {_cell(c['effect_size_ci_upper'], 'g')}"


def _comparison_rows(r: dict) -> list[dict]:
    """One row per metric and arm: the report's comparisons, flat (for CSV)."""
    rows = []
    for m in r["metrics"]:
        base = {"metric": m["metric"], "role": m["role"], "error": m["error"]}
        for c in m["comparisons"] or [{}]:
            flat = {k: v for k, v in c.items() if not isinstance(v, dict | list)}
            rows.append({**base, **flat})
    return rows


def _print_report(r: dict) -> None:
    from tianping.cli.common import console, print_table
    from tianping.experiments.report import cupac_note

    console.print(
        f"[bold]{r['experiment']}[/] {r['window']['start']} .. {r['window']['end']} · "
        f"{r['method']} · alpha {r['alpha']:g} · {r['correction']} · "
        f"CUPED {'on' if r['cuped'] else 'off'}"
        + (" · CUPAC on" if r.get("cupac") else "")
        + (
            " · alpha split " + ", ".join(f"{g} {a:.4g}" for g, a in r["alpha_split"].items())
            if r.get("alpha_split")
            else ""
        )
    )
    arms = ", ".join(f"{a['name']} {a['units']:,}" for a in r["arms"])
    srm = "" if r["srm_pvalue"] is None else f" · SRM p = {r['srm_pvalue']:.3g}"
    if r["srm_pvalue"] is not None and r.get("srm_windows"):
        srm += f" (against the weights in force over {len(r['srm_windows'])} windows)"
    console.print(f"units: {arms}{srm}")
    if cupac_note(r):
        console.print(cupac_note(r))
    bayes = r["method"] == "bayesian"
    interval = f"{1 - r['alpha']:.0%} interval"
    if r.get("alpha_split"):  # each group's intervals are at its own share of alpha
        interval = "interval (1 - group alpha)"
    decides = "P(win)" if bayes else "p (decides)"
    rows = []
    for m in r["metrics"]:
        label = f"{m['metric']} ({m['role'][0]})"
        if m["error"]:
            rows.append({"metric": label, "arm": "—", "control": None, "arm value": None,
                         "lift": None, interval: m["error"], decides: None, "abs. p": None,
                         "note": "error"})  # fmt: skip
            continue
        adjusted = m["role"] != "guardrail"
        for c in m["comparisons"]:
            note = "better" if c["treatment"] in m["significant_improvement_in"] else ""
            note = "hurt" if c["treatment"] in m["guardrail_hurt_in"] else note
            relative = c.get("scale", "relative") == "relative"
            decision_p = _cell(c.get("decision_pvalue"), "p") + ("" if relative else " (abs.)")
            rows.append({
                "metric": label, "arm": c["treatment"], "control": _cell(c["control_mean"], "g"),
                "arm value": _cell(c["treatment_mean"], "g"), "lift": _cell(c["rel_effect_size"], "%"),
                interval: _interval(c, relative),
                decides: _cell(c.get("chance_to_win"), "%") if bayes else decision_p,
                "abs. p": _cell(c["pvalue_adjusted" if adjusted else "pvalue"], "p"),
                "note": note,
            })  # fmt: skip
    print_table(rows, list(rows[0]) if rows else [])
    console.print(
        "(p) primary, (s) secondary, (g) guardrail; lift = arm / control - 1; verdicts use the "
        "relative scale (its p-value and interval), p adjusted except for guardrails; note: "
        "better = significant improvement, hurt = guardrail significantly worse"
    )
    _print_slices(r.get("slices") or {})
    run = r.get("runtime")
    if run:
        console.print(
            f"runtime: {run['units_needed']:,} units to detect {run['rel_mde']:+.1%} on "
            f"{run['metric']} with {run['power']:.0%} power; at {run['units_per_day']:,.0f} "
            f"units/day that is {run['days_needed']} days ({run['days_so_far']} so far, "
            f"{run['days_left']} left)"
        )
    for w in r["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")
    _print_rule(r)
    colour = "green" if r["recommendation"].startswith("ship") else "red"
    console.print(f"[bold {colour}]{r['recommendation']}[/]: " + "; ".join(r["reasons"]))


_GATE_COLOUR = {"pass": "green", "fail": "red", "warn": "yellow", "n/a": "dim"}


def _print_rule(r: dict) -> None:
    """The rule (version, frozen, changes), one line per health gate, and the rule's tests."""
    from tianping.cli.common import console, print_table

    rule = r.get("rule")
    if not rule:
        return
    frozen = rule.get("frozen_at")
    console.print(
        f"rule {rule['version']} · "
        + (f"frozen at start {frozen[:16]} UTC" if frozen else "not frozen yet (draft)")
        + f" · success alpha {rule['alpha_success']:g}, guardrail alpha "
        f"{rule['alpha_guardrails']:g} (one-sided) · power {rule['power']:.0%}"
    )
    for c in rule.get("changes") or []:
        console.print(
            f"[yellow]rule changed after start[/] {c['at'][:16]} UTC "
            f"({c['before']} -> {c['after']}): {c['reason']}"
        )
    for g in r.get("health", []):
        colour = _GATE_COLOUR.get(g["status"], "white")
        console.print(f"health {g['gate']}: [{colour}]{g['status']}[/] {g['detail']}")
    rows = []
    for t in r.get("rule_tests", []):
        kind = "%" if t["scale"] == "relative" else "g"
        rows.append({
            "arm": t["treatment"], "metric": t["metric"], "role": t["role"],
            "improvement": _cell(t["improvement"], kind), "bound": _cell(t["bound"], kind),
            "threshold": _cell(t["threshold"], kind), "alpha": f"{t['alpha']:.3g}",
            "result": "worse" if t["worse"] else ("pass" if t["passed"] else "not shown"),
        })  # fmt: skip
    if rows:
        print_table(rows, list(rows[0]), title="the rule's tests (one-sided bound > threshold)")
    for t in r.get("interactions") or []:
        said = "[red]interaction[/]" if t["flagged"] else "none found"
        console.print(
            f"interaction: {t['first']}'s {t['metric']} by {t['second']}'s arm "
            f"({' x '.join(t['contrast'])}): {t['estimate']:+.4g}, p = {t['pvalue']:.3g}, "
            f"q = {t['qvalue']:.3g} over {t['units']:,} units: {said}"
        )


def _print_slices(slices: dict) -> None:
    from tianping.cli.common import console, print_table

    for metric, per_slice in (slices.get("metrics") or {}).items():
        if "error" in per_slice:
            console.print(f"[red]{metric} by {slices.get('by')}: {per_slice['error']}[/]")
            continue
        rows = []
        for value, analysis in per_slice.items():
            n = {a["name"]: a["n"] for a in analysis["arms"]}
            for c in analysis["comparisons"]:
                rows.append({
                    "slice": value, "arm": c["treatment"], "n": f"{n.get(c['treatment'], 0):,}",
                    "lift": _cell(c["rel_effect_size"], "%"),
                    "interval": f"{_cell(c['rel_effect_size_ci_lower'], '%')} .. "
                    f"{_cell(c['rel_effect_size_ci_upper'], '%')}",
                    "rel. p": _cell(c.get("rel_pvalue"), "p"),
                    "rel. p adj.": _cell(c.get("rel_pvalue_adjusted"), "p"),
                })  # fmt: skip
        strat = (slices.get("post_stratified") or {}).get(metric) or {}
        for c in strat.get("comparisons", []):
            rows.append({
                "slice": "post-stratified", "arm": c["treatment"], "n": "all",
                "lift": _cell(c["rel_effect_size"], "%"),
                "interval": f"{_cell(c['rel_effect_size_ci_lower'], '%')} .. "
                f"{_cell(c['rel_effect_size_ci_upper'], '%')}",
                "rel. p": _cell(c.get("rel_pvalue"), "p"),
                "rel. p adj.": _cell(c.get("rel_pvalue_adjusted"), "p"),
            })  # fmt: skip
        if rows:
            print_table(rows, list(rows[0]), title=f"{metric} by {slices.get('by')}")


def _cell(value, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "%":
        return f"{value:+.2%}"
    if kind == "p":
        return f"{value:.3g}"
    return f"{value:.4g}"


@experiment_app.command("plan")
def plan(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Experiment name."),
    start: str | None = typer.Option(None, "--from", help="First baseline day (default: 28 days to --to)."),
    end: str | None = typer.Option(None, "--to", help="Last baseline day (default: last order day)."),
    daily_units: float | None = typer.Option(None, help="Expected units per day (default: the history's)."),
    fmt: str = typer.Option("table", "--format", help="table | json"),
) -> None:  # fmt: skip
    """Size the experiment for its whole decision rule: units and days at the expected traffic."""
    from tianping.cli.common import (
        check_format,
        console,
        dumps_json,
        print_table,
        store_session,
        warehouse_of,
    )
    from tianping.cli.metrics import parse_day
    from tianping.experiments import service

    check_format(fmt)
    with store_session(ctx, write=False) as session, warehouse_of(ctx) as wh:
        out = service.plan(name, session=session, warehouse=wh, first=parse_day(start, "--from"),
                           last=parse_day(end, "--to"), daily_units=daily_units).to_dict()  # fmt: skip
    if fmt == "json":
        typer.echo(dumps_json(out))
        return
    rows = [{"metric": x["metric"], "role": x["role"],
             "effect / margin": (f"{x['effect']:.2%}" if x["scale"] == "relative"
                                 else f"{x['effect']:.4g} (absolute)"),
             "alpha (one-sided)": f"{x['alpha']:.3g}", "power": f"{x['power']:.1%}",
             "units": f"{x['units']:,}"} for x in out["lines"]]  # fmt: skip
    print_table(rows, list(rows[0]), title=f"{name}: rule {out['rule_version']}")
    days = "never at this traffic" if out["days"] is None else f"{out['days']:,} days"
    console.print(
        f"the rule needs {out['units']:,} units ({out['tests_to_pass']} tests must all pass, "
        f"power {out['power']:.0%} for the whole rule; set by {out['binding']}); at "
        f"{out['units_per_day']:,.0f} units/day (share {out['traffic_share']:.0%} of new buyers, "
        f"baseline {out['baseline_window']['start']} .. {out['baseline_window']['end']}): {days}",
        soft_wrap=True,
    )


@experiment_app.command("interactions")
def interactions_(
    ctx: typer.Context,
    fdr: float = typer.Option(0.05, help="False-discovery rate across the pairs."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Screen every pair of overlapping experiments for interactions (Benjamini-Hochberg)."""
    from tianping.cli.common import check_format, render_rows, store_session, warehouse_of
    from tianping.experiments import service

    check_format(fmt)
    with store_session(ctx, write=False) as session, warehouse_of(ctx) as wh:
        rows = [t.to_dict() for t in service.interactions(session=session, warehouse=wh, fdr=fdr)]
    for row in rows:
        row["contrast"] = " x ".join(row["contrast"])
        if fmt == "table":  # figures as the report and the dashboard show them
            row.update(_people_figures(row))
    render_rows(rows, fmt, title="interactions",
                empty="no two experiments overlap in time and units")  # fmt: skip


def _people_figures(row: dict) -> dict:
    """An interaction row's numbers as the HTML report shows them (JSON and CSV stay exact)."""

    def some(v, spec):
        return "—" if v is None else format(v, spec)

    return {
        "units": some(row.get("units"), ","),
        "estimate": some(row.get("estimate"), "+.4g"),
        "relative": some(row.get("relative"), "+.2%"),
        "pvalue": some(row.get("pvalue"), ".3g"),
        "qvalue": some(row.get("qvalue"), ".3g"),
    }


@experiment_app.command("decide")
def decide(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Experiment name."),
    actor: str = typer.Option(
        ..., "--actor", envvar="TIANPING_ACTOR", help="Who proposes (env TIANPING_ACTOR)."
    ),
) -> None:
    """Apply the experiment's decision rule; when it says ship, propose the ship decision
    (never approve it) with the report frozen as evidence."""
    from tianping.cli.common import console, store_session, warehouse_of
    from tianping.governance.verdicts import propose_ship

    with store_session(ctx) as session, warehouse_of(ctx) as wh:
        out = propose_ship(name, session=session, warehouse=wh, actor=actor)
        d = out.decision
        if d is None:
            console.print(f"{out.verdict}: nothing proposed. " + "; ".join(out.reasons),
                          soft_wrap=True)  # fmt: skip
        elif out.created:
            console.print(
                f"the rule says ship {d.payload['variant']}: decision #{d.id} proposed, needs "
                f"{d.required} of {', '.join(d.approvers)}; the report is frozen as evidence",
                soft_wrap=True,
            )
        else:
            console.print(f"the rule says ship {d.payload['variant']}: decision #{d.id} is "
                          "already pending", soft_wrap=True)  # fmt: skip


@experiment_app.command("rule")
def rule(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Experiment name."),
    file: Path = typer.Argument(..., help="YAML with the new rule (the `rule:` mapping)."),
    reason: str = typer.Option("", help="Why the rule changes (required once it started)."),
) -> None:
    """Replace an experiment's decision rule; after the start this is an audited change
    shown on every report."""
    from tianping.cli.common import console, store_session
    from tianping.experiments import service

    data = service.read_yaml(_read(file), source=str(file))
    if isinstance(data, dict) and set(data) == {"rule"}:
        data = data["rule"]
    with store_session(ctx) as session:
        row = service.change_rule(name, data, reason=reason, session=session, source=str(file))
        version = service.decision_rule_of(row).version
        frozen = row.rule_frozen_at is not None
    console.print(f"rule of {name} is now {version}" + (" (change recorded)" if frozen else ""))


@experiment_app.command("aa")
def aa(
    ctx: typer.Context,
    metric: str = typer.Option(..., "--metric", help="A metric, e.g. gmv, conversion, aov."),
    splits: int = typer.Option(1000, help="Random 50/50 splits to analyse."),
    start: str | None = typer.Option(None, "--from", help="First day (default: 28 days to --to)."),
    end: str | None = typer.Option(None, "--to", help="Last day (default: last order day)."),
    alpha: float = typer.Option(0.05, help="Significance level."),
    seed: str = typer.Option("0", help="Seed of the splits' salts."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """A/A check on historical data: false-positive rate and p-value distribution."""
    from tianping.cli.common import check_format, dumps_json, render_rows, warehouse_of
    from tianping.cli.metrics import parse_day
    from tianping.experiments.aa import default_window, run_aa

    check_format(fmt)
    with warehouse_of(ctx) as wh:
        first, last = default_window(wh, parse_day(start, "--from"), parse_day(end, "--to"))
        result = run_aa(wh, metric, first, last, splits=splits, alpha=alpha, seed=seed)
    if fmt == "json":
        typer.echo(dumps_json(result.to_dict()))
    elif fmt == "csv":
        hist = result.to_dict()["pvalue_histogram"]
        render_rows([{"p_from": i / 10, "p_to": (i + 1) / 10, "splits": n} for i, n in
                     enumerate(hist)], "csv")  # fmt: skip
    else:
        _print_aa(result.to_dict())


def _print_aa(r: dict) -> None:
    from tianping.cli.common import console

    ok = "[green]consistent with alpha[/]" if r["consistent"] else "[red]NOT consistent[/]"
    console.print(
        f"A/A on [bold]{r['metric']}[/], {r['window']['start']} .. {r['window']['end']}: "
        f"{r['units']:,} units, {r['splits']} splits"
    )
    console.print(
        f"false-positive rate {r['false_positive_rate']:.2%} at alpha {r['alpha']:g} "
        f"(95% CI {r['fpr_ci_lower']:.2%} .. {r['fpr_ci_upper']:.2%}) · "
        f"KS uniformity p = {r['ks_pvalue']:.3g} · CI coverage of 0: {r['ci_coverage']:.1%} · {ok}"
    )
    top = max(r["pvalue_histogram"]) or 1
    for i, count in enumerate(r["pvalue_histogram"]):
        bar = "█" * round(40 * count / top)
        console.print(f"p {i / 10:.1f}-{(i + 1) / 10:.1f} {count:6d} {bar}")
