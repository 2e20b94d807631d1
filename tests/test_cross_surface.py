"""One figure, one source: on a demo home, every dashboard page and the demo's HTML report show
the numbers the CLI's JSON gives for the same question (same library call, window and grain).

Shown figures are read back from the HTML as people see them (``¥1,234.50``, ``+11.3%``,
``1.32 million``) and compared with the CLI's value to the precision shown, so a figure from
another window, grain or formula fails, and a change of number format does not.
"""

from __future__ import annotations

import html
import json
import re
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tianping.cli.main import app as cli
from tianping.settings import Settings

runner = CliRunner()
#: Dashboard tile labels → the metric behind them.
TILES = {"GMV": "gmv", "Orders": "orders", "Buyers": "buyers", "Average order value": "aov",
         "Refund rate": "refund_rate", "Review score": "review_score", "NPS (points)": "nps"}  # fmt: skip
PERCENT_METRICS = {"refund_rate", "refund_amount_rate", "door_delivery_rate", "repurchase_30d"}
COMPARED: list[str] = []  # every figure checked, for the summary printed at the end


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """``tianping demo --small`` into a fresh home, a decision with frozen evidence, a signed-in
    dashboard client and the CLI's JSON answers (asked once each)."""
    home = tmp_path_factory.mktemp("surface") / ".tianping"
    assert runner.invoke(cli, ["--home", str(home), "demo", "--small"]).exit_code == 0
    rules = home / "rules.yaml"
    rules.write_text("default:\n  approvers: [Ada, Oli, Bo]\n  required: 2\n")
    run(home, "decision", "rules", "set", str(rules), "--actor", "Ada")
    run(home, "decision", "propose", "--kind", "spend", "--title", "Red packets for 618",
        "--amount", "50000", "--purpose", "618 campaign", "--actor", "Dan",
        "--evidence", "experiment:checkout_red_packet", "--evidence", "race:homepage_feed_race")  # fmt: skip
    key = run(home, "keys", "create", "--role", "admin", "--name", "Ada").strip()
    from tianping.server.app import create_app

    with TestClient(create_app(Settings(home=home))) as client:
        r = client.post("/dashboard/sign-in", data={"key": key}, follow_redirects=False)
        assert r.status_code == 303
        yield {"home": home, "client": client}
    print(f"\ncross-surface: {len(COMPARED)} figures compared with the CLI's JSON:")
    for line in COMPARED:
        print(f"  {line}")


def run(home: Path, *args: str) -> str:
    out = runner.invoke(cli, ["--home", str(home), *args])
    assert out.exit_code == 0, (args, out.output)
    return out.stdout


def cli_json(home: Path, *args: str):
    return json.loads(run(home, *args, "--format", "json"))


def page(demo, path: str) -> str:
    r = demo["client"].get(path)
    assert r.status_code == 200, (path, r.text[:500])
    return r.text


# -- reading what a person sees ---------------------------------------------------------------

_SCALE = {"trillion": 1e12, "billion": 1e9, "million": 1e6, "T": 1e12, "B": 1e9, "M": 1e6,
          "K": 1e3}  # fmt: skip
_NUMBER = re.compile(
    r"([-+−]?)[¥$]?\s*(\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?)\s*(%|trillion|billion|million|[TBMK]\b)?"
)


def shown(text: str) -> tuple[float, float]:
    """The number in ``text`` as shown, and half a unit of its last digit (its precision)."""
    m = _NUMBER.search(html.unescape(text).replace("\u2212", "-"))
    assert m, f"no number in {text!r}"
    sign, digits, unit = m.groups()
    value = float(digits.replace(",", "")) * (-1 if sign in ("-", "−") else 1)
    if "e" in digits:
        mantissa = digits.split("e")[0]
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        half = 0.5 * 10 ** (int(digits.split("e")[1]) - decimals)
    else:
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        half = 0.5 * 10**-decimals
    factor = 0.01 if unit == "%" else _SCALE.get(unit or "", 1.0)
    return value * factor, half * factor


