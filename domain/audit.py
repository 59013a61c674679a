"""The audit trail: every authorization decision and detected threat, append-only."""

from __future__ import annotations

import abc
import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.errors import ErrorCode, FieldError, ValidationFailed, invalid
from domain.fields import FieldReader
from domain.search import Page


class AuditDecision(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


THREAT_ACTION = "threat_detected"
AUTHENTICATION_ACTION = "authenticate"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    record_id: str
    at: datetime
    actor: str
    roles: tuple[str, ...]
    action: str
    resource: str
    decision: AuditDecision
    reason: str
    correlation_id: str
    client_ip: str | None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None
    decision: AuditDecision | None = None
    limit: int = 50
    cursor: str | None = None


class AuditLog(abc.ABC):
    """Append-only: there is no way to change or delete a record through the port."""

    @abc.abstractmethod
    async def append(self, record: AuditRecord) -> None: ...

    @abc.abstractmethod
    async def append_many(self, records: Sequence[AuditRecord]) -> None:
        """Idempotent by ``record_id``: a record already stored is skipped, not stored twice, so a
        journal shipped again after a crash leaves each record once."""

    @abc.abstractmethod
    async def query(self, query: AuditQuery) -> Page[AuditRecord]:
        """Newest first, filtered, with an opaque cursor to the next page."""


class RevocationList(abc.ABC):
    """Revoked token ids, kept until the token would have expired anyway."""

    @abc.abstractmethod
    async def revoke(self, token_id: str, expires_at: datetime) -> None: ...

    @abc.abstractmethod
    async def revoked_until(self, token_id: str) -> datetime | None:
        """When the revocation of ``token_id`` ends (it is revoked until then), or None if it is not.

        The expiry, not only a yes or no, so that one store can copy a revocation into another
        (Redis healed from MongoDB after it lost its data)."""

    async def is_revoked(self, token_id: str) -> bool:
        return await self.revoked_until(token_id) is not None


def audit_fields(record: AuditRecord) -> dict[str, Any]:
    """The record as plain values, in the order the API lists them: what every stored and shown
    form (the journal line, the MongoDB document, the API item) starts from."""
    return {
        "record_id": record.record_id,
        "at": record.at,
        "actor": record.actor,
        "roles": list(record.roles),
        "action": record.action,
        "resource": record.resource,
        "decision": record.decision.value,
        "reason": record.reason,
        "correlation_id": record.correlation_id,
        "client_ip": record.client_ip,
    }


def audit_record_of(fields: Mapping[str, Any]) -> AuditRecord:
    """The inverse of ``audit_fields``; a missing field is a ``KeyError``, a bad decision a ``ValueError``."""
    return AuditRecord(
        record_id=fields["record_id"],
        at=fields["at"],
        actor=fields["actor"],
        roles=tuple(fields["roles"]),
        action=fields["action"],
        resource=fields["resource"],
        decision=AuditDecision(fields["decision"]),
        reason=fields["reason"],
        correlation_id=fields["correlation_id"],
        client_ip=fields["client_ip"],
    )


def audit_matches(record: AuditRecord, query: AuditQuery) -> bool:
    return (
        (query.actor is None or record.actor == query.actor)
        and (query.action is None or record.action == query.action)
        and (query.decision is None or record.decision == query.decision)
    )


def audit_order_key(record: AuditRecord) -> tuple[datetime, str]:
    """Newest first: by time, then by record id, both descending."""
    return (record.at, record.record_id)


def encode_audit_cursor(record: AuditRecord) -> str:
    raw = json.dumps({"at": record.at.isoformat(), "id": record.record_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_audit_cursor(token: str) -> tuple[datetime, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        at = datetime.fromisoformat(data["at"])
        if at.tzinfo is None:
            raise ValueError("naive time")
        return at, str(data["id"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError, RecursionError):
        error = FieldError("cursor", ErrorCode.INVALID_VALUE, "is not a cursor this service issued")
        raise ValidationFailed("cursor is not a cursor this service issued", (error,)) from None


def parse_audit_query(params: Mapping[str, Any]) -> AuditQuery:
    reader = FieldReader(params)
    actor = reader.string("actor", lambda s: s.strip() or None, required=False)
    action = reader.string("action", lambda s: s.strip() or None, required=False)
    decision = reader.choice("decision", AuditDecision, required=False)
    limit = reader.integer("limit", (1, 200), required=False) or 50
    cursor = reader.string("cursor", lambda s: s.strip() or None, required=False)
    if reader.errors:
        raise invalid("the audit query is not valid", tuple(reader.errors))
    if cursor is not None:
        decode_audit_cursor(cursor)
    return AuditQuery(actor=actor, action=action, decision=decision, limit=limit, cursor=cursor)
