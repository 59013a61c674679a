"""Liveness and readiness (CONTRACT.md 4.1)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from adapters.metrics.prometheus import CONTENT_TYPE
from entrypoints.http.database_outage import database_health

router = APIRouter(tags=["health"])


@router.get("/health/live")
async def live(request: Request) -> JSONResponse:
    """Fails only where restarting the process may help: the embedded database cannot be restarted.

    A database that is down but being restarted keeps the process live (it is not ready).
    """
    health = database_health(request.app)
    if health is not None and not health.live:
        body = {"status": "failing", "checks": {"mongodb": str(health.state)}, "detail": health.detail}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format; open, like the health endpoints (scrapers carry no tokens)."""
    exporter = request.app.state.metrics
    return Response(exporter.exposition(), media_type=CONTENT_TYPE)


@router.get("/health/ready")
async def ready(request: Request) -> JSONResponse:
    """MongoDB down means unavailable; a failing cache only degrades (reads go on without it)."""
    probes: dict[str, Any] = request.app.state.readiness_probes
    health = database_health(request.app)
    checks: dict[str, str] = {}
    for name, probe in probes.items():
        if name == "mongodb" and health is not None and not health.available:
            checks[name] = "error"  # known to be down: no need to wait for the ping to time out
            continue
        try:
            await probe()
            checks[name] = "ok"
        except Exception:  # a probe's failure is the answer, not an error of this endpoint
            checks[name] = "error"
    if checks.get("mongodb") != "ok":
        return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)
    status = "ok" if all(v == "ok" for v in checks.values()) else "degraded"
    return JSONResponse({"status": status, "checks": checks})