def check(label: str, text: str, value: float | None) -> None:
    """``text`` shows ``value`` to the precision it shows."""
    if value is None:
        assert text.strip() in ("—", "", "-", "None") or "not compared" in text, (label, text)
        COMPARED.append(f"{label}: — (none) = none")
        return
    got, half = shown(text)
    assert abs(got - float(value)) <= half * 1.000001 + 1e-12, (label, text, value)
    COMPARED.append(f"{label}: {text.strip()} = {value}")


class _Tables(HTMLParser):
    """Every table: its attributes, the last heading before it, its rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables, self.heading, self._text, self._in = [], "", None, None
        self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("h1", "h2", "h3"):
            self._text = []
        elif tag == "table":
            self.tables.append({"attrs": a, "heading": self.heading, "rows": [], "row_attrs": []})
        elif tag == "tr" and self.tables:
            self._row = []
            self.tables[-1]["row_attrs"].append(a)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3") and self._text is not None:
            self.heading, self._text = " ".join("".join(self._text).split()), None
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1]["rows"].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._text is not None:
            self._text.append(data)


def tables(text: str) -> list[dict]:
    parser = _Tables()
    parser.feed(text)
    return parser.tables


def table(text: str, **where) -> dict:
    for t in tables(text):
        if all(t["attrs"].get(k) == v for k, v in where.items() if k != "heading") and (
            "heading" not in where or t["heading"].startswith(where["heading"])
        ):
            return t
    raise AssertionError(f"no table {where}")


def as_dicts(t: dict) -> list[dict[str, str]]:
    head, *rows = t["rows"]
    return [dict(zip(head, r, strict=False)) for r in rows]


def strip(text: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


# -- the dashboard ----------------------------------------------------------------------------


def test_overview_headline_and_window_are_the_cli_metrics(demo):
    home, text = demo["home"], page(demo, "/dashboard/")
    months = cli_json(home, "metrics", "--grain", "month")
    days = cli_json(home, "metrics", "--grain", "day")
    last, before = months[-1], months[-2]
    said = strip(text)
    assert f"Data from {days[0]['period']} to {days[-1]['period']}" in said
    assert f"month of {last['period'][:7]}" in said
    tiles = re.findall(r'<li class="tile" data-metric="([^"]+)">(.*?)</li>', text, re.S)
    assert {label for label, _ in tiles} == set(TILES)
    for label, body in tiles:
        key = TILES[label]
        value = re.search(r'class="tile-value">([^<]*)<', body).group(1)
        check(f"overview {key}", value, float(last[key]))
        change = re.search(r'class="tile-change[^"]*">([^<]*)<', body)
        if key == "nps":  # NPS moves in points, not percent
            check("overview nps change", change.group(1), float(last[key]) - float(before[key]))
        elif before[key]:
            check(f"overview {key} change", change.group(1),
                  float(last[key]) / float(before[key]) - 1)  # fmt: skip


def test_overview_market_is_market_compare_and_market_periods(demo):
    home, text = demo["home"], page(demo, "/dashboard/")
    doc = cli_json(home, "market", "compare")
    said = strip(text)
    assert f"Market period {doc['period']} ({doc['period_start']} – {doc['period_end']})" in said
    assert f"{doc['covered_days']} of {doc['period_days']} days" in said
    market = table(text, id="market-table")
    head, *rows = market["rows"]
    for c, row in zip(doc["comparisons"], rows, strict=True):
        cells = dict(zip(head, row, strict=False))
        assert cells["metric"] == c["metric"]
        check(f"overview market {c['metric']} ours", cells["ours"], c["ours"])
        if c["comparable"]:
            check(f"overview market {c['metric']} share", cells["share"], c["share"])
            assert cells["rank"] == f"{c['rank']} / {c['platforms']}"
        for g in c["competitors"]:
            check(f"overview market {c['metric']} {g['platform']}", cells[g["platform"]],
                  g["value"])  # fmt: skip
    periods = cli_json(home, "market", "periods")
    shown_periods = as_dicts(table(text, id="market-periods"))
    assert [p["period"] for p in shown_periods] == [p["period"] for p in periods]
    for p, row in zip(periods, shown_periods, strict=True):
        assert row["days covered"] == f"{p['covered_days']} of {p['days']}"
        COMPARED.append(f"overview period {p['period']}: {row['days covered']}")


def test_overview_bridge_is_metrics_bridge(demo):
    home, text = demo["home"], page(demo, "/dashboard/")
    months = cli_json(home, "metrics", "--grain", "month")
    first, last = months[-2]["period"][:7], months[-1]["period"][:7]
    doc = cli_json(home, "metrics", "bridge", "--from", first, "--to", last)
    assert f"tianping metrics bridge --from {first} --to {last}" in strip(text)
    shown = as_dicts(table(text, id="bridge-table"))
    assert [r["part"] for r in shown] == [p["part"] for p in doc["parts"]]
    for p, row in zip(doc["parts"], shown, strict=True):
        assert row["kind"] == p["kind"]
        check(f"overview bridge {p['part']}", row["amount"], p["amount"])
    said = strip(text)
    change = re.search(r"change (\S+) ?, the exact sum of the parts", said)
    check("overview bridge change", change.group(1), doc["change"])
    assert sum(p["amount_minor"] for p in doc["parts"]) == doc["change_minor"]


def test_experiment_pages_are_experiment_analyze(demo):
    home = demo["home"]
    listed = cli_json(home, "experiment", "list")
    rows = as_dicts(table(page(demo, "/dashboard/experiments")))
    assert [(r["experiment"], r["status"], r["primary metric"]) for r in rows] == [
        (e["name"], e["status"], e["primary_metric"]) for e in listed]  # fmt: skip
    for e in listed:
        text = page(demo, f"/dashboard/experiments/{e['name']}")
        doc = cli_json(home, "experiment", "analyze", e["name"])
        assert f"<strong>{html.escape(doc['recommendation'])}</strong>" in text
        arms = as_dicts(table(text, heading="Arms"))
        for arm, row in zip(doc["arms"], arms, strict=True):
            assert row["arm"] == arm["name"]
            check(f"{e['name']} units {arm['name']}", row["units"], arm["units"])
        srm = re.search(r"sample-ratio check[^<]*: p = ([^<]+)</p>", text).group(1)
        check(f"{e['name']} SRM p", srm, doc["srm_pvalue"])
        _same_rule(home, e["name"], text, doc)
        for m in doc["metrics"]:
            if m.get("error"):
                continue
            shown_rows = as_dicts(table(text, heading=f"{m['metric']} ("))
            for c, row in zip(m["comparisons"], shown_rows, strict=True):
                tag = f"{e['name']} {m['metric']} {c['treatment']}"
                check(f"{tag} lift", row["relative"], c["rel_effect_size"])
                lo, hi = row["interval"].strip("[]").split(", ")
                check(f"{tag} lower", lo, c["rel_effect_size_ci_lower"])
                check(f"{tag} upper", hi, c["rel_effect_size_ci_upper"])
                decides = next(v for k, v in row.items() if k.endswith("(decides)"))
                check(f"{tag} deciding p", decides, c["decision_pvalue"])
                absolute = next(v for k, v in row.items() if k.startswith("absolute p"))
                adjusted = c["pvalue"] if m["role"] == "guardrail" else c["pvalue_adjusted"]
                check(f"{tag} absolute p", absolute, adjusted)


def _same_rule(home, name: str, text: str, doc: dict) -> None:
    """The rule's version, every health gate and every rule test on the page are the CLI's
    JSON, and the CLI's table says the same gates and verdict."""
    assert f"version {doc['rule']['version']}" in strip(text)
    health = [t for t in tables(text) if t["heading"] == "Health"]
    gates = as_dicts(health[0])
    assert [(g["gate"], g["status"], g["detail"]) for g in gates] == [
        (g["gate"], g["status"], " ".join(g["detail"].split())) for g in doc["health"]]  # fmt: skip
    shown_tests = as_dicts(health[1])
    for t, row in zip(doc["rule_tests"], shown_tests, strict=True):
        tag = f"{name} rule {t['treatment']} {t['metric']}"
        assert (row["arm"], row["metric"], row["role"]) == (t["treatment"], t["metric"], t["role"])
        check(f"{tag} improvement", row["improvement"], t["improvement"])
        check(f"{tag} bound", row["bound"], t["bound"])
        check(f"{tag} threshold", row["threshold"], t["threshold"])
        assert row["result"] == ("worse" if t["worse"] else "pass" if t["passed"] else "not shown")
    said = " ".join(run(home, "experiment", "analyze", name).split())
    for g in doc["health"]:
        assert f"health {g['gate']}: {g['status']}" in said
    assert f"{doc['recommendation']}: {doc['reasons'][0]}" in said


