"""Refresh-token rotation, replay detection and revocation, for authlib's synchronous hooks.

Runs in the worker thread of a token or revocation request; every store call goes back to the event
loop through ``anyio.from_thread``. Safety rests on the store's atomic ``use``: the presented refresh
token is spent before anything new exists, so of two exchanges of one token exactly one succeeds,
and the other is treated as a replay (RFC 9700 §4.14.2): the whole family is revoked, access tokens
issued with its members included (RFC 7009 §2.1).

A refresh that races a revocation of its family is caught by one of two checks: the family's state
before the token is spent, or after the new member is stored (``family_revoked`` sees a revocation
that ran while the new member was being written, see the store contract).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import anyio.from_thread
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidScopeError

from adapters.auth.access_tokens import AccessTokenVerifier, InvalidToken
from adapters.auth.oauth_models import AccessTokenRef, FormRequest, RefreshCredential, TokenResponse
from domain.clients import RefreshTokenRecord, RefreshTokenStore, exceeds, refresh_token_hash
from domain.ports import Clock
from domain.rbac import Principal

T = TypeVar("T")


def run(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Awaits ``function(*args)`` on the event loop from authlib's worker thread."""
    return anyio.from_thread.run(function, *args)


class RefreshLedger:
    def __init__(
        self, store: RefreshTokenStore, verifier: AccessTokenVerifier, clock: Clock, refresh_ttl: timedelta
    ) -> None:
        self.store, self.verifier, self.clock, self.refresh_ttl = store, verifier, clock, refresh_ttl

    def save(self, token: TokenResponse, request: FormRequest) -> None:
        """Stores the new refresh token in the presented one's family, or starts a family."""
        previous: RefreshTokenRecord | None = request.refresh_token.record if request.refresh_token else None
        grant, now = token.grant, self.clock.now()
        request.outcome = f"issued jti={grant.access.jti} scope={token['scope']!r}"
        if "refresh_token" not in token:
            return
        record = RefreshTokenRecord(
            token_hash=refresh_token_hash(token["refresh_token"]),
            family_id=previous.family_id if previous else uuid.uuid4().hex,
            client_id=request.client.client_id,
            subject=previous.subject if previous else grant.subject,
            roles=previous.roles if previous else grant.roles,
            brands=previous.brands if previous else grant.brands,
            issued_at=now,
            expires_at=previous.expires_at if previous else now + self.refresh_ttl,
            access_token_id=grant.access.jti,
            access_expires_at=grant.access.expires_at,
        )
        run(self.store.add, record)
        request.outcome += f" family={record.family_id}"
        if previous is not None and run(self.store.family_revoked, record.family_id):
            self.revoke_family(record.family_id)  # revoked while this exchange ran: nothing escapes
            raise InvalidGrantError("The refresh token was revoked.")

    def consume(self, token: str, request: FormRequest) -> RefreshCredential | None:
        """The presented refresh token, now spent; None (invalid_grant) when it is not one of the
        client's tokens. Every check that can fail comes before the token is spent, so that a bad
        request does not cost the client its session; a second use is a replay."""
        token_hash = refresh_token_hash(token)
        record = run(self.store.get, token_hash)
        if record is None or record.client_id != request.client.get_client_id():
            return None
        if record.revoked or run(self.store.family_revoked, record.family_id):
            raise InvalidGrantError("The refresh token was revoked.")
        if record.expires_at <= self.clock.now():
            raise InvalidGrantError("The refresh token has expired.")
        if exceeds(request.payload.scope, record.roles):
            raise InvalidScopeError("The scope exceeds the original grant.")  # RFC 6749 §6
        consumed = run(self.store.use, token_hash)
        if consumed is None:
            return None
        if not consumed.first_use:
            self.revoke_family(record.family_id)
            request.reuse_detected = True
            request.outcome = f"replayed refresh token: family={record.family_id} revoked"
            raise InvalidGrantError("The refresh token was already used; its whole family is now revoked.")
        return RefreshCredential(consumed.record)

    def find(self, token: str) -> AccessTokenRef | RefreshCredential | None:
        """Either kind, whatever the hint: only access tokens (JWTs) contain dots."""
        if token.count(".") == 2:
            try:  # another replica's token too: its key is looked up, so its revocation is not lost
                return AccessTokenRef(run(self.verifier.verify_signed, token))
            except InvalidToken:
                return None  # expired, forged or foreign: nothing to revoke (RFC 7009 §2.2)
        record = run(self.store.get, refresh_token_hash(token))
        return RefreshCredential(record) if record is not None else None

    def revoke(self, token: AccessTokenRef | RefreshCredential, request: FormRequest) -> None:
        if isinstance(token, AccessTokenRef):
            run(self.verifier.revoke, token.principal)
            request.outcome = f"access token jti={token.principal.token_id} revoked"
        else:
            self.revoke_family(token.record.family_id)
            request.outcome = f"refresh token family={token.record.family_id} revoked"

    def revoke_family(self, family_id: str) -> None:
        now = self.clock.now()
        for member in run(self.store.revoke_family, family_id):
            if member.access_expires_at > now:
                issued_with = Principal(
                    subject=member.subject,
                    roles=member.roles,
                    client_id=member.client_id,
                    token_id=member.access_token_id,
                    expires_at=member.access_expires_at,
                )
                run(self.verifier.revoke, issued_with)
