"""The FastAPI application: built from a container, resources started in its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from adapters.embedded import serving
from adapters.mongo.migrations import migrate
from entrypoints.container import Container, resolve
from entrypoints.http import audit, health, ingestions, oauth, products, stores
from entrypoints.http.body_limit import BodyLimitMiddleware
from entrypoints.http.database_outage import install_database_outage
from entrypoints.http.metrics_middleware import RequestTelemetryMiddleware
from entrypoints.http.openapi import install_security_schemes
from entrypoints.http.problems import install_problem_handlers
from entrypoints.http.request_id import RequestIdMiddleware
from entrypoints.run_reaper import consuming, run_reaper

log = structlog.get_logger(__name__)
StartupHook = Callable[[Container], Awaitable[None]]
#: Runs this process executes at once when it executes the runs it accepts (no job engine).
IN_PROCESS_RUNS = 4


def _mongo_probe(container: Container) -> Callable[[], Awaitable[Any]]:
    async def probe() -> Any:
        database = await resolve(container.database)
        return await asyncio.wait_for(database.command("ping"), timeout=2.0)

    return probe


def _cache_probe(container: Container) -> Callable[[], Awaitable[Any]]:
    """Redis answers a ping (or the memory cache follows the change stream); else reads bypass it."""

    async def probe() -> Any:
        store = await resolve(container.cache_store)
        return await asyncio.wait_for(store.ping(), timeout=1.0)

    return probe


def create_app(container: Container, on_startup: StartupHook | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await container.init_resources()  # type: ignore[misc]
        stack = contextlib.AsyncExitStack()
        try:
            # Idempotent, so a server never runs on a catalog without its validators and indexes.
            changes = await migrate(await resolve(container.database))
            if changes:
                log.info("mongodb.migrated", changes=changes)
            app.state.use_cases = await resolve(container.use_cases)
            app.state.security = await resolve(container.security)
            app.state.metrics = await resolve(container.metrics)
            app.state.oauth = await resolve(container.oauth_server)
            app.state.readiness_probes = {"mongodb": _mongo_probe(container), "cache": _cache_probe(container)}
            runs = app.state.runs = await resolve(container.runs)
            await stack.enter_async_context(run_reaper(runs))  # what a killed predecessor left is settled first
            if not runs.elsewhere:  # no job engine: this process executes the runs it accepts
                await stack.enter_async_context(consuming(runs, IN_PROCESS_RUNS))
            # The embedded server's supervisor, when it is behind our URL: known outages answer 503 at once.
            app.state.database_watch = serving(await resolve(container.mongo_url))
            if on_startup is not None:
                await on_startup(container)
            yield
        finally:
            await stack.aclose()  # runs going on are given up (interrupted), then the sweeps end
            await container.shutdown_resources()  # type: ignore[misc]

    # Swagger UI and ReDoc served from the installed package (fastapi-offline), never from a CDN:
    # the docs work on a machine without internet.
    app = FastAPIOffline(
        title="Eyewear catalog",
        version="0.1.0",
        description="Frame styles and their SKUs: validated, enriched, searchable.",
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    install_security_schemes(app)
    install_problem_handlers(app)
    install_database_outage(app)  # innermost middleware: inside the request id and the telemetry
    app.add_middleware(BodyLimitMiddleware, larger={"/api/v1/ingestions": ingestions.MAX_FEED_BYTES})
    app.add_middleware(RequestTelemetryMiddleware)  # inside the request id: its log line carries it
    app.add_middleware(RequestIdMiddleware)  # outermost: every answer, a 413 too, carries the id
    app.include_router(health.router)
    app.include_router(products.router)
    app.include_router(ingestions.router)
    app.include_router(stores.router)
    app.include_router(audit.router)
    app.include_router(audit.keys_router)
    app.include_router(oauth.router)
    return app