def test_race_pages_are_race_report(demo):
    home = demo["home"]
    listed = cli_json(home, "race", "list")
    rows = as_dicts(table(page(demo, "/dashboard/races")))
    assert [(r["race"], r["phase"]) for r in rows] == [(r["name"], r["phase"]) for r in listed]
    for race in listed:
        text = page(demo, f"/dashboard/races/{race['name']}")
        doc = cli_json(home, "race", "report", race["name"])
        shown_rows = as_dicts(table(text, heading="Standings"))
        for s, row in zip(doc["standings"], shown_rows, strict=True):
            assert row["arm"] == s["arm"] and row["status"] == s["status"]
            for key in ("units", "estimate (biased)", "p_best", "weight"):
                check(f"race {s['arm']} {key}", row[key], s[key])
        # its rule as the definition fixed it, and the health of its experiment's traffic as
        # `experiment analyze` reports it
        assert doc["rule"]["best_threshold"] > 0 and "Decision rule" in strip(text)
        experiment = doc["race"]["confirm_experiment"] or doc["race"]["experiment"]
        analysed = cli_json(home, "experiment", "analyze", experiment)
        gates = as_dicts(table(text, heading="Health"))
        assert [(g["gate"], g["status"], g["detail"]) for g in gates] == [
            (g["gate"], g["status"], g["detail"]) for g in analysed["health"]
        ]


