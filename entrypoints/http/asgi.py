"""An ASGI application factory for process managers that run several workers.

``eyewear serve`` runs one process. For several, let uvicorn (or gunicorn with uvicorn workers)
start them: ``uvicorn --factory entrypoints.http.asgi:create --workers 4 --no-proxy-headers`` (or
``--forwarded-allow-ips`` naming your proxies: uvicorn otherwise believes ``X-Forwarded-For`` from
any loopback peer, which the token endpoint's per-address throttle counts by). Each worker builds its
own container from the same ``EYEWEAR_*`` settings; with ``PROMETHEUS_MULTIPROC_DIR`` set,
``/metrics`` answers for all of them (docs/operations.md).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from entrypoints.container import Container
from entrypoints.http.app import create_app
from entrypoints.logging_setup import configure_logging
from entrypoints.settings import SettingsError, load_settings


def create() -> FastAPI:
    """Called once in each worker process; a malformed setting stops it with one line."""
    try:
        settings = load_settings()
    except SettingsError as error:
        raise SystemExit(f"eyewear: {error}") from None
    configure_logging(settings.log_level, settings.log_format)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn configured its own handlers before calling us: route its lines through structlog's.
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    return create_app(Container(settings=settings))
