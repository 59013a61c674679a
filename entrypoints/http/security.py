"""The bearer guard: every ``/api/v1`` route depends on ``current_caller``.

A bad token of any kind is a 401 with ``WWW-Authenticate: Bearer error="invalid_token"``, and
the failure is audited (actor ``anonymous``) before the answer leaves. The token itself is never
logged, echoed or stored.
"""

from __future__ import annotations

import structlog
from fastapi import Request

from adapters.auth.access_tokens import InvalidToken
from application.authorization import Caller
from domain.rbac import Principal
from entrypoints.http.problems import Problem

log = structlog.get_logger(__name__)
ANONYMOUS = Principal(subject="anonymous", roles=frozenset())
CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", request.url.path)


async def current_caller(request: Request) -> Caller:
    security = request.app.state.security
    correlation_id = request.scope.get("state", {}).get("request_id", "-")
    client_ip = _client_ip(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    resource = f"{request.method} {_route(request)}"
    anonymous = Caller(ANONYMOUS, correlation_id, client_ip)
    await security.screen.refuse_if_blocked(security.screen.keys(anonymous))
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidToken("missing" if not header else "malformed")
        principal = await security.verifier.verify(token.strip())
    except InvalidToken as error:
        log.info("auth.denied", reason=error.reason, route=resource, request_id=correlation_id)
        await security.authorizer.authentication_failed(anonymous, resource, error.reason)
        raise Problem(401, "a valid bearer access token is required", headers=CHALLENGE) from None
    caller = Caller(principal, correlation_id, client_ip)
    request.state.caller = caller
    await security.screen.screen(request, caller, resource)
    return caller
