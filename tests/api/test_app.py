"""The app's start-up as ``tianping serve`` runs it."""

from __future__ import annotations

import gc
import threading

from fastapi.testclient import TestClient

from tianping.api.app import create_app
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
            # the warming thread freezes again what computing the pages allocated
            assert gc.get_freeze_count() >= frozen
        assert frozen > 10_000  # the imported modules and the app: out of the collector's way
    finally:
        _join_warming()
        gc.unfreeze()


def test_an_app_built_by_default_leaves_the_collector_alone(tmp_path):
    gc.unfreeze()
    with TestClient(create_app(Settings(home=tmp_path), warm_dashboard=True)):
        _join_warming()
        assert gc.get_freeze_count() == 0