def test_decision_pages_are_decision_show_and_the_frozen_reports(demo):
    home = demo["home"]
    listed = cli_json(home, "decision", "list")
    rows = as_dicts(table(page(demo, "/dashboard/decisions")))
    assert [(r["#"], r["title"], r["status"], r["approvals"]) for r in rows] == [
        (str(d["id"]), d["title"], d["status"], d["approvals"]) for d in listed]  # fmt: skip
    for d in listed:
        text = page(demo, f"/dashboard/decisions/{d['id']}")
        doc = cli_json(home, "decision", "show", str(d["id"]))
        digests = re.findall(r'<code class="digest">([0-9a-f]{64})</code>', text)
        assert digests == [e["sha256"] for e in doc["evidence"]]
        for e in doc["evidence"]:
            body = re.search(rf'data-position="{e["position"]}">(.*?)</article>', text, re.S)
            said = strip(body.group(1))
            if e["kind"] == "experiment":
                report = cli_json(home, "experiment", "analyze", e["ref"].split(":", 1)[1])
                assert f"#{e['position']} experiment" in said
                assert report["recommendation"] in said
                primary = report["metrics"][0]
                c = primary["comparisons"][0]
                fact = re.search(rf"{primary['metric']} \(primary\), {c['treatment']} "
                                 r"(\S+) \[(\S+), (\S+)\], relative p (\S+)", said)  # fmt: skip
                for got, want in zip(fact.groups(), (c["rel_effect_size"],
                                     c["rel_effect_size_ci_lower"], c["rel_effect_size_ci_upper"],
                                     c["decision_pvalue"]), strict=True):  # fmt: skip
                    check(f"decision #{d['id']} frozen {primary['metric']}", got, want)
            if e["kind"] == "race":
                report = cli_json(home, "race", "report", e["ref"].split(":", 1)[1])
                for s in report["standings"]:
                    chance = re.search(rf"{s['arm']} [\d,]+ units, chance best (\S+)", said)
                    check(f"decision #{d['id']} frozen {s['arm']} p_best", chance.group(1),
                          s["p_best"])  # fmt: skip


