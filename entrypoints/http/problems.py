"""RFC 9457 problem details for every error, with the request's correlation id."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import (
    AccessDenied,
    Conflict,
    DomainError,
    ErrorCode,
    FieldError,
    NotFound,
    ThreatDetected,
    ValidationFailed,
    VersionMismatch,
)
from domain.threats import Threat, kind_of
from entrypoints.http.request_id import current_request_id

PROBLEM_TYPE = "https://eyewear-catalog.dev/problems/"
_STATUS_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    412: "version-mismatch",
    422: "validation-failed",
    428: "if-match-required",
    429: "too-many-requests",
    413: "payload-too-large",
    503: "service-unavailable",
}


class Problem(Exception):
    """Raised by routes for errors that are about HTTP itself (a missing header, a bad body)."""

    def __init__(
        self, status: int, detail: str, errors: tuple[FieldError, ...] = (), headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def problem_response(
    status: int, detail: str, errors: tuple[FieldError, ...] = (), headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + _SLUGS.get(status, str(status)),
        "title": _STATUS_TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "correlation_id": current_request_id.get(),
    }
    if errors:
        body["errors"] = [{"field": e.field, "code": str(e.code), "message": e.message} for e in errors]
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


def _status_of(error: DomainError) -> int:
    if isinstance(error, ValidationFailed):
        return 422
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Conflict):
        return 409
    if isinstance(error, VersionMismatch):
        return 412
    if isinstance(error, AccessDenied):
        return 403
    return 400


def _loc_to_field(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ThreatDetected)
    async def threat(request: Request, error: ThreatDetected) -> JSONResponse:
        """Threats the domain finds while parsing (markup in plain text, objects for scalars) are
        recorded and counted like the ones the screen finds first."""
        caller = getattr(request.state, "caller", None)
        security = getattr(request.app.state, "security", None)
        if caller is not None and security is not None:
            kinds = [
                Threat(kind_of(e), e.field, e.message) for e in error.errors if e.code == ErrorCode.THREAT_DETECTED
            ]
            await security.screen.report(caller, request.url.path, kinds)
        return problem_response(422, error.message, error.errors)

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, error: DomainError) -> JSONResponse:
        return problem_response(_status_of(error), error.message, error.errors)

    @app.exception_handler(Problem)
    async def http_problem(_: Request, error: Problem) -> JSONResponse:
        return problem_response(error.status, error.detail, error.errors, error.headers)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = tuple(
            FieldError(_loc_to_field(tuple(e.get("loc", ()))), ErrorCode.INVALID_VALUE, str(e.get("msg")))
            for e in error.errors()
        )
        return problem_response(422, "the request is not valid", errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem_response(error.status_code, str(error.detail), headers=getattr(error, "headers", None))
