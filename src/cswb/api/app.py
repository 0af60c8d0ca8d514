"""The application factory: the REST API under ``/api/v1`` and the web pages, in one app."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import duckdb
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from cswb import __version__
from cswb.api import analytics, auth, cases, docs, routes
from cswb.api.errors import GuardMiddleware, install_error_handlers
from cswb.api.reader import StoreReader
from cswb.api.security import BodyLimitMiddleware, audit_refusal, unauthenticated
from cswb.errors import AuthenticationError, CswbError, NotFoundError, PermissionDeniedError
from cswb.logging import get_logger
from cswb.security.runtime import Platform
from cswb.settings import Settings
from cswb.storage import open_analytic_store
from cswb.web import dashboard, pages, session
from cswb.web.templating import STATIC_DIR, build_templates

log = get_logger("api")

DESCRIPTION = """Counts and provenance of the calls for service loaded into cswb's analytic
store. Every response is an allow-list of aggregate fields: no call's details leave the server.
Every error has the shape `{"error": {"code": ..., "message": ..., "status": ...}}`."""


def create_app(settings: Settings) -> FastAPI:
    """A new app over the analytic store named by ``settings`` (nothing is shared)."""
    store = open_analytic_store(settings.resolved_store_url, settings)
    reader = StoreReader(store)
    platform = Platform(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        platform.start()
        if settings.api_rollups and settings.api_rollup_warm_level:
            threading.Thread(target=_warm, args=(reader, settings.api_rollup_warm_level),
                             name="cswb-rollups", daemon=True).start()
        yield
        platform.stop()
        reader.close()

    app = FastAPI(title="cswb API", version=__version__, description=DESCRIPTION,
                  openapi_url=docs.OPENAPI_PATH, docs_url=None, redoc_url=None,
                  lifespan=lifespan)
    app.state.settings = settings
    app.state.reader = reader
    app.state.platform = platform
    app.state.templates = build_templates()
    app.state.swagger_assets = docs.swagger_assets()
    install_error_handlers(app)
    app.add_exception_handler(PermissionDeniedError, audit_refusal)
    app.add_exception_handler(NotFoundError, audit_refusal)
    app.add_exception_handler(AuthenticationError, unauthenticated)
    # The case routes are matched first: they are the most frequent requests, and routes are
    # matched in order (no two routers share a path, so the order changes nothing else).
    app.include_router(cases.router)
    app.include_router(auth.router)
    app.include_router(routes.router)
    app.include_router(analytics.router)
    app.include_router(docs.router)
    app.include_router(pages.router)
    app.include_router(session.router)
    app.include_router(dashboard.router)
    if app.state.swagger_assets is not None:
        app.mount(docs.SWAGGER_ASSETS_PATH, StaticFiles(directory=app.state.swagger_assets),
                  name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_bytes)
    app.add_middleware(GuardMiddleware, docs_path=docs.DOCS_PATH,
                       chart_paths=frozenset(p.path for p in dashboard.PAGES))
    return app


def _warm(reader: StoreReader, area_level: str) -> None:
    """Build the roll-ups of one area level at start-up, so first requests find them (a
    failure is logged; requests then build them, or report the error, themselves)."""
    try:
        reader.warm(area_level)
    except (CswbError, duckdb.Error) as exc:
        log.warning("roll-ups not built at start-up: %s", type(exc).__name__)
