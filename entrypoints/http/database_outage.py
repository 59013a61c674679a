"""While MongoDB cannot be reached: 503 with ``Retry-After``, never a 500, and quickly when known.

Two ways to know. The embedded server's supervisor says so (``app.state.database_watch``, see
`adapters.embedded.serving`): then a call that needs the database is answered at once instead
of waiting the driver's whole timeout. Otherwise the driver says so, by the error it raises
after its timeout (no server to select, a network error, a client-side timeout): that is a 503
too, since the request was fine and a retry may succeed.
"""

from __future__ import annotations

from typing import Any, Protocol

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure, PyMongoError
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.embedded import ServerHealth
from entrypoints.http.problems import problem_response

log = structlog.get_logger(__name__)
#: Routes that reach the database; health, metrics, keys and the docs answer without it.
GATED_PREFIXES = ("/api/", "/oauth/")
#: ``Retry-After`` after a driver timeout whose cause this process does not know.
UNKNOWN_OUTAGE_RETRY_AFTER = 5


class DatabaseWatch(Protocol):
    """Anything that knows the database's health (the embedded server does)."""

    @property
    def health(self) -> ServerHealth: ...


def database_health(app: Any) -> ServerHealth | None:
    """What the app's watch says, or None when nothing watches the database (a configured URL)."""
    watch: DatabaseWatch | None = getattr(getattr(app, "state", None), "database_watch", None)
    return None if watch is None else watch.health


def unreachable(error: PyMongoError) -> bool:
    """No server answered in time: selection, network and client-side timeouts, not a bad command."""
    return isinstance(error, ConnectionFailure) or error.timeout


def unavailable_response(retry_after: int) -> JSONResponse:
    return problem_response(
        503, "the database cannot be reached at the moment; retry later", headers={"Retry-After": str(retry_after)}
    )


class DatabaseOutageGate:
    """Answers 503 before routing while the watch knows the database is down (a pure ASGI middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(GATED_PREFIXES):
            health = database_health(scope.get("app"))
            if health is not None and not health.available:
                await unavailable_response(health.retry_after)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_database_outage(app: FastAPI) -> None:
    """The gate, and the mapping of the driver's timeouts to 503 (other driver errors stay 500)."""
    app.add_middleware(DatabaseOutageGate)

    @app.exception_handler(PyMongoError)
    async def database_error(request: Request, error: PyMongoError) -> JSONResponse:
        if not unreachable(error):
            raise error  # a bug, not an outage: the request id middleware answers 500 and logs it
        health = database_health(request.app)
        retry_after = UNKNOWN_OUTAGE_RETRY_AFTER if health is None or health.available else health.retry_after
        log.warning("http.database.unavailable", error=type(error).__name__, detail=str(error).splitlines()[0][:300])
        return unavailable_response(retry_after)
