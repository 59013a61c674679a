"""Authorization at the application boundary: no use case runs without its permission.

Every decision, allow or deny, is appended to the audit log before the use case goes on, so any
entrypoint (HTTP, CLI, a job) is guarded and recorded the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from application.metrics import NoMetrics, SecurityMetrics
from domain.audit import AUTHENTICATION_ACTION, THREAT_ACTION, AuditDecision, AuditLog, AuditRecord
from domain.errors import AccessDenied
from domain.ports import Clock
from domain.rbac import AccessRequest, Permission, Principal, Role, decide


@dataclass(frozen=True, slots=True)
class Caller:
    """The principal plus where the call came from, for the audit trail."""

    principal: Principal
    correlation_id: str = "-"
    client_ip: str | None = None

    @property
    def actor(self) -> str:
        return self.principal.subject


def system_caller(subject: str, correlation_id: str = "-") -> Caller:
    """A trusted in-process caller (the demo loader, a CLI maintenance command), still audited."""
    return Caller(Principal(subject=subject, roles=frozenset({Role.ADMIN})), correlation_id)


class Authorizer:
    def __init__(self, audit: AuditLog, clock: Clock, metrics: SecurityMetrics | None = None) -> None:
        self.audit = audit
        self.clock = clock
        self.metrics: SecurityMetrics = metrics or NoMetrics()

    async def _record(self, caller: Caller, action: str, resource: str, decision: AuditDecision, reason: str) -> None:
        await self.audit.append(
            AuditRecord(
                record_id=os.urandom(16).hex(),  # 128 random bits, like a uuid4, at a quarter of its cost
                at=self.clock.now(),
                actor=caller.actor,
                roles=tuple(sorted(role.value for role in caller.principal.roles)),
                action=action,
                resource=resource,
                decision=decision,
                reason=reason,
                correlation_id=caller.correlation_id,
                client_ip=caller.client_ip,
            )
        )

    async def require(self, caller: Caller, permission: Permission, resource: str, brands: Iterable[str] = ()) -> None:
        """Decides, records the decision, and raises AccessDenied on a deny."""
        decision = decide(caller.principal, AccessRequest(permission, resource, tuple(brands)))
        verdict = AuditDecision.ALLOW if decision.allowed else AuditDecision.DENY
        await self._record(caller, permission.value, resource, verdict, decision.reason)
        self.metrics.authz_decision(verdict.value)
        if not decision.allowed:
            raise AccessDenied(decision.reason)

    async def precheck(self, caller: Caller, permission: Permission, resource: str) -> None:
        """Refuses early (recorded) when no role grants ``permission`` at all.

        Used where the full decision needs the validated input (a brand): a caller without the
        permission learns nothing about its input's validity, and an allowed caller gets exactly
        one record, from the ``require`` that follows.
        """
        if permission not in caller.principal.permissions:
            await self.require(caller, permission, resource)

    async def threat(self, caller: Caller, resource: str, kind: str) -> None:
        self.metrics.threat_detected(kind)
        await self._record(caller, THREAT_ACTION, resource, AuditDecision.DENY, kind)

    async def authentication_failed(self, caller: Caller, resource: str, reason: str) -> None:
        self.metrics.auth_failure(reason)
        await self._record(caller, AUTHENTICATION_ACTION, resource, AuditDecision.DENY, reason)

    async def event(self, caller: Caller, action: str, resource: str, allowed: bool, reason: str) -> None:
        """An audited event that is no permission check (a token issued, refused or revoked)."""
        verdict = AuditDecision.ALLOW if allowed else AuditDecision.DENY
        await self._record(caller, action, resource, verdict, reason)
