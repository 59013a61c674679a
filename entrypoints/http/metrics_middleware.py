"""Per-request telemetry: the CONTRACT.md 5 HTTP metrics and the ``http.request.finished`` log line.

A pure ASGI middleware (no BaseHTTPMiddleware: cheaper, and safe with streaming bodies). The
``route`` label is the matched route's TEMPLATE (``/api/v1/products/{product_id}``), never the
raw path: a path holds product ids and SKUs, and one label value per id would grow the metric
without bound. A path that matches no route is ``unmatched``; an unusual method is ``other``.
"""

from __future__ import annotations

import re
import time
import weakref
from typing import Any, Protocol

import structlog
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Scraped and probed every few seconds: logged at DEBUG so they do not drown the access log.
QUIET_ROUTES = frozenset({"/metrics", "/health/live", "/health/ready"})

log = structlog.get_logger(__name__)
#: Per app: its route templates and their regexes, built on the first request that needs them.
_TEMPLATES: weakref.WeakKeyDictionary[Any, list[tuple[str, re.Pattern[str]]]] = weakref.WeakKeyDictionary()


class HttpMetrics(Protocol):
    def http_request(self, method: str, route: str, status: int, seconds: float) -> None: ...


def route_template(scope: Scope) -> str:
    """The template of the route that served (or would serve) the request; ``unmatched`` when none."""
    path = getattr(scope.get("route"), "path", None)  # FastAPI puts the matched APIRoute here
    if isinstance(path, str):
        return path
    # Plain Starlette routes (/docs, /openapi.json) and requests refused before routing (a 413).
    app = scope.get("app")
    if app is None:
        return UNMATCHED
    if app not in _TEMPLATES:
        _TEMPLATES[app] = _known_templates(app)
    return next((template for template, regex in _TEMPLATES[app] if regex.match(scope["path"])), UNMATCHED)


def _known_templates(app: Any) -> list[tuple[str, re.Pattern[str]]]:
    """Every path template of the app, static ones first, from public APIs only.

    Top-level routes carry their path; routes of included routers are listed by the OpenAPI
    schema (FastAPI does not flatten them into ``app.routes`` any more).
    """
    paths = [route.path for route in getattr(app, "routes", ()) if isinstance(getattr(route, "path", None), str)]
    try:
        paths += list(app.openapi().get("paths", {}))
    except Exception:  # no schema: top-level routes only
        log.warning("http.route_templates.unavailable")
    unique = sorted(dict.fromkeys(paths), key=lambda template: "{" in template)
    return [(template, compile_path(template)[0]) for template in unique]


class RequestTelemetryMiddleware:
    """Counts and times every HTTP request and logs one line when it ends.

    Installed inside RequestIdMiddleware, so the finishing line carries the request id. The
    metrics sink is the app's ``state.metrics`` (set in the lifespan) unless one is given.
    """

    def __init__(self, app: ASGIApp, metrics: HttpMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self._finished(scope, status, time.perf_counter() - started)

    def _finished(self, scope: Scope, status: int, seconds: float) -> None:
        route = route_template(scope)
        method = scope["method"] if scope["method"] in METHODS else "other"
        metrics = self.metrics or _app_metrics(scope)
        if metrics is not None:
            metrics.http_request(method, route, status, seconds)
        emit = log.debug if route in QUIET_ROUTES else log.info
        emit(
            "http.request.finished",
            method=method,
            route=route,
            path=scope.get("path", ""),
            status=status,
            duration_ms=round(seconds * 1000, 3),
        )


def _app_metrics(scope: Scope) -> HttpMetrics | None:
    state: Any = getattr(scope.get("app"), "state", None)
    return getattr(state, "metrics", None)
