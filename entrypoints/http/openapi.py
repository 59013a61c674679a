"""The OpenAPI document's security: how a caller gets and sends a token, so that the interactive
docs' "Authorize" works against this very service.

The bearer guard is a plain dependency (``security.current_caller``), not a FastAPI security class,
so FastAPI declares no scheme by itself. Two are declared here: the OAuth 2 client-credentials flow
of ``POST /oauth/token`` (Swagger UI asks for a client id and secret and fetches the token), and a
plain bearer token (paste one from ``eyewear token``); every ``/api/v1`` operation takes either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from domain.rbac import Role

SCHEMES: dict[str, Any] = {
    "clientCredentials": {
        "type": "oauth2",
        "description": "A registered client (`eyewear clients create`) gets a token from `POST /oauth/token`.",
        "flows": {
            "clientCredentials": {
                "tokenUrl": "/oauth/token",
                "scopes": {role.value: f"the {role.value} role" for role in Role},
            }
        },
    },
    "bearerToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token (RFC 9068), e.g. from `eyewear token`.",
    },
}
_GUARDED = "/api/v1/"
_METHODS = ("get", "put", "post", "patch", "delete")


def with_security(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the schemes declared and required on every guarded operation."""
    document.setdefault("components", {}).setdefault("securitySchemes", {}).update(SCHEMES)
    for path, operations in document.get("paths", {}).items():
        if not path.startswith(_GUARDED):
            continue
        for method, operation in operations.items():
            if method in _METHODS:
                operation["security"] = [{"clientCredentials": []}, {"bearerToken": []}]
    return document


def install_security_schemes(app: FastAPI) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_security(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