def test_after_sales_fund_is_ledger_fund_show(demo):
    """The protection fund's balance, top-ups and payouts on the After-sales page are the
    CLI's (the demo's approvers filled it by decision at the month's start)."""
    fund = cli_json(demo["home"], "ledger", "fund", "show")
    cny = next(f for f in fund["funds"] if f["currency"] == "CNY")
    assert cny["top_ups"] >= 1 and cny["balance_minor"] > 0
    text = page(demo, "/dashboard/after-sales")
    line = re.search(r'<p class="fund" data-currency="CNY">(.*?)</p>', text, re.S)
    assert line, "no fund line on the After-sales page"
    parts = [strip(p) for p in line.group(1).split("·")]
    check("after-sales fund held", parts[0], cny["balance_minor"] / 100)
    count, amount = parts[1].split(" ", 1)
    assert int(count) == cny["top_ups"]
    check("after-sales fund topped up", amount.split(" ", 1)[1], cny["topped_up_minor"] / 100)
    count, amount = parts[2].split(" ", 1)
    assert int(count) == cny["payouts"]
    check("after-sales fund paid out", amount.split(" ", 1)[1], cny["paid_out_minor"] / 100)
    rows = as_dicts(table(text, heading="Merchant protection fund"))
    assert len(rows) == len(fund["movements"][:10])
    for row, m in zip(rows, fund["movements"], strict=False):
        check(f"after-sales fund {m['transfer']}", row["amount"], m["amount_minor"] / 100)


def test_every_other_page_renders(demo):
    text = page(demo, "/dashboard/after-sales")
    merchants = re.findall(r'href="/dashboard/merchants/([^"]+)"', text)
    for m in sorted(set(merchants))[:3]:
        page(demo, f"/dashboard/merchants/{m}")


# -- the demo's HTML report -------------------------------------------------------------------


