"""The FastAPI app factory. Engines and sessions are built at start-up, never at import."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from tianping import __version__
from tianping.api import errors
from tianping.api.deps import Store
from tianping.settings import Settings

#: Modules whose ``router`` the app includes, one per domain.
ROUTER_MODULES = ("tianping.refunds.endpoints", "tianping.coupons.endpoints")


def routers() -> list[APIRouter]:
    """Every domain's router, in :data:`ROUTER_MODULES` order."""
    return [importlib.import_module(name).router for name in ROUTER_MODULES]


def create_app(settings: Settings, *, env=None) -> FastAPI:
    """The tianping JSON API.

    Args:
        settings: where the store is (``settings.store``).
        env: the refund lifecycle's clock, SLA config and norms cache; by default the system
            clock and :meth:`RefundConfig.from_environ`.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from tianping.refunds.lifecycle import RefundConfig
        from tianping.refunds.service import Env
        from tianping.store import init_schema, make_engine, make_sessionmaker

        engine = make_engine(settings.store)
        init_schema(engine)
        app.state.store = Store(
            make_sessionmaker(engine), env or Env(config=RefundConfig.from_environ())
        )
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="tianping",
        version=__version__,
        description="Refund decisions, red packets and a balanced ledger for a marketplace.",
        lifespan=lifespan,
    )
    errors.install(app)
    for router in routers():
        app.include_router(router)
    return app
