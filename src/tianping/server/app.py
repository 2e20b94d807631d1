"""The FastAPI app factory. Engines and sessions are built at start-up, never at import."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tianping import __version__
from tianping.api import errors
from tianping.api.batch import Batcher
from tianping.api.deps import Store
from tianping.auth.deps import RecentKeys
from tianping.dashboard import routes as dashboard
from tianping.dashboard import views
from tianping.server import docs
from tianping.settings import Settings, load_settings

log = logging.getLogger(__name__)

#: Largest request body accepted, in bytes (a full exposure batch is ~200 KB).
MAX_BODY_BYTES = 1 << 20


def routers() -> list[APIRouter]:
    """Every domain's router, one per domain (imported here, at the edge, so the layering
    check sees what the app assembles)."""
    from tianping.assignments import endpoints as assignments
    from tianping.auth import endpoints as auth
    from tianping.coupons import endpoints as coupons
    from tianping.governance import endpoints as governance
    from tianping.refunds import endpoints as refunds

    return [m.router for m in (refunds, coupons, governance, assignments, auth)]


def _freeze_heap() -> None:
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings,
    *,
    env=None,
    tick_seconds: float = 0.0,
    warm_dashboard: bool = False,
    freeze_startup: bool = False,
) -> FastAPI:
    """The tianping JSON API.

    Args:
        settings: where the store is (``settings.store``).
        env: the refund lifecycle's clock, SLA config and norms cache; by default the system
            clock and :meth:`RefundConfig.from_environ`.
        tick_seconds: when positive, fire due SLA timers in the background this often (each
            fires once even with several workers ticking).
        warm_dashboard: compute the dashboard's warehouse figures in the background at start
            (as ``tianping serve`` does), so the first visitor does not wait for them.
        freeze_startup: once started, move everything allocated so far (imported modules,
            the platform references) out of the garbage collector's reach (``gc.freeze``),
            as ``tianping serve`` does. Otherwise each full collection walks those objects
            again while every request in flight waits: measured 30-90 ms pauses, the p99 of
            the refund benchmark.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from tianping.races.refund_arms import arm_for
        from tianping.refunds.env import Env
        from tianping.refunds.lifecycle import RefundConfig
        from tianping.store import init_schema, make_engine, make_sessionmaker
        from tianping.store.db import WalCheckpointer

        engine = make_engine(settings.store)
        init_schema(engine)
        checkpointer = WalCheckpointer(engine) if WalCheckpointer.wanted(engine) else None
        lifecycle = env or Env(config=RefundConfig.from_environ())
        if lifecycle.arms is None:  # the served lifecycle always follows the running races
            lifecycle = dataclasses.replace(lifecycle, arms=arm_for)
        store = Store(make_sessionmaker(engine), lifecycle)
        app.state.store = store
        app.state.batcher = Batcher(store)
        app.state.recent_keys = RecentKeys()
        _refresh_norms(store)
        if freeze_startup:
            if warm_dashboard:
                views.import_pages()
            _freeze_heap()
        if warm_dashboard:

            def warm() -> None:
                views.warm(settings, store.sessions, app.state.dashboard_cache)
                if freeze_startup:  # the warehouse's modules and figures, loaded by now
                    _freeze_heap()

            threading.Thread(target=warm, name="dashboard-warm", daemon=True).start()
        ticker = asyncio.create_task(_tick_forever(store, tick_seconds)) if tick_seconds else None
        try:
            yield
        finally:
            if ticker is not None:
                ticker.cancel()
            app.state.batcher.close()
            if checkpointer is not None:
                checkpointer.stop()
            engine.dispose()

    app = FastAPI(
        title="tianping",
        version=__version__,
        description="Refund decisions, red packets and a balanced ledger for a marketplace.",
        lifespan=lifespan,
        telemetry=None if _otel_wanted() else _NO_TELEMETRY,
        docs_url=None,  # served by tianping.server.docs, from the package instead of a CDN
        redoc_url=None,
    )
    errors.install(app)
    docs.install(app)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    for router in routers():
        app.include_router(router)
    dashboard.install(app, settings)
    _document_errors(app)
    return app


def _document_errors(app: FastAPI) -> None:
    """The OpenAPI document names every error status each operation can answer."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = errors.document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


#: FastAPI's native OpenTelemetry, off unless asked for: even with no provider configured it
#: looks the three providers up on every request (3 % of a refund decision's CPU).
_NO_TELEMETRY = {"tracing": False, "metrics": False, "logs": False}


def _otel_wanted() -> bool:
    """``TIANPING_OTEL=1`` keeps FastAPI's OpenTelemetry spans, metrics and logs on."""
    return os.environ.get("TIANPING_OTEL", "").strip().lower() in ("1", "true", "yes")


class BodyLimit:
    """Answer 413 to a request whose body is over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        """Pass the request on, or answer 413 once its body passes ``max_bytes``."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = HTTPException(413, f"the request body is over {self.max_bytes} bytes")
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            body = errors.error_body("payload_too_large", too_large.detail, None)
            return await JSONResponse(body, status_code=413)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # a body streamed without a length
                raise too_large
            return message

        await self.app(scope, counted, send)


def _refresh_norms(store: Store) -> None:
    # The platform references take a pass over every row: refresh them here, outside any
    # request's transaction, at half their lifetime, so requests rarely recompute them.
    norms = store.env.norms
    now = store.env.clock.now()
    store.read(lambda s: norms.refresh(s, now, older_than=norms.ttl / 2))


async def _tick_forever(store: Store, every_seconds: float) -> None:
    from starlette.concurrency import run_in_threadpool

    from tianping.refunds.timers import tick

    while True:
        await asyncio.sleep(every_seconds)
        try:
            await run_in_threadpool(store.transact, lambda s: tick(session=s, env=store.env))
            await run_in_threadpool(_refresh_norms, store)
        except Exception:  # a failed tick is retried at the next one; the server stays up
            log.exception("SLA tick failed")


def from_environment() -> FastAPI:
    """The app as ``tianping serve`` runs it: settings and tick interval from the environment."""
    tick = float(os.environ.get("TIANPING_TICK_SECONDS", "60") or 0)
    return create_app(load_settings(), tick_seconds=tick, warm_dashboard=True, freeze_startup=True)