def test_the_report_shows_the_cli_numbers(demo):
    home = demo["home"]
    text = (home / "report.html").read_text(encoding="utf-8")
    whole = cli_json(home, "metrics", "--grain", "year")[0]
    cards = dict(re.findall(r'<div class="label">([^<]+)</div><div class="value">([^<]+)</div>',
                            text))  # fmt: skip
    from tianping.report.figures import label as heading
    from tianping.report.html import HEADLINE

    for key, label, _ in HEADLINE:
        check(f"report {key}", cards[label], None if whole[key] is None else float(whole[key]))
    months = cli_json(home, "metrics", "--grain", "month")
    monthly = as_dicts(table(text, heading="By month"))
    for m, row in zip(months, monthly, strict=True):
        assert row["month"] == m["period"][:7]
        for key in ("gmv", "orders", "buyers", "aov", "refund_rate", "review_score", "nps"):
            check(f"report {row['month']} {key}", row[heading(key)], float(m[key]))

    doc = cli_json(home, "market", "compare")
    said = strip(text)
    assert f"the market period {doc['period']}" in said
    assert f"{doc['covered_days']} of {doc['period_days']} days" in said
    for c in doc["comparisons"]:
        rows = as_dicts(table(text, **{"data-metric": c["metric"]}))
        check(f"report market {c['metric']} ours", rows[0]["value"], c["ours"])
        if c["comparable"]:
            check(f"report market {c['metric']} share", rows[0]["share"], c["share"])
        for g, row in zip(c["competitors"], rows[1:], strict=True):
            assert row[c["metric"]] == g["platform"]
            check(f"report market {c['metric']} {g['platform']}", row["value"], g["value"])
    periods = cli_json(home, "market", "periods")
    shown_periods = as_dicts(table(text, **{"class": "periods"}))
    assert [(r["period"], r["days covered"]) for r in shown_periods] == [
        (p["period"], f"{p['covered_days']} of {p['days']}") for p in periods]  # fmt: skip

    report = cli_json(home, "experiment", "analyze", "checkout_red_packet")
    effects = next(t for t in tables(text) if t["heading"].startswith("A/B test")
                   and t["rows"][0][:2] == ["metric", "role"])  # fmt: skip
    flat = [(m, c) for m in report["metrics"] for c in m.get("comparisons", [])]
    for (m, c), row in zip(flat, as_dicts(effects), strict=True):
        metric = re.sub(r" \([^)]*\)$", "", row["metric"])  # a unit after the name: "(points)"
        assert (metric, row["role"]) == (heading(m["metric"]), m["role"])
        check(f"report A/B {m['metric']} lift", row["lift"], c["rel_effect_size"])
        lo, hi = row["95% interval"].split(" … ")
        check(f"report A/B {m['metric']} lower", lo, c["rel_effect_size_ci_lower"])
        check(f"report A/B {m['metric']} upper", hi, c["rel_effect_size_ci_upper"])
        check(f"report A/B {m['metric']} p", row["relative p (decides)"], c["decision_pvalue"])
    arms = next(t for t in tables(text) if t["heading"].startswith("A/B test"))
    for arm, row in zip(report["arms"], as_dicts(arms), strict=True):
        check(f"report A/B units {arm['name']}", row["units"], arm["units"])

    race = cli_json(home, "race", "report", "homepage_feed_race")
    rows = as_dicts(table(text, heading="Horse race"))
    for s, row in zip(race["standings"], rows, strict=True):
        assert row["strategy"] == s["arm"]
        check(f"report race {s['arm']} units", row["units"], s["units"])
        check(f"report race {s['arm']} chance best", row["chance best"], s["p_best"])

    end = date.fromisoformat(cli_json(home, "metrics", "--grain", "day")[-1]["period"])
    replay = cli_json(home, "policy", "replay", "taobao-2024-08", "--against", "pinduoduo-2021",
                      "--from", str(end - timedelta(days=29)), "--to", str(end))  # fmt: skip
    outcome = as_dicts(table(text, heading="Outcome"))
    for o, row in zip(replay["outcome"], outcome, strict=True):
        assert row[heading("policy")] == o["policy"]
        for key in ("requests", "auto_decision_rate", "refunded_total"):
            check(f"report replay {o['policy'][:14]} {key}", row[heading(key)], float(o[key]))


