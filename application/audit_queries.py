"""Reading the audit trail: itself an audited, permission-checked use case."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from application.authorization import Authorizer, Caller
from domain.audit import AuditLog, AuditRecord, parse_audit_query
from domain.rbac import Permission
from domain.search import Page


class ReadAudit:
    def __init__(self, audit: AuditLog, authorizer: Authorizer) -> None:
        self.audit = audit
        self.authorizer = authorizer

    async def __call__(self, params: Mapping[str, Any], caller: Caller) -> Page[AuditRecord]:
        await self.authorizer.require(caller, Permission.AUDIT_READ, "audit")
        return await self.audit.query(parse_audit_query(params))
