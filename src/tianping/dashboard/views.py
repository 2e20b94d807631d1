"""What each page shows, gathered from the store and the warehouse (no HTML here).

Warehouse figures (headline metrics, the market, experiment reports) take a few hundred
milliseconds to compute, so they are kept for :data:`TTL_SECONDS` per process and computed
in the background at start-up; store reads (queues, decisions, goals) are always fresh.
"""

from __future__ import annotations

import html
import importlib
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from tianping.report import figures
from tianping.settings import Settings

log = logging.getLogger(__name__)
TTL_SECONDS = 300.0
#: The headline metrics shown on the overview, with how each is formatted.
HEADLINE = (
    ("gmv", "GMV", "yuan"), ("orders", "Orders", "int"), ("buyers", "Buyers", "int"),
    ("aov", "Average order value", "yuan"), ("refund_rate", "Refund rate", "pct"),
    ("review_score", "Review score", "num"), ("nps", "NPS (points)", "num"),
)  # fmt: skip
#: Metrics where a fall is good news (shown green).
LOWER_IS_BETTER = frozenset({"refund_rate"})
#: Metrics whose change is shown in points (a difference), not as a percentage of themselves.
POINT_CHANGES = frozenset({"nps"})


class Cache:
    """Values by key, recomputed when older than ``ttl`` seconds; one computation at a time."""

    def __init__(self, ttl: float = TTL_SECONDS):
        self.ttl = ttl
        self._values: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        """The value under ``key``, computed by ``compute`` at most once per ``ttl`` seconds (one thread computes, others wait)."""
        hit = self._values.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        with self._lock:
            hit = self._values.get(key)
            if hit is None or time.monotonic() - hit[0] >= self.ttl:
                hit = (time.monotonic(), compute())
                self._values[key] = hit
        return hit[1]


def _warehouse_figures(settings: Settings, sessions) -> dict[str, Any]:
    """Monthly headline metrics, daily GMV and our figures beside the market's, if any data."""
    from tianping.errors import TianpingError
    from tianping.market.service import compare_with_market
    from tianping.metrics.calendar import load_calendar
    from tianping.metrics.service import compute_metrics, data_window
    from tianping.warehouse import connect

    try:
        settings.check_warehouse(write=False)  # a page never creates a warehouse
    except TianpingError:
        return {"window": None}
    wh = connect(settings)
    try:
        window = data_window(wh, None, None)
        if window is None:
            return {"window": None}
        monthly = compute_metrics(wh, grain="month")
        daily = compute_metrics(wh, grain="day")
        with sessions() as s:
            try:  # the CLI's `market compare` question: the same call, the same default
                market = {"view": compare_with_market(wh, session=s)}
            except TianpingError as exc:
                market = {"missing": exc.message}
        calendar = load_calendar(settings.calendar)
        with sessions() as s:
            bridge = _bridge(wh, s, monthly, calendar)
        return {"window": window, "monthly": monthly, "daily": daily, "market": market,
                "marks": calendar.marks(*window), "events": calendar.between(*window),
                "bridge": bridge}  # fmt: skip
    finally:
        wh.close()


def _bridge(wh, session, monthly: list[dict], calendar) -> dict[str, Any] | None:
    """The CLI's ``metrics bridge --from <month before> --to <latest month>`` (GMV, no holdout
    given): the same call, the same parts."""
    from tianping.attribution.service import bridge_rows, bridge_summary, change_bridge
    from tianping.errors import TianpingError
    from tianping.metrics.periods import period_end

    if len(monthly) < 2:
        return None
    before, after = ((m["period"], period_end(m["period"], "month")) for m in monthly[-2:])
    command = f"tianping metrics bridge --from {before[0]:%Y-%m} --to {after[0]:%Y-%m}"
    try:  # the page shows the reason, as the CLI would, instead of failing whole
        found = change_bridge(wh, session=session, before=before, after=after, calendar=calendar)
    except TianpingError as exc:
        return {"missing": exc.message, "command": command}
    return {"summary": bridge_summary(found, wh.scale), "parts": bridge_rows(found, wh.scale),
            "command": command}  # fmt: skip


def evidence_links(items: list[dict[str, str]]) -> list[tuple[str, str | None]]:
    """``(text, dashboard link or None)`` for each piece of a bridge part's evidence:
    decisions and experiments link to their pages."""
    pages = {"decision": "/dashboard/decisions/", "experiment": "/dashboard/experiments/"}
    out = []
    for e in items:
        text = e["label"] or f"{e['kind']} {e['ref']}"
        page = pages.get(e["kind"])
        out.append((text, None if page is None else page + quote(e["ref"])))
    return out


