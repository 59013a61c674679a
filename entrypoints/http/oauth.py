"""``POST /oauth/token`` and ``POST /oauth/revoke`` (CONTRACT 4.1): open endpoints, RFC 6749 / 7009.

The routes only hand the request to the OAuth server (adapters/auth/oauth_server.py), which reads
the form itself: FastAPI's form parameters need python-multipart and would answer errors as problem
details, while these endpoints must answer RFC 6749 JSON errors. The form is described for OpenAPI
by hand.

Both endpoints answer 429 with ``Retry-After`` (error ``temporarily_unavailable``) to a caller whose
failed client authentications are throttled (ADR 0014); the server decides that before any secret
is checked.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter(prefix="/oauth", tags=["oauth"])

_FORM = "application/x-www-form-urlencoded"
_ERROR = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
            "required": ["error"],
        }
    }
}


def _form_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required}
    return {"requestBody": {"required": True, "content": {_FORM: {"schema": schema}}}}


_TOKEN_FORM = _form_body(
    {
        "grant_type": {"type": "string", "enum": ["client_credentials", "refresh_token"]},
        "scope": {"type": "string", "description": "role names, space-separated; default: all of the client's"},
        "refresh_token": {"type": "string", "description": "grant_type=refresh_token only"},
        "client_id": {"type": "string", "description": "client_secret_post (else HTTP Basic)"},
        "client_secret": {"type": "string", "description": "client_secret_post (else HTTP Basic)"},
    },
    ["grant_type"],
)
_REVOKE_FORM = _form_body(
    {
        "token": {"type": "string"},
        "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string"},
    },
    ["token"],
)
_TOKEN = {
    "type": "object",
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer"},
        "scope": {"type": "string"},
        "refresh_token": {"type": "string"},
    },
    "required": ["access_token", "token_type", "expires_in", "scope"],
}
_THROTTLED = {
    "description": "temporarily_unavailable: too many failed client authentications; see Retry-After",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}},
    "content": _ERROR,
}


@router.post(
    "/token",
    openapi_extra=_TOKEN_FORM,
    responses={
        200: {"description": "a token response", "content": {"application/json": {"schema": _TOKEN}}},
        400: {"description": "invalid_request, invalid_grant, unsupported_grant_type, …", "content": _ERROR},
        401: {"description": "invalid_client", "content": _ERROR},
        429: _THROTTLED,
    },
)
async def token(request: Request) -> Response:
    """client_credentials (HTTP Basic or form credentials) and refresh_token (rotating)."""
    response: Response = await request.app.state.oauth.token_response(request)
    return response


@router.post(
    "/revoke",
    openapi_extra=_REVOKE_FORM,
    responses={
        200: {"description": "revoked, or nothing to revoke (RFC 7009 §2.2)"},
        400: {"description": "invalid_request", "content": _ERROR},
        401: {"description": "invalid_client", "content": _ERROR},
        429: _THROTTLED,
    },
)
async def revoke(request: Request) -> Response:
    """An access token (by jti) or a refresh token (its whole family); answers 200 for unknown tokens."""
    response: Response = await request.app.state.oauth.revocation_response(request)
    return response
