"""Request-scoped dependencies: the use cases, the caller, the version precondition."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from domain.errors import ErrorCode, FieldError, ThreatDetected
from domain.threats import too_deep
from entrypoints.container import UseCases
from entrypoints.http.problems import Problem


async def use_cases(request: Request) -> UseCases:
    """``async`` although it awaits nothing: FastAPI runs a plain ``def`` dependency in a worker
    thread, a hand-off that cost more than the rest of a cached read (docs/performance.md)."""
    return request.app.state.use_cases  # type: ignore[no-any-return]


async def required_version(request: Request) -> int:
    """The product version named by ``If-Match``; writes without one could lose updates (``async``
    for the reason ``use_cases`` gives)."""
    header = request.headers.get("if-match")
    if header is None or header.strip() in ("", "*"):
        raise Problem(428, "send If-Match with the product version (the ETag of your last read)")
    tag = header.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise Problem(412, f"If-Match {header!r} names no version of this product")
    return int(tag)


def parse_json_body(raw: bytes) -> Any:
    """One JSON document (at most 1 MiB: ``BodyLimitMiddleware``). Nesting too deep even for the
    decoder (a ``RecursionError`` near a thousand levels) is the domain's nesting threat, as any
    document past ``MAX_DEPTH`` is once decoded: a 422, never a 500."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ThreatDetected("the body is nested too deeply", (too_deep(),)) from None
    except (ValueError, UnicodeDecodeError):
        error = FieldError(None, ErrorCode.INVALID_VALUE, "the body is not valid JSON")
        raise Problem(400, "the body is not valid JSON", (error,)) from None


async def json_body(request: Request) -> Any:
    return parse_json_body(await request.body())
