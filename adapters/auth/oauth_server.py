"""The OAuth 2 authorization server: ``POST /oauth/token`` and ``POST /oauth/revoke`` on authlib.

authlib does the protocol: grant selection, client authentication (``client_secret_basic``,
``client_secret_post``), parameter checks, the RFC 6749 §5.1/5.2 bodies, status codes and headers
(``Cache-Control: no-store``, ``WWW-Authenticate: Basic`` on a 401). This class supplies what authlib
leaves to an integration, and what it gets wrong for this service (each marked where it happens).

authlib is synchronous, the stores are async. Each request runs authlib in a worker thread
(``anyio.to_thread``), whose storage hooks call back into the event loop (``anyio.from_thread``):
authlib's flow stays intact, and the scrypt check runs off the loop as a bonus.

Flow decisions:
- client_credentials issues a refresh token, against RFC 6749 §4.4.3's SHOULD NOT: CONTRACT 4.1
  requires the refresh grant and this is the only grant that starts a session. It is safe because
  refreshing needs the client's secret too (RFC 6749 §6: confidential clients authenticate), so a
  refresh token never grants more than the secret does; what it adds is a revocable session
  (RFC 7009) with rotation and replay detection, and a fixed end (``refresh_ttl``, not extended by
  rotation). A stolen refresh token alone is useless; a replayed one kills its family.
- scope: role names (domain.clients). No ``scope`` asks for every role of the client; otherwise the
  requested roles the client covers are granted (RFC 6749 §3.3 lets the server grant less), unknown
  names are ``invalid_scope``, and so is asking for nothing the client has. A refresh may narrow the
  scope but never exceed the original grant (RFC 6749 §6).
- Refresh tokens are rotated, replays revoke their family: see oauth_ledger.
- Failed client authentication is throttled before any secret is checked, on both endpoints and for
  both grants (every request that presents a secret): see oauth_throttle and ADR 0014. A revocation
  by mere possession of the token checks no secret and is never throttled: revoking must stay
  possible for whoever holds a leaked token.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio.to_thread
from authlib.oauth2.rfc6749 import AuthorizationServer, InvalidClientError, InvalidScopeError, OAuth2Error
from starlette.requests import Request
from starlette.responses import Response

from adapters.auth.access_tokens import AccessTokenIssuer, AccessTokenVerifier
from adapters.auth.oauth_audit import OAuthAudit
from adapters.auth.oauth_grants import ClientCredentials, Revocation, RotatingRefreshToken
from adapters.auth.oauth_ledger import RefreshLedger, run
from adapters.auth.oauth_models import (
    POSSESSION_METHOD,
    ClientModel,
    FormRequest,
    Grant,
    RefreshCredential,
    TokenResponse,
    TooManyFailures,
    authenticate_token_holder,
    read_form,
)
from adapters.auth.oauth_throttle import ClientAuthThrottle
from domain.abuse import client_auth_keys
from domain.clients import ClientStore, RefreshTokenStore, SecretHasher, grant_roles, scope_of
from domain.ports import Clock
from domain.rbac import Role

DEFAULT_REFRESH_TTL = timedelta(days=30)
REFRESH_TOKEN_BYTES = 32  # 256 bits: see domain.clients on why SHA-256 then suffices


class OAuthServer(AuthorizationServer):
    def __init__(
        self,
        clients: ClientStore,
        refresh_tokens: RefreshTokenStore,
        hasher: SecretHasher,
        issuer: AccessTokenIssuer,
        verifier: AccessTokenVerifier,
        audit: OAuthAudit,
        clock: Clock,
        throttle: ClientAuthThrottle,
        *,
        access_ttl_seconds: int,
        refresh_ttl: timedelta = DEFAULT_REFRESH_TTL,
    ) -> None:
        super().__init__(scopes_supported=[role.value for role in Role])
        self.clients, self.hasher, self.issuer, self.audit = clients, hasher, issuer, audit
        self.throttle = throttle
        self.access_ttl_seconds = access_ttl_seconds
        self.ledger = RefreshLedger(refresh_tokens, verifier, clock, refresh_ttl)
        self._decoy_hash = hasher.hash(secrets.token_urlsafe(16))
        self.register_token_generator("default", self._generate)
        self.register_grant(ClientCredentials)
        self.register_grant(RotatingRefreshToken)
        self.register_endpoint(Revocation)
        self.register_client_auth_method(POSSESSION_METHOD, authenticate_token_holder)

    # -- the async entry points ---------------------------------------------------------------

    async def token_response(self, request: Request) -> Response:
        return await self._respond(request, "token", "grant_type", self.create_token_response)

    async def revocation_response(self, request: Request) -> Response:
        return await self._respond(request, "revoke", "token", lambda r: self.create_endpoint_response("revocation", r))

    async def _respond(
        self, request: Request, endpoint: str, required: str, handle: Callable[[FormRequest], Response]
    ) -> Response:
        """Reads the form here (async), runs authlib in a worker thread, audits the outcome."""
        try:
            form = await read_form(request, required)
        except OAuth2Error as error:
            oauth_request = FormRequest(request, {})
            response = self.handle_error_response(oauth_request, error)
        else:
            oauth_request = FormRequest(request, form)
            if endpoint == "token" or oauth_request.presents_secret():
                response = await self._throttled(oauth_request, handle)
            else:
                response = await anyio.to_thread.run_sync(handle, oauth_request)
        await self.audit.record(endpoint, oauth_request)
        return response

    async def _throttled(self, request: FormRequest, handle: Callable[[FormRequest], Response]) -> Response:
        """Refuses a blocked pair or peer before authlib (and its scrypt) runs, then counts the outcome.

        The block is looked at twice: at once, so that a blocked caller waits for nothing, and again
        when its peer's turn comes, because the check that ran meanwhile may have tipped it."""
        keys = client_auth_keys(request.claimed_client_id(), request.client_ip)
        refusal = await self.throttle.refusal(keys)
        if refusal is None:
            async with self.throttle.turn(keys):
                refusal = await self.throttle.refusal(keys)
                if refusal is None:
                    response = await anyio.to_thread.run_sync(handle, request)
                    if request.client_authenticated:
                        await self.throttle.succeeded(keys)
                    elif request.client_auth_failed:
                        request.tipped = await self.throttle.failed(keys)
                        if request.tipped:
                            request.outcome = f"blocks started: {'+'.join(request.tipped)}"
                    return response
        request.throttled = True
        request.outcome = f"throttled: {'+'.join(refusal.blocked)} blocked for {refusal.retry_after} s"
        return self.handle_error_response(request, TooManyFailures(refusal.retry_after))

    # -- authlib's integration hooks (worker thread) ---------------------------------------------

    def create_oauth2_request(self, request: FormRequest) -> FormRequest:
        return request  # built (and its body read) before authlib runs

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        return Response(json.dumps(body), status_code=status, headers=dict(headers))

    def handle_error_response(self, request: FormRequest, error: Any) -> Response:
        request.error = error
        response: Response = super().handle_error_response(request, error)
        return response

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """authlib calls this after client authentication and revocation; nothing listens."""

    def authenticate_client(self, request: FormRequest, methods: list[str], endpoint: str = "token") -> Any:
        """authlib answers 400 for a bad secret sent in the form, 401 for one sent with Basic; RFC 6749
        §5.2 allows 401 for both, and one answer for every failure tells a prober less. The outcome
        is noted on the request for the throttle: this is where the secret is checked."""
        try:
            client = super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            error.status_code = 401
            request.client_auth_failed = True
            raise
        request.client_authenticated = getattr(client, "record", None) is not None  # not a mere token holder
        return client

    def query_client(self, client_id: str) -> ClientModel:
        record = run(self.clients.get, client_id)
        usable = record if record is not None and not record.disabled else None
        return ClientModel(usable, self.hasher.verify, self._decoy_hash)

    def _generate(
        self,
        grant_type: str,
        client: ClientModel,
        user: RefreshCredential | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> TokenResponse:
        assert client.record is not None  # authlib only issues to authenticated clients
        source = user.record if user is not None else client.record
        subject = user.record.subject if user is not None else client.client_id
        roles = grant_roles(scope, source.roles)
        if not roles:
            raise InvalidScopeError("The client has none of the requested roles.")
        granted = scope_of(roles)
        access = self.issuer.issue(
            subject,
            [r.value for r in roles],
            brands=sorted(source.brands),
            client_id=client.client_id,
            scope=granted,
            ttl_seconds=self.access_ttl_seconds,
        )
        body = {
            "access_token": access.token,
            "token_type": "Bearer",
            "expires_in": self.access_ttl_seconds,
            "scope": granted,
        }
        if include_refresh_token:
            body["refresh_token"] = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
        return TokenResponse(body, Grant(subject, roles, source.brands, access))

    def save_token(self, token: TokenResponse, request: FormRequest) -> None:
        self.ledger.save(token, request)
