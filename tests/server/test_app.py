"""The app's start-up as ``tianping serve`` runs it."""

from __future__ import annotations

import gc
import threading

from fastapi.testclient import TestClient

from tianping.server.app import create_app
from tianping.settings import Settings


def _join_warming() -> None:
    for thread in threading.enumerate():
        if thread.name == "dashboard-warm":
            thread.join(timeout=60)


def test_a_server_freezes_its_start_up_heap(tmp_path):
    gc.unfreeze()
    app = create_app(Settings(home=tmp_path), freeze_startup=True, warm_dashboard=True)
    try:
        with TestClient(app) as client:
            frozen = gc.get_freeze_count()
            assert client.get("/v1/manual-reviews").status_code == 401  # it serves
            _join_warming()
            # the warming thread freezes again what computing the pages allocated; frozen
            # objects freed by reference counting meanwhile leave the permanent generation, so
            # the count may fall a little, never to a fraction of what start-up froze
            assert gc.get_freeze_count() >= 0.9 * frozen
        assert frozen > 10_000  # the imported modules and the app: out of the collector's way
    finally:
        _join_warming()
        gc.unfreeze()


def test_an_app_built_by_default_leaves_the_collector_alone(tmp_path):
    gc.unfreeze()
    with TestClient(create_app(Settings(home=tmp_path), warm_dashboard=True)):
        _join_warming()
        assert gc.get_freeze_count() == 0


def test_root_goes_to_the_dashboard_and_the_api_pages_need_no_cdn(tmp_path):
    import re

    from tianping.server.docs import ASSETS

    with TestClient(create_app(Settings(home=tmp_path))) as client:
        r = client.get("/", follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"] == "/dashboard/"
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
            assert urls and all(u.startswith("/") for u in urls), urls  # nothing off the server
            assert "http" not in html.replace("http-equiv", "")
            for url in urls:
                assert client.get(url).status_code == 200, url
        for name, media in ASSETS.items():
            r = client.get(f"/docs/static/{name}")
            assert r.status_code == 200 and r.headers["content-type"].startswith(media)
            assert len(r.content) > 500
        assert client.get("/docs/static/package.json").status_code == 404
        assert "/docs/static" not in client.get("/openapi.json").text
