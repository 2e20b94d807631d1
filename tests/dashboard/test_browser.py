"""End to end in headless Chromium: the server on demo data, signed in, page by page.

Needs Debian's ``chromium`` and Playwright's Python package (no downloaded browser): CI
installs both; elsewhere the test is skipped with the reason. Screenshots are saved in
``$TIANPING_SCREENSHOTS`` (default: a temp dir, printed).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from refund_helpers import order_json

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIANPING = str(Path(sys.executable).parent / "tianping")

playwright_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright's Python package is not installed (pip install -e '.[dev]')",
)
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(home: Path, *args: str) -> str:
    r = subprocess.run([TIANPING, "--home", str(home), *args], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "TIANPING_HOME": str(home)})  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _seed_decisions(home: Path) -> dict[str, int]:
    """Rules naming Ada, Oli and Bo (two of three); a policy change proposed by Dan with a
    replay of the demo's refunds as evidence, and a spend proposed by Oli himself."""
    rules = home / "rules.yaml"
    rules.write_text("default:\n  approvers: [Ada, Oli, Bo]\n  required: 2\n")
    _cli(home, "decision", "rules", "set", str(rules), "--actor", "Ada")
    _cli(home, "decision", "propose", "--kind", "refund_policy", "--title", "Adopt Aug-2024 rules",
         "--policy", "taobao-2024-08", "--actor", "Dan",
         "--evidence", "policy-replay:taobao-2024-08@2024-05-01..2024-05-30")  # fmt: skip
    _cli(home, "decision", "propose", "--kind", "spend", "--title", "Door-delivery pilot",
         "--amount", "800000", "--purpose", "door delivery in 3 cities", "--actor", "Oli")  # fmt: skip
    return {"policy": 1, "own": 2}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e")
    _cli(home, "demo", "--small")
    keys = {name: _cli(home, "keys", "create", "--role", role, "--name", name, *extra)
            for name, role, extra in (
                ("Ada", "admin", ()), ("Oli", "operator", ()), ("svc", "service", ()),
                ("Shop One", "merchant", ("--merchant", "m1")),
                ("Shop Two", "merchant", ("--merchant", "m2")))}  # fmt: skip
    decisions = _seed_decisions(home)
    port = _free_port()
    proc = subprocess.Popen(
        [TIANPING, "--home", str(home), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "TIANPING_TICK_SECONDS": "0"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"server did not start: {proc.stderr.read().decode()[-2000:]}")
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
        yield {"base": base, "keys": keys, "refunds": refunds, "api": api, "decisions": decisions}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


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
    rid = server["refunds"]["e1"]["id"]
    quality = api.get("/v1/merchants/m1/quality").json()
    row = page.locator("tr", has=page.get_by_role("link", name="m1", exact=True))
    assert row.locator("td.score").inner_text() == f"{quality['score']:.2f}"
    assert server["refunds"]["e1"]["status"] == "manual_review"  # an empty parcel is checked
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
                 "/dashboard/decisions", "/dashboard/decisions/1", "/dashboard/experiments",
                 "/dashboard/races"):  # fmt: skip
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