def overview(settings: Settings, sessions, cache: Cache) -> dict[str, Any]:
    """Headline metrics (latest month against the one before), the market and the goals."""
    from tianping.goals.service import list_goals
    from tianping.report.svg import line_chart

    figures = cache.get("overview", lambda: _warehouse_figures(settings, sessions))
    page: dict[str, Any] = {"window": figures["window"], "headline": [], "chart": None}
    if figures["window"] is not None:
        months = figures["monthly"]
        last, before = months[-1], (months[-2] if len(months) > 1 else None)
        for key, label, kind in HEADLINE:
            now_v, then_v = last.get(key), before.get(key) if before else None
            change, change_text = None, ""
            if key in POINT_CHANGES and now_v is not None and then_v is not None:
                change = float(now_v) - float(then_v)  # NPS moves in points, not percent
                change_text = f"{change:+.1f} pts"
            elif now_v is not None and then_v:
                change = float(now_v) / float(then_v) - 1
                change_text = f"{change:+.1%}"
            good = None if change is None else (change <= 0) == (key in LOWER_IS_BETTER)
            page["headline"].append({"label": label, "value": fmt(now_v, kind), "change": change,
                                     "change_text": change_text, "good": good})  # fmt: skip
        page["period"] = last["period"]
        page["period_days"] = _days_shown(last["period"], figures["window"])
        days = figures["daily"]
        page["chart"] = line_chart([str(d["period"]) for d in days],
                                   [float(d["gmv"]) if d["gmv"] is not None else None for d in days],
                                   title="GMV per day", marks=figures["marks"])  # fmt: skip
        page["events"] = _month_events(figures["events"], [m["period"] for m in months[-2:]])
        page["bridge"] = figures["bridge"]
        page["market"] = figures["market"]
    with sessions() as s:
        page["goals"] = [_goal(g) for g in list_goals(session=s)]
    return page


def _month_events(events, months) -> list[dict[str, Any]]:
    """The events whose window touches the latest month or the month before: a month-on-month
    change that mixes a festival in says so, with the aligned comparison to run instead."""
    from tianping.metrics.periods import period_end

    out = []
    for o in events:
        for m in months:
            if o.start <= period_end(m, "month") and o.end >= m:
                out.append({"month": m.strftime("%Y-%m"), "name": o.name, "key": o.key,
                            "year": o.year, "peak": o.peak, "start": o.start, "end": o.end})  # fmt: skip
    return out


def _days_shown(first, window) -> tuple[int, int]:
    """Days of the month starting ``first`` that the data covers, and the month's days (the
    latest month is often partial: the page says so)."""
    from tianping.metrics.periods import days_in_window, period_end

    return days_in_window(first, "month", *window), (period_end(first, "month") - first).days + 1


def _goal(g) -> dict[str, Any]:
    revs = sorted(g.revisions, key=lambda r: r.number)
    return {"name": g.name, "current": revs[-1] if revs else None, "revisions": revs}


def experiment_doc(name: str, settings: Settings, sessions, cache: Cache) -> dict:
    """The experiment's analysed report as JSON-ready data (cached like every computed page)."""
    from tianping.experiments import service as experiments
    from tianping.experiments.report import report_dict
    from tianping.races.service import weight_schedule
    from tianping.warehouse import connect

    def compute() -> dict:
        settings.check_warehouse(write=False)
        wh = connect(settings)
        try:
            with sessions() as s:
                report = experiments.analyze_experiment(
                    name, session=s, warehouse=wh, weight_history=weight_schedule
                )
        finally:
            wh.close()
        return report_dict(report)

    return cache.get(f"experiment:{name}", compute)


def experiment_report(name: str, settings: Settings, sessions, cache: Cache) -> str:
    """The experiment's report as HTML (the experiment report's own renderer, body only)."""
    from tianping.experiments.html import render_html

    page = render_html(experiment_doc(name, settings, sessions, cache))
    body = re.search(r"<body>(.*)</body>", page, re.S)
    return body.group(1) if body else html.escape(page)


