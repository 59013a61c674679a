"""The audit trail of the OAuth endpoints: every token issued, refused or revoked, one record each.

The actor is the authenticated client, else the client id the caller claimed (when it has the shape
of one), else ``anonymous``. Reasons are built from fixed texts, error codes, token ids (``jti``) and
family ids: never a secret, never a token.
"""

from __future__ import annotations

from adapters.auth.oauth_models import FormRequest
from application.authorization import Authorizer, Caller
from domain.clients import OAuthAction
from domain.rbac import Principal

GRANT_TYPES = frozenset({"client_credentials", "refresh_token"})
REPLAY = "refresh_token_reuse"


class OAuthAudit:
    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    async def record(self, endpoint: str, request: FormRequest) -> None:
        client = getattr(request.client, "record", None)
        actor = client.client_id if client else (request.claimed_client_id() or "anonymous")
        caller = Caller(
            Principal(subject=actor, roles=client.roles if client else frozenset()),
            request.correlation_id,
            request.client_ip,
        )
        resource = f"POST /oauth/{endpoint}"
        error = request.error
        refusal = f"{error.error}: {error.description}".rstrip(": ") if error is not None else ""
        if endpoint == "token":
            grant_type = request.form.get("grant_type")
            prefix = grant_type if grant_type in GRANT_TYPES else "unsupported grant"
            if error is None:
                await self.authorizer.event(caller, OAuthAction.ISSUED, resource, True, f"{prefix}: {request.outcome}")
            else:
                reason = f"{prefix}: {refusal}" + (f" ({request.outcome})" if request.outcome else "")
                await self.authorizer.event(caller, OAuthAction.REFUSED, resource, False, reason)
        elif error is None:
            reason = request.outcome or "unknown, expired or foreign token: nothing to revoke"
            await self.authorizer.event(caller, OAuthAction.REVOKED, resource, True, reason)
        else:
            await self.authorizer.event(caller, OAuthAction.REVOKED, resource, False, refusal)
        if request.reuse_detected:
            await self.authorizer.threat(caller, resource, REPLAY)
