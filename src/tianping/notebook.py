"""The notebook API: every question the CLI answers, as a pandas DataFrame.

``import tianping as tp`` and call ``tp.headline_metrics(grain="month")``, ``tp.market_comparison()``,
``tp.experiment("checkout_red_packet")``... Each function is the library call the CLI and the
dashboard make (the same window, grain and defaults), so a notebook shows the numbers they
show. Frames hold plain Python/NumPy values: money as ``float`` in major units (yuan), days
and times as ``pandas.Timestamp`` (times in UTC), counts as integers, missing values as NaN;
never ``Decimal`` or ``date``. What a frame does not hold as rows (a recommendation, the
period compared) is in ``frame.attrs``.

Where the data lives is chosen as the CLI chooses it: ``home``, ``warehouse`` and ``store``
keywords (the CLI's ``--home``, ``--warehouse``, ``--store``), else ``TIANPING_*`` environment
variables, else ``tianping.toml`` in the working directory, else ``./.tianping``; or pass a
ready :class:`~tianping.settings.Settings` as ``settings``. See docs/notebook.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from tianping.settings import Settings, load_settings

__all__ = [
    "bridge",
    "experiment",
    "explain",
    "headline_metrics",
    "market_comparison",
    "market_periods",
    "movers",
    "policy_replay",
    "race",
    "race_steps",
    "settings_of",
    "why",
]


def settings_of(
    settings: Settings | None = None,
    *,
    home: str | Path | None = None,
    warehouse: str | None = None,
    store: str | None = None,
    sources: str | Path | None = None,
    calendar: str | Path | None = None,
) -> Settings:
    """The settings a function uses: ``settings`` as given, else the CLI's resolution of
    ``home``/``warehouse``/``store``/``sources``/``calendar`` (then ``TIANPING_*``,
    ``tianping.toml``, ``./.tianping``). ``sources`` names a sources file: your own tables, read
    in place; ``calendar`` a calendar file: your campaigns."""
    if settings is not None:
        return settings
    return load_settings(
        {
            "home": home,
            "warehouse": warehouse,
            "store": store,
            "sources": None if sources is None else str(sources),
            "calendar": None if calendar is None else str(calendar),
        }
    )


def headline_metrics(
    grain: str = "day",
    start: str | date | None = None,
    end: str | date | None = None,
    by: str | None = None,
    *,
    settings: Settings | None = None,
    home: str | Path | None = None,
    warehouse: str | None = None,
    store: str | None = None,
    sources: str | Path | None = None,
) -> pd.DataFrame:
    """Headline metrics per period, as ``tianping metrics --grain G --from --to --by`` prints.

    One row per period (and ``by`` value): ``period`` (the period's first day), then GMV,
    orders, buyers, AOV, DAC, DAU, new buyers, packages, door-delivery rate, refund rates,
    review score, NPS and 30-day repurchase (docs/metrics.md).

    Args:
        grain: ``day``, ``week``, ``month`` or ``year``.
        start, end: first and last day, inclusive (``YYYY-MM-DD``, ``YYYY-MM``, ``YYYY`` or a
            date); default: the data's range.
        by: an orders column to slice by, e.g. ``category``.
    """
    from tianping.metrics.service import compute_metrics

    with _warehouse(
        settings_of(settings, home=home, warehouse=warehouse, store=store, sources=sources)
    ) as wh:
        rows = compute_metrics(wh, grain, _day(start, "start"), _day(end, "end"), by)
    return frame(rows)


def explain(
    start: str | date,
    end: str | date,
    grain: str = "month",
    by: str = "category",
    top: int = 10,
    *,
    settings: Settings | None = None,
    home: str | Path | None = None,
    warehouse: str | None = None,
    store: str | None = None,
    sources: str | Path | None = None,
) -> pd.DataFrame:
    """Why GMV moved between the period containing ``start`` and the one containing ``end``:
    ``tianping metrics explain``'s contributions, one row per factor (``buyers``,
    ``orders_per_buyer``, ``aov``) with its value before and after and its contribution (yuan;
    they sum to the change). ``attrs``: both periods, GMV before and after, the change and
    the method; :func:`movers` ranks the values of ``by``."""
    result, _, before, after = _explain(start, end, grain, by, top,
                                        settings_of(settings, home=home, warehouse=warehouse,
                                                    sources=sources,
                                                    store=store))  # fmt: skip
    out = frame(
        {"factor": k, "before": result.before.factors[k], "after": result.after.factors[k],
         "contribution": v}
        for k, v in result.contributions.items()
    )  # fmt: skip
    out.attrs.update(
        before=[_plain(d) for d in before], after=[_plain(d) for d in after],
        gmv_before=result.before.gmv, gmv_after=result.after.gmv, change=result.change,
        method=result.method,
    )  # fmt: skip
    return out


def movers(
    start: str | date,
    end: str | date,
    grain: str = "month",
    by: str = "category",
    top: int = 10,
    *,
    settings: Settings | None = None,
    home: str | Path | None = None,
    warehouse: str | None = None,
    store: str | None = None,
    sources: str | Path | None = None,
) -> pd.DataFrame:
    """The values of ``by`` that moved GMV most between the two periods of :func:`explain`:
    ``value``, ``gmv_before``, ``gmv_after``, ``change``, ``share_of_change``."""
    _, found, _, _ = _explain(start, end, grain, by, top,
                              settings_of(settings, home=home, warehouse=warehouse, store=store, sources=sources))  # fmt: skip
    return frame(
        {"value": m.value, "gmv_before": m.gmv_before, "gmv_after": m.gmv_after,
         "change": m.change, "share_of_change": m.share_of_change}
        for m in found
    )  # fmt: skip


def why(
    start: str | date,
    end: str | date,
    grain: str = "month",
    dimensions: Iterable[str] = ("category", "channel", "delivery_mode", "buyer_type"),
    depth: int = 3,
    alpha: float = 0.05,
    top: int = 10,
    *,
    settings: Settings | None = None,
    home: str | Path | None = None,
    warehouse: str | None = None,
    store: str | None = None,
) -> pd.DataFrame:
    """The segments that moved GMV between the period containing ``start`` and the one
    containing ``end``, as ``tianping metrics why`` lists them: one row per cause (``segment``,
    GMV before and after, ``volume``, ``mix``, ``rate``, ``own`` = mix + rate with its interval
    ``own_low``..``own_high``, ``explanatory_power``; yuan). ``attrs``: both periods, the
    change, the segments tested and the critical value of the noise floor."""
    from tianping.metrics.periods import period_end, period_start
    from tianping.metrics.why import cause_rows, explain_segments

    a, b = _day(start, "start"), _day(end, "end")
    if a is None or b is None:
        from tianping.errors import UsageError

        raise UsageError("why needs a start and an end day", field="start")
    before = (period_start(a, grain), period_end(period_start(a, grain), grain))
    after = (period_start(b, grain), period_end(period_start(b, grain), grain))
    chosen = settings_of(settings, home=home, warehouse=warehouse, store=store)
    with _warehouse(chosen) as wh:
        found = explain_segments(wh, before, after, tuple(dimensions), depth=depth,
                                 alpha=alpha, top=top)  # fmt: skip
        rows, unit = cause_rows(found, wh.scale), 10**wh.scale
    out = frame(rows)
    out.attrs.update(
        before=[_plain(d) for d in before], after=[_plain(d) for d in after],
        gmv_before=found.gmv_before / unit, gmv_after=found.gmv_after / unit,
        change=found.change / unit, segments_tested=found.tested, critical=found.critical,
    )  # fmt: skip
    return out


def bridge(
    start: str | date,
    end: str | date,
    grain: str = "month",
    metric: str = "gmv",
    holdout: float = 0.0,
    holdout_salt: str = "global-holdout",
    *,
    settings: Settings | None = None,
    home: str | Path | None = None,
    warehouse: str | None = None,
    store: str | None = None,
    calendar: str | Path | None = None,
) -> pd.DataFrame:
    """A metric's change from the period containing ``start`` to the one containing ``end``,
    split as ``tianping metrics bridge`` splits it: one row per part (``kind``, ``part``,
    ``amount`` in yuan, ``amount_minor`` exact, ``evidence`` (text), ``evidence_items`` (``kind``, ``ref``, ``label`` each), ``note``), the
    residual last; the amounts add up to the change exactly. ``attrs``: both periods, their
    values, the change and the notes. ``holdout``: the global holdout's share of buyers, to
    measure shipped experiments against (0: not measured)."""
    from tianping.attribution.service import bridge_rows, bridge_summary, change_bridge
    from tianping.errors import UsageError
    from tianping.experiments.assignment import Holdout
    from tianping.metrics.calendar import load_calendar
    from tianping.metrics.periods import check_grain, period_end, period_start

    a, b = _day(start, "start"), _day(end, "end")
    if a is None or b is None:
        raise UsageError("bridge needs a start and an end day", field="start")
    check_grain(grain)
    before = (period_start(a, grain), period_end(period_start(a, grain), grain))
    after = (period_start(b, grain), period_end(period_start(b, grain), grain))
    s = settings_of(settings, home=home, warehouse=warehouse, store=store, calendar=calendar)
    hold = Holdout(holdout_salt, holdout) if holdout > 0 else None
    with _warehouse(s) as wh, _session(s) as session:
        found = change_bridge(wh, session=session, before=before, after=after, metric=metric,
                              calendar=load_calendar(s.calendar), holdout=hold)  # fmt: skip
        rows, summary = bridge_rows(found, wh.scale), bridge_summary(found, wh.scale)
    out = frame(rows)
    out.attrs.update(
        metric=metric, before=[_plain(d) for d in before], after=[_plain(d) for d in after],
        value_before=summary["from"]["value"], value_after=summary["to"]["value"],
        change=summary["change"], change_minor=summary["change_minor"], notes=summary["notes"],
    )  # fmt: skip
    return out


def _explain(start, end, grain: str, by: str, top: int, settings: Settings):
    from tianping.metrics.periods import period_end, period_start
    from tianping.metrics.service import explain_gmv

    a, b = _day(start, "start"), _day(end, "end")
    if a is None or b is None:
        from tianping.errors import UsageError

        raise UsageError("explain needs a start and an end day", field="start")
    before = (period_start(a, grain), period_end(period_start(a, grain), grain))
    after = (period_start(b, grain), period_end(period_start(b, grain), grain))
    with _warehouse(settings) as wh:
        result, found = explain_gmv(wh, before, after, dimension=by, top=top)
    return result, found, before, after


def market_comparison(
    period: str | None = None,
    *,
    project: bool = False,
    ours_from: str | date | None = None,
    ours_to: str | date | None = None,
    settings: Settings | None = None,
    home: str | Path | None = None,
    warehouse: str | None = None,
    store: str | None = None,
    sources: str | Path | None = None,
) -> pd.DataFrame:
    """Our figures beside every platform's in one market period, like with like, as
    ``tianping market compare`` and the dashboard's overview show them.

    One row per metric and platform (ours first, ``ours`` True): ``value``, and for our row
    ``share``, ``rank``, ``growth``, ``comparable`` and ``basis`` (why a figure is or is not
    compared); for theirs ``gap``, ``ratio`` and ``growth``. ``attrs``: the period, its first
    and last day, the days of it our data covers, whether flows were projected.

    Args:
        period: ``YYYY``, ``YYYY-Qn``, ``YYYY-MM``; default the latest our data covers wholly.
        project: scale our GMV and packages from the days we cover to the period's length.
        ours_from, ours_to: narrow our window (outside the period only with ``project``).
    """
    from tianping.market.service import compare_with_market

    s = settings_of(settings, home=home, warehouse=warehouse, store=store, sources=sources)
    with _warehouse(s) as wh, _session(s) as session:
        view = compare_with_market(wh, session=session, period=period, project=project,
                                   ours_from=_day(ours_from, "ours_from"),
                                   ours_to=_day(ours_to, "ours_to"))  # fmt: skip
    rows = []
    for c in view.comparisons:
        rows.append({"metric": c.metric, "platform": "ours", "ours": True, "value": c.ours,
                     "share": c.share, "rank": c.rank, "gap": None, "ratio": None,
                     "growth": c.our_growth, "comparable": c.comparable, "basis": c.basis})  # fmt: skip
        rows += [{"metric": c.metric, "platform": g.platform, "ours": False, "value": g.theirs,
                  "share": None, "rank": None, "gap": g.gap, "ratio": g.ratio,
                  "growth": g.their_growth, "comparable": c.comparable, "basis": c.basis}
                 for g in c.gaps]  # fmt: skip
    out = frame(rows)
    info = view.to_dict()
    out.attrs.update({k: _plain(v) for k, v in info.items() if k != "comparisons"})
    return out


def market_periods(
    *,
    settings: Settings | None = None,
    home: str | Path | None = None,
    warehouse: str | None = None,
    store: str | None = None,
    sources: str | Path | None = None,
) -> pd.DataFrame:
    """Every market period with the days of it our data covers (``tianping market periods``):
    ``period``, ``start``, ``end``, ``days``, ``covered_days``, ``coverage``, ``platforms``,
    ``metrics``."""
    from tianping.market.service import period_coverage

    s = settings_of(settings, home=home, warehouse=warehouse, store=store, sources=sources)
    with _warehouse(s) as wh, _session(s) as session:
        return frame(c.to_dict() for c in period_coverage(wh, session=session))


def experiment(
    name: str,
    *,
    slice_by: str | None = None,
    settings: Settings | None = None,
    home: str | Path | None = None,
    warehouse: str | None = None,
    store: str | None = None,
    sources: str | Path | None = None,
) -> pd.DataFrame:
    """An experiment's analysis (``tianping experiment analyze NAME --format json``), one row
    per metric and treatment: ``metric``, ``role``, ``treatment``, ``control_mean``,
    ``treatment_mean``, ``effect_size`` and its interval, ``rel_effect_size`` and its interval,
    ``pvalue`` and ``rel_pvalue`` (and adjusted), ``scale`` and ``decision_pvalue`` (the scale
    and p-value the verdict used), ``win`` and ``hurt``. ``attrs``: the recommendation,
    reasons, warnings, arms, the sample-ratio p-value, the scale note and the window."""
    from tianping.experiments.service import analyze_experiment
    from tianping.races.service import weight_schedule

    s = settings_of(settings, home=home, warehouse=warehouse, store=store, sources=sources)
    with _warehouse(s) as wh, _session(s) as session:
        report = analyze_experiment(
            name, session=session, warehouse=wh, slice_by=slice_by, weight_history=weight_schedule
        )
    doc = report.to_dict()
    rows = []
    for m in doc["metrics"]:
        for c in m.get("comparisons", []):
            rows.append({"metric": m["metric"], "role": m["role"], **c,
                         "win": c["treatment"] in m["significant_improvement_in"],
                         "hurt": c["treatment"] in m["guardrail_hurt_in"]})  # fmt: skip
    out = frame(rows)
    keep = ("experiment", "window", "method", "alpha", "correction", "recommendation", "reasons",
            "warnings", "arms", "srm_pvalue", "srm_flagged", "scale", "scale_note")  # fmt: skip
    out.attrs.update({k: _plain(doc[k]) for k in keep})
    return out


def race(
    name: str,
    *,
    settings: Settings | None = None,
    home: str | Path | None = None,
    warehouse: str | None = None,
    store: str | None = None,
    sources: str | Path | None = None,
) -> pd.DataFrame:
    """A race's standings at its latest adaptive step (``tianping race report NAME``), one
    row per strategy: ``arm``, ``units``, ``estimate`` (biased: traffic followed the
    leaders), ``p_best``, ``weight`` (its next share of traffic), ``active``. ``attrs``: the
    race (phase, winner, decision...) and its latest confirmation, if any."""
    from tianping.races.report import verdict

    data = _race_data(
        name, settings_of(settings, home=home, warehouse=warehouse, store=store, sources=sources)
    )
    racing = [s for s in data["steps"] if s["phase"] == "racing"]
    last = racing[-1]["standings"] if racing else []
    out = frame({"arm": s["arm"], "units": s["n"], "estimate": s["estimate"],
                 "p_best": s["p_best"], "weight": s["weight"], "active": s["active"]}
                for s in last)  # fmt: skip
    out.attrs.update(race=_plain(data["race"]), confirmation=_plain(verdict(data)))
    return out


def race_steps(
    name: str,
    *,
    settings: Settings | None = None,
    home: str | Path | None = None,
    warehouse: str | None = None,
    store: str | None = None,
    sources: str | Path | None = None,
) -> pd.DataFrame:
    """Every step of a race, one row per step and strategy: ``step``, ``phase``,
    ``taken_at``, ``window_start``, ``window_end``, ``leader``, ``arm``, ``units``,
    ``estimate``, ``p_best``, ``weight``, ``regret``."""
    data = _race_data(
        name, settings_of(settings, home=home, warehouse=warehouse, store=store, sources=sources)
    )
    return frame(
        {"step": st["number"], "phase": st["phase"], "taken_at": st["taken_at"],
         "window_start": st["window"][0], "window_end": st["window"][1], "leader": st["leader"],
         "arm": s["arm"], "units": s["n"], "estimate": s.get("estimate"),
         "p_best": s.get("p_best"), "weight": s.get("weight"), "regret": st["regret"]}
        for st in data["steps"] for s in st["standings"]
    )  # fmt: skip


def _race_data(name: str, s: Settings) -> dict[str, Any]:
    from tianping.races.service import report_data

    with _session(s) as session:
        return report_data(name, session=session)


def policy_replay(
    policy: str,
    start: str | date,
    end: str | date,
    *,
    against: str | None = None,
    scores_as_of: str | date | None = None,
    settings: Settings | None = None,
    home: str | Path | None = None,
    warehouse: str | None = None,
    store: str | None = None,
    sources: str | Path | None = None,
) -> pd.DataFrame:
    """Past refund requests decided again under ``policy`` (and ``against``), as ``tianping
    policy replay`` does: one row per policy with ``requests``, ``automatic``,
    ``auto_decision_rate``, money refunded by the merchant, by the platform and in total
    (yuan), ``abusive_requests``, ``abuse_loss`` (where the data has abuse truth) and one
    ``action_*`` count per action. ``attrs``: the window, requests, unmatched, and notes."""
    from tianping.aftersales.policy import resolve_policy
    from tianping.aftersales.replay import replay

    s = settings_of(settings, home=home, warehouse=warehouse, store=store, sources=sources)
    first, last = _day(start, "start"), _day(end, "end")
    as_of = _day(scores_as_of, "scores_as_of")
    with _warehouse(s) as wh:
        report = replay(wh, resolve_policy(policy), start=first, end=last,
                        against=resolve_policy(against) if against else None,
                        scores_as_of=None if as_of is None else datetime.combine(as_of, datetime.min.time()),
                        currency=s.currency)  # fmt: skip
    scale = 10 ** _exponent(s.currency)
    rows = []
    for o in report.outcomes:
        rows.append({
            "policy": o.policy_name, "version": o.policy_version, "requests": o.requests,
            "automatic": o.automatic, "auto_decision_rate": o.auto_decision_rate,
            "refunded_by_merchant": o.refunded_minor.get("merchant", 0) / scale,
            "refunded_by_platform": o.refunded_minor.get("platform", 0) / scale,
            "refunded_total": o.refunded_total_minor / scale,
            "abusive_requests": o.abusive_requests,
            "abuse_loss": None if o.abuse_loss_minor is None else o.abuse_loss_minor / scale,
            **{f"action_{a}": n for a, n in o.by_action.items()},
        })  # fmt: skip
    out = frame(rows)
    out.attrs.update(start=_plain(report.start), end=_plain(report.end),
                     requests=report.requests, unmatched=report.unmatched,
                     notes=list(report.notes))  # fmt: skip
    return out


# -- plumbing ---------------------------------------------------------------------------------


def frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows as a DataFrame of plain values: ``Decimal`` → float, ``date``/``datetime`` →
    ``pandas.Timestamp`` (UTC for times with a zone), None → NaN in numeric columns.

    >>> f = frame([{"day": date(2024, 5, 1), "gmv": Decimal("12.30"), "n": 3}])
    >>> f.dtypes.astype(str).tolist(), f["gmv"].iloc[0]
    (['datetime64[s]', 'float64', 'int64'], np.float64(12.3))
    """
    out = pd.DataFrame([{k: _plain(v) for k, v in r.items()} for r in rows])
    for column in out.columns:
        values = out[column].dropna()
        if len(values) and all(isinstance(v, pd.Timestamp) for v in values):
            out[column] = pd.to_datetime(out[column])
        elif len(values) and all(_number(v) for v in values) and len(values) < len(out):
            out[column] = out[column].astype(float)  # a numeric column with gaps: NaN
    return out


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, datetime):
        return pd.Timestamp(v).tz_convert("UTC") if v.tzinfo else pd.Timestamp(v)
    if isinstance(v, date):
        return pd.Timestamp(v)
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def _day(value: str | date | None, name: str) -> date | None:
    if value is None or isinstance(value, date):
        return value.date() if isinstance(value, datetime) else value
    from tianping.cli.metrics import parse_day

    return parse_day(str(value), name)


def _exponent(currency: str) -> int:
    from tianping.money import exponent_of

    return exponent_of(currency)


@contextmanager
def _warehouse(settings: Settings) -> Iterator[Any]:
    from tianping.warehouse import connect

    wh = connect(settings)
    try:
        yield wh
    finally:
        wh.close()


@contextmanager
def _session(settings: Settings) -> Iterator[Any]:
    from tianping.store import session_scope

    with session_scope(settings.store) as session:
        yield session