def race_report(name: str, settings: Settings, sessions, cache: Cache) -> str:
    """The race's standings, chance to be best and traffic over its steps (fresh from the
    store), with the health gates of the traffic its experiment has had so far."""
    from tianping.errors import TianpingError
    from tianping.races import service as races
    from tianping.races.report import report_html

    with sessions() as s:
        data = races.report_data(name, session=s)
    experiment = data["race"]["confirm_experiment"] or data["race"]["experiment"]
    health = None
    if experiment and data["race"]["kind"] == "experiment":
        try:
            health = experiment_doc(experiment, settings, sessions, cache).get("health")
        except TianpingError:  # no traffic yet, or no warehouse: the report says where to look
            health = None
    page = report_html(data, health=health)
    body = re.search(r"<body>(.*)</body>", page, re.S)
    return body.group(1) if body else html.escape(page)


#: What computing the pages imports (lazily, so that the CLI starts fast).
PAGE_MODULES = (
    "tianping.experiments.html",
    "tianping.experiments.report",
    "tianping.experiments.service",
    "tianping.goals.service",
    "tianping.market.service",
    "tianping.metrics.service",
    "tianping.races.report",
    "tianping.races.service",
    "tianping.report.svg",
    "tianping.warehouse",
)


def import_pages() -> None:
    """Import :data:`PAGE_MODULES` now: a server does it at start, before it freezes its heap,
    rather than in the warming thread, which a busy event loop can starve for seconds."""
    for name in PAGE_MODULES:
        importlib.import_module(name)


def warm(settings: Settings, sessions, cache: Cache) -> None:
    """Compute the overview and every experiment's report now (in a background thread)."""
    from tianping.experiments import service as experiments

    steps = [lambda: overview(settings, sessions, cache)]
    try:
        with sessions() as s:
            names = [e.name for e in experiments.list_all(session=s) if e.status != "draft"]
    except Exception:
        log.exception("warming the dashboard: cannot list the experiments")
        names = []
    steps += [lambda n=n: experiment_report(n, settings, sessions, cache) for n in names]
    for step in steps:
        try:
            step()
        except Exception:  # that page computes on demand instead and shows the error
            log.warning("warming the dashboard: a page failed", exc_info=True)


def queue_reason(r: dict[str, Any]) -> str:
    """Why a request waits for a reviewer, from its last event: the merchant's appeal or
    refusal (with their note), else what sent it to review (the policy's reasons)."""
    last = next((e for e in reversed(r.get("events") or [])
                 if e["event"] in ("appeal", "merchant_refused", "escalate")), None)  # fmt: skip
    note = (last or {}).get("data", {}).get("note") if last else None
    said = f": “{note}”" if note else ""
    if last is not None and last["event"] == "appeal":
        return (f"merchant {r['merchant_id']} appealed the refund on {last['at']:%Y-%m-%d %H:%M} "
                f"UTC{said}. Upholding it makes the platform pay instead of the merchant; the "
                "buyer keeps the refund.")  # fmt: skip
    if last is not None and last["event"] == "merchant_refused":
        return (f"merchant {r['merchant_id']} refused the refund on {last['at']:%Y-%m-%d %H:%M} "
                f"UTC{said}, so a person decides.")  # fmt: skip
    d = r.get("decision")
    if d is None:
        return "it was sent to review."
    # a reason with no buyer text is for the merchant and the reviewer (e.g. the shared values
    # of an abuse ring): the reviewer reads it
    reasons = "; ".join(x.get("buyer") or x.get("merchant") or x.get("code", "")
                        for x in d.get("reasons") or [])  # fmt: skip
    if d.get("source") == "policy":
        version = (d.get("policy_version") or "")[:12]
        return f"{reasons} (policy {d.get('policy_name')} {version}, rule {d.get('rule_id')})"
    return f"{d.get('decided_by')} sent it to review{f' ({reasons})' if reasons else ''}."


def fmt(value: Any, kind: str) -> str:
    """A figure for display: money with two decimals (``yuan``: with its symbol), rates in
    percent."""
    if value is None:
        return "—"
    if kind == "yuan":  # major units, with the currency's symbol
        return figures.money(value)
    if kind == "money":
        return f"{float(value):,.2f}"
    if kind == "pct":
        return f"{float(value):.2%}"
    if kind == "int":
        return f"{int(value):,}"
    return f"{float(value):,.2f}"


def pretty_json(value: Any) -> str:
    """Data as indented JSON for people (audit details, payloads), not a Python repr."""
    import json

    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
