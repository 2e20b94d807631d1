"""End to end in headless Chromium: the server on demo data, signed in, page by page.

Needs Debian's ``chromium`` and Playwright's Python package (no downloaded browser): CI
installs both; elsewhere the test is skipped with the reason. Screenshots are saved in
``$TIANPING_SCREENSHOTS`` (default: a temp dir, printed).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from refund_helpers import order_json
from serving import TIANPING, running_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

playwright_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright's Python package is not installed (pip install -e '.[dev]')",
)
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium", allow_module_level=True)


def _cli(home: Path, *args: str) -> str:
    r = subprocess.run([TIANPING, "--home", str(home), *args], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "TIANPING_HOME": str(home)})  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _seed_decisions(home: Path) -> dict[str, int]:
    """Rules naming Ada, Oli and Bo (two of three); a policy change proposed by Dan with a
    replay of the demo's refunds as evidence, and a spend proposed by Oli himself (the demo's
    own decisions, and its quorum of Li Na, Wang Fang and Zhang Wei, come first)."""
    rules = home / "rules.yaml"
    rules.write_text("default:\n  approvers: [Ada, Oli, Bo]\n  required: 2\n")
    _cli(home, "decision", "rules", "set", str(rules), "--actor", "Ada")
    policy = _cli(home, "decision", "propose", "--kind", "refund_policy", "--title",
                  "Adopt Aug-2024 rules", "--policy", "taobao-2024-08", "--actor", "Dan",
                  "--evidence", "policy-replay:taobao-2024-08@2024-05-01..2024-05-30")  # fmt: skip
    own = _cli(home, "decision", "propose", "--kind", "spend", "--title", "Door-delivery pilot",
               "--amount", "800000", "--purpose", "door delivery in 3 cities", "--actor", "Oli")  # fmt: skip
    return {"policy": _number(policy), "own": _number(own)}


def _number(proposed: str) -> int:
    return int(re.match(r"decision #(\d+) proposed", proposed).group(1))


def _demo_keys(home: Path) -> dict[str, str]:
    """The keys the demo made for its people: name -> key (``<home>/demo-keys.txt``)."""
    lines = (home / "demo-keys.txt").read_text().splitlines()
    return {line.split("\t")[0]: line.split("\t")[2] for line in lines if not line.startswith("#")}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e")
    _cli(home, "demo", "--small")
    keys = {name: _cli(home, "keys", "create", "--role", role, "--name", name, *extra)
            for name, role, extra in (
                ("Ada", "admin", ()), ("Oli", "operator", ()), ("svc", "service", ()),
                ("Shop One", "merchant", ("--merchant", "m1")),
                ("Shop Two", "merchant", ("--merchant", "m2")))}  # fmt: skip
    keys |= _demo_keys(home)
    decisions = _seed_decisions(home)
    with running_server("--home", str(home)) as base:
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {keys['svc']}"})
        refunds = {}
        for order_id, merchant, reason in (("e1", "m1", "empty_parcel"), ("e2", "m2", "quality")):
            assert (
                api.post(
                    "/v1/orders", json=order_json(order_id, 30_000, merchant_id=merchant)
                ).status_code
                == 201
            )
            body = {"order_id": order_id, "reason": reason, "requested_amount_minor": 30_000,
                    "evidence_urls": []}  # fmt: skip
            r = api.post("/v1/refund-requests", json=body, headers={"Idempotency-Key": order_id})
            assert r.status_code == 201, r.text
            refunds[order_id] = r.json()
        yield {
            "base": base,
            "keys": keys,
            "refunds": refunds,
            "api": api,
            "decisions": decisions,
            "home": home,
        }


@pytest.fixture(scope="module")
def browser():
    shots = Path(
        os.environ.get("TIANPING_SCREENSHOTS") or tempfile.mkdtemp(prefix="tianping-shots-")
    )
    shots.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {shots}")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        b.shots = shots
        yield b
        b.close()


def _sign_in(page, base: str, key: str) -> None:
    page.goto(f"{base}/dashboard/")
    assert "/dashboard/sign-in" in page.url
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def _as(server, role: str) -> dict:
    return {"Authorization": f"Bearer {server['keys'][role]}"}


#: What an empty state must do: say why, and name what fills it (a command, a route, a form).
CHECK_PAGE = """() => {
  const problems = [], empties = [];
  const text = (el) => el.textContent.replace(/\\s+/g, ' ').trim();
  for (const el of document.querySelectorAll('main .empty')) {
    empties.push(text(el));
    if (!el.querySelector('code, a') || text(el).length < 40)
      problems.push('an empty state without why and what fills it: ' + text(el));
  }
  for (const t of document.querySelectorAll('main table')) {
    const data = [...t.querySelectorAll('tr')].filter(r => r.querySelector('td:not(.empty)'));
    if (!data.length && !t.querySelector('.empty'))
      problems.push('a table without rows or an explanation: ' + text(t).slice(0, 80));
  }
  for (const svg of document.querySelectorAll('main svg')) {
    const marks = svg.querySelectorAll('polyline, circle, path, line.ci, rect');
    if (!marks.length) problems.push('a chart with axes and no marks: ' + svg.getAttribute('aria-label'));
  }
  for (const sec of document.querySelectorAll('main section')) {
    const body = [...sec.children].filter(c => !/^H[1-6]$/.test(c.tagName));
    if (!body.length || !text(sec).replace(text(sec.querySelector('h2, h3') || sec), '').trim())
      problems.push('an empty section: ' + text(sec).slice(0, 60));
  }
  return {problems, empties};
}"""


def _walk(page, base: str, shots: Path, label: str) -> dict[str, list[str]]:
    """Every page a staff member reaches by following links from the overview (three of the
    merchants' pages): ``path -> empty states shown``. Fails on an unexplained empty section."""
    todo, seen, found = ["/dashboard/"], set(), {}
    while todo:
        path = todo.pop(0)
        merchants = sum(p.startswith("/dashboard/merchants/") for p in seen)
        if path in seen or (path.startswith("/dashboard/merchants/") and merchants >= 3):
            continue  # three merchants' pages show what every one does
        seen.add(path)
        response = page.goto(base + path)
        assert response.status == 200, path
        result = page.evaluate(CHECK_PAGE)
        assert not result["problems"], (path, result["problems"])
        found[path] = result["empties"]
        name = path.strip("/").replace("/", "-").replace(":", "") or "root"
        page.screenshot(path=shots / f"walk-{label}-{name}.png", full_page=True)
        links = page.eval_on_selector_all(
            "a[href^='/dashboard/']", "as => as.map(a => a.getAttribute('href'))"
        )
        for href in links:
            href = href.split("?")[0].split("#")[0]
            if href not in seen and "sign-" not in href:
                todo.append(href)
    return found


def test_every_page_shows_data_or_says_why(server, browser):
    """On the demo's home every page a person can reach shows data; where a section is empty
    it says why and what fills it. Desktop and phone, with screenshots."""
    base = server["base"]
    for label, viewport in (("desktop", {"width": 1280, "height": 900}),
                            ("phone", {"width": 390, "height": 844})):  # fmt: skip
        page = browser.new_page(viewport=viewport)
        _sign_in(page, base, server["keys"]["Li Na"])
        found = _walk(page, base, browser.shots, label)
        print(f"{label}: {len(found)} pages walked")
        assert len(found) >= 14  # overview, lists, two experiments, a race, decisions, merchants
        kinds = {p.split("/")[2] or "overview" for p in found}
        assert {
            "overview",
            "experiments",
            "races",
            "after-sales",
            "decisions",
            "merchants",
        } <= kinds
        for path in ("/dashboard/", "/dashboard/after-sales", "/dashboard/experiments",
                     "/dashboard/races", "/dashboard/decisions", "/dashboard/races/homepage_feed_race"):  # fmt: skip
            assert found[path] == [], (path, found[path])  # the demo fills these entirely
        merchant = next(p for p in found if p.startswith("/dashboard/merchants/"))
        assert found[merchant] == []  # its refund requests are there
        page.goto(base + "/dashboard/races/homepage_feed_race")
        lines = page.locator("article.report svg polyline").all()
        assert lines and all(len(line.get_attribute("points").split()) >= 2 for line in lines)
        page.goto(base + "/dashboard/after-sales")
        assert page.locator("article.card[data-refund]").count() >= 1  # waiting for a person
        assert page.locator("table.replay").count() >= 3  # the frozen replay, as tables
        assert "¥" in page.locator("table.replay").first.inner_text() or "¥" in page.content()
        page.close()


def test_the_demo_report_looks_right(server, browser):
    """The report on its own: CJK title drawn with a real font, round axis ticks with 0, NPS in
    points, the refund replay with human headers and yuan."""
    home = server["home"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto((home / "report.html").as_uri())
    title = page.locator("h1 small")
    assert title.inner_text() == "天平"
    # its font stack names a CJK font, and the machine has it (CI installs fonts-noto-cjk)
    family = title.evaluate("e => getComputedStyle(e).fontFamily")
    assert "Noto Sans CJK SC" in family, family
    if shutil.which("fc-list"):
        fonts = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True)
        assert "Noto Sans CJK SC" in fonts.stdout
    ticks = page.locator("#experiment svg text.axis").all_text_contents()
    percents = [t for t in ticks if t.endswith("%")]
    assert "0%" in percents and all(re.fullmatch(r"[-+]?\d+(\.\d+)?%", t) for t in percents)
    assert all(float(t.strip("%+")) % 5 == 0 for t in percents), percents  # round steps
    table = page.locator("#refunds table").first.text_content()  # as written, not upper-cased
    assert "Refunded by merchant" in table and "¥" in table and "refunded_by_merchant" not in table
    nps = page.locator("#experiment tr", has_text="NPS").locator("td").all_inner_texts()
    assert "(points)" in nps[0] and all(abs(float(v)) > 1 for v in nps[2:4]), nps  # not 0.35
    page.screenshot(path=browser.shots / "report-desktop.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the report is {overflow}px wider than a phone"
    page.screenshot(path=browser.shots / "report-phone.png", full_page=True)
    page.close()


def test_an_operator_walks_every_page_and_approves_a_refund(server, browser):
    base, api = server["base"], server["api"]
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    _sign_in(page, base, server["keys"]["Oli"])
    assert page.get_by_role("heading", name="Overview", exact=True).is_visible()
    assert page.locator(".tile").count() >= 5
    assert page.locator("figure svg[role=img][aria-label='GMV per day']").count() == 1
    page.screenshot(path=browser.shots / "overview.png", full_page=True)

    page.get_by_role("link", name="Experiments").click()
    page.get_by_role("link", name="checkout_red_packet").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Experiment checkout_red_packet").is_visible()
    assert page.locator("article.report svg").count() >= 1
    page.screenshot(path=browser.shots / "experiment.png", full_page=True)

    page.get_by_role("link", name="Races").click()
    page.get_by_role("link", name="homepage_feed_race").click()
    assert page.get_by_role("heading", name="Race homepage_feed_race").is_visible()
    assert page.get_by_role("heading", name="Chance to be best").is_visible()
    page.screenshot(path=browser.shots / "race.png", full_page=True)

    queue = api.get("/v1/manual-reviews", headers=_as(server, "Oli")).json()
    page.get_by_role("link", name="After-sales").click()
    assert page.get_by_role("heading", name=f"Manual review queue ({queue['total']})").is_visible()
    waiting = [r for r in queue["items"] if r["status"] == "manual_review"]
    assert waiting, "the demo leaves requests in manual review"
    rid = waiting[0]["id"]
    merchant = waiting[0]["merchant_id"]
    quality = api.get(f"/v1/merchants/{merchant}/quality").json()
    row = page.locator("tr", has=page.get_by_role("link", name=merchant, exact=True))
    if row.count():  # on the first page of the merchant table
        assert row.locator("td.score").inner_text() == f"{quality['score']:.2f}"
    card = page.locator(f'article[data-refund="{rid}"]')
    card.get_by_label(f"Decision for refund {rid}").select_option("refund_only")
    card.get_by_label("Note").fill("photos match")
    card.get_by_role("button", name="Decide").click()
    assert page.get_by_role("status").inner_text() == f"Refund {rid} decided."
    assert api.get(f"/v1/refund-requests/{rid}").json()["status"] == "refunded"
    assert page.locator(f'article[data-refund="{rid}"]').count() == 0
    page.screenshot(path=browser.shots / "after-sales.png", full_page=True)

    assert page.get_by_role("heading", name="Latest policy replay").is_visible()
    assert page.get_by_role("link", name=f"decision #{server['decisions']['policy']}").is_visible()

    page.get_by_role("link", name="Decisions").click()
    assert page.get_by_role("heading", name="Decisions").is_visible()
    page.get_by_role("link", name="Adopt Aug-2024 rules").click()
    api_view = api.get(f"/v1/decisions/{server['decisions']['policy']}", headers=_as(server, "Oli"))
    digests = page.locator("code.digest").all_inner_texts()
    assert digests == [e["sha256"] for e in api_view.json()["evidence"]]
    page.get_by_label("Comment").fill("replay looks right")
    page.get_by_role("button", name="Approve").click()
    assert page.get_by_role("status").inner_text() == "Your approve vote was recorded."
    assert page.locator("dd.approvals").inner_text() == "1/2"
    page.screenshot(path=browser.shots / "decision.png", full_page=True)
    assert page.get_by_role("button", name="Approve").count() == 0  # voted: no second ballot
    assert "Oli already voted on this decision" in page.locator("#no-vote").inner_text()
    page.goto(f"{base}/dashboard/decisions/{server['decisions']['own']}")
    assert page.get_by_role("button", name="Approve").count() == 0  # one's own proposal
    assert "Oli proposed this decision and cannot vote on it" in page.locator(
        "#no-vote").inner_text()  # fmt: skip

    page.get_by_role("link", name="All decisions").click()
    page.get_by_label("Title").fill("Red packets for 618")
    page.get_by_label("Kind").select_option("spend")
    page.get_by_label("Purpose").fill("618 campaign")
    page.get_by_role("button", name="Propose").click()  # no amount: refused on the page
    assert "a spend request needs an amount" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Title").input_value() == "Red packets for 618"
    page.get_by_label("Amount (yuan)").fill("50000")
    page.get_by_role("button", name="Propose").click()
    assert "proposed." in page.get_by_role("status").inner_text()
    assert page.get_by_role("link", name="Red packets for 618").is_visible()
    page.get_by_role("button", name="Sign out").click()
    assert "/dashboard/sign-in" in page.url
    page.close()


def test_a_merchant_sees_its_shop_and_not_another(server, browser):
    base = server["base"]
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    _sign_in(page, base, server["keys"]["Shop One"])
    assert page.url.endswith("/dashboard/merchants/m1")
    own, other = server["refunds"]["e1"]["id"], server["refunds"]["e2"]["id"]
    assert page.locator(f'tr[data-refund="{own}"]').count() == 1
    assert other not in page.content()
    shown = page.locator("#quality-score").inner_text().split()[0]
    api_score = server["api"].get("/v1/merchants/m1/quality").json()["score"]
    assert shown == f"{api_score:.2f}"
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone"
    page.screenshot(path=browser.shots / "merchant-phone.png", full_page=True)
    response = page.goto(f"{base}/dashboard/merchants/m2")
    assert response.status == 404 and other not in page.content()
    response = page.goto(f"{base}/dashboard/after-sales")
    assert response.status == 403
    page.close()


def test_staff_pages_fit_a_phone(server, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    _sign_in(page, server["base"], server["keys"]["Ada"])
    for path in ("/dashboard/", "/dashboard/experiments/checkout_red_packet",
                 "/dashboard/races/homepage_feed_race", "/dashboard/after-sales",
                 "/dashboard/decisions", "/dashboard/decisions/1", "/dashboard/decisions/3",
                 "/dashboard/experiments", "/dashboard/races"):  # fmt: skip
        page.goto(server["base"] + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than a phone"
        name = path.strip("/").replace("/", "-") or "overview"
        page.screenshot(path=browser.shots / f"phone-{name}.png", full_page=True)
    page.close()


def test_pages_answer_fast_once_warm(server):
    """Server time per page on the demo data (printed; the speed target is checked by eye)."""
    client = httpx.Client(base_url=server["base"], follow_redirects=False)
    r = client.post("/dashboard/sign-in", data={"key": server["keys"]["Ada"]})
    client.cookies = r.cookies
    for path in ("/dashboard/", "/dashboard/experiments/checkout_red_packet"):
        client.get(path)  # warm
    for path in ("/dashboard/", "/dashboard/experiments", "/dashboard/experiments/checkout_red_packet",
                 "/dashboard/races", "/dashboard/races/homepage_feed_race",
                 "/dashboard/after-sales", "/dashboard/decisions", "/dashboard/decisions/1",
                 "/dashboard/merchants/m1"):  # fmt: skip
        t = time.perf_counter()
        assert client.get(path).status_code == 200, path
        print(f"{path}: {(time.perf_counter() - t) * 1000:.0f} ms")
