"""``X-Request-ID``: taken from the caller when sane, else made; bound for logs and problems.

Bound in structlog's contextvars for the whole request, so every log line written while it is
served (structlog or stdlib, from any layer) carries ``request_id`` without passing it around.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
current_request_id: ContextVar[str] = ContextVar("request_id", default="-")


def sane_request_id(candidate: str | None) -> str:
    return candidate if candidate and _SANE.fullmatch(candidate) else uuid.uuid4().hex


class RequestIdMiddleware:
    """A pure ASGI middleware: cheaper than BaseHTTPMiddleware and safe with streaming bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = sane_request_id(incoming)
        token = current_request_id.set(request_id)
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        scope.setdefault("state", {})["request_id"] = request_id

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Unhandled errors still answer with a problem that carries the correlation id.
            logger.exception("http.request.failed")
            if started:
                raise
            body = json.dumps(
                {
                    "type": "about:blank",
                    "title": "Internal server error",
                    "status": 500,
                    "detail": "an unexpected error occurred; quote the correlation id when reporting it",
                    "correlation_id": request_id,
                }
            ).encode()
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_with_id({"type": "http.response.body", "body": body})
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            current_request_id.reset(token)
