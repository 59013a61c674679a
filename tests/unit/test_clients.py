"""OAuth clients: the scope rule (pure) and client registration over the memory twins."""

from __future__ import annotations

import pytest

from adapters.auth.hashing import ScryptHasher
from adapters.memory.audit_log import MemoryAuditLog
from adapters.memory.clients import MemoryClientStore
from adapters.memory.clock import FixedClock
from application.authorization import Authorizer, system_caller
from application.client_registration import RegisterClient
from domain.audit import AuditDecision, AuditQuery
from domain.clients import exceeds, grant_roles, scope_of
from domain.errors import AccessDenied, ValidationFailed
from domain.rbac import Role
from tests.builders import caller

ADMIN, VIEWER, AUDITOR = frozenset({Role.ADMIN}), frozenset({Role.VIEWER}), frozenset({Role.AUDITOR})


def test_no_scope_grants_every_role_of_the_client() -> None:
    assert grant_roles(None, ADMIN | AUDITOR) == ADMIN | AUDITOR
    assert grant_roles("  ", VIEWER) == VIEWER


def test_a_scope_narrows_through_inheritance_and_never_widens() -> None:
    assert grant_roles("viewer", ADMIN) == VIEWER
    assert grant_roles("editor viewer", ADMIN) == {Role.EDITOR, Role.VIEWER}
    assert grant_roles("admin viewer", VIEWER) == VIEWER
    assert grant_roles("admin", VIEWER) == frozenset()
    assert grant_roles("auditor", ADMIN) == frozenset()  # service roles are not inherited


def test_exceeds_is_the_refresh_rule() -> None:
    assert not exceeds(None, VIEWER)
    assert not exceeds("viewer editor", frozenset({Role.EDITOR}))
    assert exceeds("viewer admin", frozenset({Role.EDITOR}))
    assert exceeds("superuser", ADMIN)


def test_the_scope_string_is_sorted_role_names() -> None:
    assert scope_of({Role.VIEWER, Role.AUDITOR, Role.EDITOR}) == "auditor editor viewer"


@pytest.fixture
def audit() -> MemoryAuditLog:
    return MemoryAuditLog()


@pytest.fixture
def clients() -> MemoryClientStore:
    return MemoryClientStore()


@pytest.fixture
def register(clients: MemoryClientStore, audit: MemoryAuditLog) -> RegisterClient:
    return RegisterClient(clients, ScryptHasher(n=2**4), FixedClock(), Authorizer(audit, FixedClock()))


async def test_registration_stores_a_hash_and_shows_the_secret_once(
    register: RegisterClient, clients: MemoryClientStore, audit: MemoryAuditLog
) -> None:
    done = await register(" Shop sync ", [Role.EDITOR], ["Ray-Ban", " "], system_caller("ops"))
    assert done.client.client_id.startswith("shop-sync-")
    assert len(done.secret) >= 43  # 256 bits
    assert done.secret not in repr(done)
    stored = await clients.get(done.client.client_id)
    assert stored == done.client
    assert stored.name == "Shop sync" and stored.brands == {"Ray-Ban"} and not stored.disabled
    assert done.secret not in stored.secret_hash
    assert ScryptHasher().verify(done.secret, stored.secret_hash)
    (record,) = (await audit.query(AuditQuery())).items
    assert (record.actor, record.action, record.decision) == ("ops", "client:manage", AuditDecision.ALLOW)


async def test_registration_needs_client_manage(register: RegisterClient, audit: MemoryAuditLog) -> None:
    with pytest.raises(AccessDenied):
        await register("Shop sync", [Role.VIEWER], [], caller("eve", "catalog_manager"))
    (record,) = (await audit.query(AuditQuery())).items
    assert record.decision == AuditDecision.DENY


async def test_registration_refuses_an_empty_name_or_no_role(register: RegisterClient) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await register("  ", [], [], system_caller("ops"))
    assert {e.field for e in caught.value.errors} == {"name", "roles"}