def test_the_rule_commands_agree_with_the_report(demo):
    home = demo["home"]
    name = "checkout_red_packet"
    plan = cli_json(home, "experiment", "plan", name)
    doc = cli_json(home, "experiment", "analyze", name)
    assert plan["rule_version"] == doc["rule"]["version"]
    assert plan["units"] == max(line["units"] for line in plan["lines"]) > 0
    assert [line["metric"] for line in plan["lines"]] == [
        *(s["metric"] for s in doc["rule"]["success"]),
        *(g["metric"] for g in doc["rule"]["guardrails"]),
    ]
    # The demo's pending ship proposal and the page's notice never claim the rule said ship
    # when the report's verdict is otherwise (a person may still propose it, knowingly).
    pending = [d for d in cli_json(home, "decision", "list") if d["kind"] == "ship_experiment"
               and d["status"] == "pending"]  # fmt: skip
    notice = strip(page(demo, f"/dashboard/experiments/{name}"))
    assert len(pending) == 1 and f"decision #{pending[0]['id']} waits for its approvers" in notice
    assert "rule said ship" not in notice
    if doc["verdict"]["verdict"] != "ship":
        assert pending[0]["title"].endswith(f"its decision rule says {doc['verdict']['verdict']}")
    said = " ".join(run(home, "experiment", "decide", name, "--actor", "Ada").split())
    if doc["verdict"]["verdict"] == "ship":
        assert f"the rule says ship {doc['verdict']['treatment']}: decision #" in said
    else:
        assert said.startswith(f"{doc['verdict']['verdict']}: nothing proposed")
    pairs = cli_json(home, "experiment", "interactions")
    assert [p for p in pairs if name in (p["first"], p["second"])] == [
        {**t, "contrast": " x ".join(t["contrast"])} for t in doc["interactions"] or []
    ]
    # The dashboard's interaction table and the CLI's table show the same figures.
    shown_rows = next(as_dicts(t) for t in tables(page(demo, f"/dashboard/experiments/{name}"))
                      if t["rows"] and "depends on" in t["rows"][0])  # fmt: skip
    cli_text = run(home, "experiment", "interactions")
    assert shown_rows and len(shown_rows) == len(doc["interactions"] or [])
    for t, row in zip(doc["interactions"], shown_rows, strict=True):
        assert (row["effect of"], row["depends on"]) == (t["first"], t["second"])
        check(f"interaction {t['second']} estimate", row["interaction"], t["estimate"])
        check(f"interaction {t['second']} relative", row["relative"], t["relative"])
        check(f"interaction {t['second']} p", row["p"], t["pvalue"])
        for figure in (row["interaction"], row["relative"], row["p"], row["q"]):
            assert figure in cli_text.split(), (figure, cli_text)


#: The two-sided error columns compared on every surface (``tianping policy replay``).
ERROR_FIGURES = ("honest_requests", "honest_refused", "honest_refused_rate",
                 "honest_refused_rate_low", "honest_refused_rate_high", "honest_refused_amount",
                 "abusive_requests", "abusive_paid", "abusive_paid_rate", "abusive_paid_rate_low",
                 "abusive_paid_rate_high", "abusive_paid_amount", "merchant_loss",
                 "platform_cost", "to_a_person", "time_to_money_median_hours",
                 "time_to_money_p90_hours")  # fmt: skip


def _same_errors(where: str, shown_rows: list[dict[str, str]], rows: list[dict]) -> None:
    from tianping.report.figures import label as heading

    assert len(shown_rows) == len(rows) > 0, where
    for e, row in zip(rows, shown_rows, strict=True):
        assert row[heading("policy")] == e["policy"] and row[heading("source")] == e["source"]
        for key in ERROR_FIGURES:
            value = e[key]
            if value == "unknown":
                assert row[heading(key)] == "unknown", (where, key)
                continue
            check(f"{where} {e['policy'][:14]} {key}", row[heading(key)], float(value))


def test_two_sided_errors_are_the_same_on_every_surface(demo):
    home = demo["home"]
    end = date.fromisoformat(cli_json(home, "metrics", "--grain", "day")[-1]["period"])
    first = str(end - timedelta(days=29))
    both = cli_json(home, "policy", "replay", "taobao-2024-08", "--against", "pinduoduo-2021",
                    "--from", first, "--to", str(end))  # fmt: skip
    errors = both["two-sided errors"]
    assert errors[0]["source"] == "ground truth (refund_truth)"
    assert (
        errors[0]["honest_requests"] + errors[0]["abusive_requests"]
        == both["window"][0]["requests"]
    )
    text = (home / "report.html").read_text(encoding="utf-8")
    _same_errors("report", as_dicts(table(text, heading="Two-sided errors")), errors)

    # the dashboard shows the replay frozen as the policy decision's evidence (one policy)
    from tianping.demo import NEXT_POLICY
    from tianping.report.figures import label as heading

    one = cli_json(home, "policy", "replay", NEXT_POLICY, "--from", first, "--to", str(end))
    page_text = page(demo, "/dashboard/after-sales")
    shown = next(t for t in tables(page_text) if heading("honest_refused_rate") in t["rows"][0])
    _same_errors("dashboard", as_dicts(shown), one["two-sided errors"])
