"""Roles, permissions and the authorization decision: pure policy, audited by the caller.

Roles inherit downwards (admin ⊃ catalog_manager ⊃ editor ⊃ viewer); ingestor and auditor are
service roles. A principal scoped to brands may change only products of those brands.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from domain.identifiers import slugify


class Role(StrEnum):
    ADMIN = "admin"
    CATALOG_MANAGER = "catalog_manager"
    EDITOR = "editor"
    VIEWER = "viewer"
    INGESTOR = "ingestor"
    AUDITOR = "auditor"


class Permission(StrEnum):
    PRODUCT_READ = "product:read"
    STORE_READ = "store:read"
    INGESTION_READ = "ingestion:read"
    PRODUCT_WRITE = "product:write"
    PRODUCT_ARCHIVE = "product:archive"
    INGESTION_ROLLBACK = "ingestion:rollback"
    STORE_MANAGE = "store:manage"
    INGESTION_RUN = "ingestion:run"
    AUDIT_READ = "audit:read"
    CLIENT_MANAGE = "client:manage"


#: Each role's direct parent in the hierarchy: a role has everything its child role has.
INHERITS: dict[Role, frozenset[Role]] = {
    Role.ADMIN: frozenset({Role.CATALOG_MANAGER}),
    Role.CATALOG_MANAGER: frozenset({Role.EDITOR}),
    Role.EDITOR: frozenset({Role.VIEWER}),
    Role.VIEWER: frozenset(),
    Role.INGESTOR: frozenset(),
    Role.AUDITOR: frozenset(),
}

_READ = frozenset({Permission.PRODUCT_READ, Permission.STORE_READ, Permission.INGESTION_READ})
#: What each role is granted itself, before inheritance (CONTRACT.md 4.2).
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: _READ,
    Role.EDITOR: frozenset({Permission.PRODUCT_WRITE}),
    Role.CATALOG_MANAGER: frozenset(
        {
            Permission.PRODUCT_ARCHIVE,
            Permission.INGESTION_ROLLBACK,
            Permission.STORE_MANAGE,
            Permission.INGESTION_RUN,
        }
    ),
    Role.ADMIN: frozenset({Permission.AUDIT_READ, Permission.CLIENT_MANAGE}),
    Role.INGESTOR: _READ | {Permission.INGESTION_RUN},
    Role.AUDITOR: _READ | {Permission.AUDIT_READ},
}

#: Permissions that change a product, and so respect a principal's brand scope.
BRAND_SCOPED = frozenset({Permission.PRODUCT_WRITE, Permission.PRODUCT_ARCHIVE, Permission.INGESTION_ROLLBACK})


def effective_roles(roles: Iterable[Role]) -> frozenset[Role]:
    """The roles and every role they inherit, transitively."""
    seen: set[Role] = set()
    pending = list(roles)
    while pending:
        role = pending.pop()
        if role not in seen:
            seen.add(role)
            pending.extend(INHERITS[role])
    return frozenset(seen)


def permissions_of(roles: Iterable[Role]) -> frozenset[Permission]:
    return _permissions_of(frozenset(roles))


@functools.cache
def _permissions_of(roles: frozenset[Role]) -> frozenset[Permission]:
    """Cached: asked on every authorized call, and there are only so many sets of roles."""
    granted: set[Permission] = set()
    for role in effective_roles(roles):
        granted |= GRANTS[role]
    return frozenset(granted)


_ROLE_NAMES = frozenset(role.value for role in Role)


def parse_roles(names: Iterable[str]) -> frozenset[Role]:
    """Known roles only; an unknown name grants nothing (and is not an error in a token)."""
    return frozenset(Role(name) for name in names if name in _ROLE_NAMES)


def brand_key(brand: str) -> str:
    """Brands in scopes compare like product ids do: ``Ray-Ban`` and ``ray ban`` are one brand."""
    return slugify(brand)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as the domain sees it: never a framework request."""

    subject: str
    roles: frozenset[Role]
    brands: frozenset[str] = frozenset()
    client_id: str | None = None
    token_id: str | None = None
    expires_at: datetime | None = None

    @property
    def permissions(self) -> frozenset[Permission]:
        return permissions_of(self.roles)

    @property
    def brand_scoped(self) -> bool:
        return bool(self.brands)

    def covers_brand(self, brand: str) -> bool:
        return not self.brands or brand_key(brand) in {brand_key(b) for b in self.brands}


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class AccessRequest:
    permission: Permission
    resource: str
    brands: tuple[str, ...] = field(default=())


def decide(principal: Principal, request: AccessRequest) -> Decision:
    """Allow only what a role grants, and brand-scoped changes only inside the scope."""
    if request.permission not in principal.permissions:
        return Decision(False, f"no role of {principal.subject!r} grants {request.permission.value}")
    if request.permission in BRAND_SCOPED:
        outside = [b for b in request.brands if not principal.covers_brand(b)]
        if outside:
            return Decision(False, f"brand {outside[0]!r} is outside the token's brand scope")
    return Decision(True, f"granted {request.permission.value}")
