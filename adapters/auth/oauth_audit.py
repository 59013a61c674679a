"""The audit trail of the OAuth endpoints: every token issued, refused or revoked, one record each.

The actor is the authenticated client, else the client id the caller claimed (when it has the shape
of one), else ``anonymous``. Reasons are built from fixed texts, error codes, token ids (``jti``) and
family ids: never a secret, never a token.

Failed client authentications are counted in ``eyewear_auth_failures_total`` (reason
``invalid_client``, or ``client_throttled`` for a 429 answered without a check), and a failure that
starts a throttle block is also a ``threat_detected`` record (kind ``client_auth_brute_force``).
"""

from __future__ import annotations

from adapters.auth.oauth_models import FormRequest
from adapters.auth.oauth_throttle import BRUTE_FORCE
from application.authorization import Authorizer, Caller
from application.metrics import NoMetrics, SecurityMetrics
from domain.clients import OAuthAction
from domain.rbac import Principal

GRANT_TYPES = frozenset({"client_credentials", "refresh_token"})
REPLAY = "refresh_token_reuse"


class OAuthAudit:
    def __init__(self, authorizer: Authorizer, metrics: SecurityMetrics | None = None) -> None:
        self.authorizer = authorizer
        self.metrics: SecurityMetrics = metrics or NoMetrics()

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
            reason = refusal + (f" ({request.outcome})" if request.outcome else "")
            await self.authorizer.event(caller, OAuthAction.REVOKED, resource, False, reason)
        if request.reuse_detected:
            await self.authorizer.threat(caller, resource, REPLAY)
        if request.tipped:
            await self.authorizer.threat(caller, resource, BRUTE_FORCE)
        if request.throttled:
            self.metrics.auth_failure("client_throttled")
        elif request.client_auth_failed:
            self.metrics.auth_failure("invalid_client")
