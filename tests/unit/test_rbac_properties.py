"""Laws of the role hierarchy and of brand scopes: no privilege from nowhere."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.rbac import (
    GRANTS,
    INHERITS,
    AccessRequest,
    Permission,
    Principal,
    Role,
    decide,
    effective_roles,
    permissions_of,
)

#: What changes products, restated independently of ``domain.rbac``: each must stay inside a brand scope.
CHANGES_PRODUCTS = {Permission.PRODUCT_WRITE, Permission.PRODUCT_ARCHIVE, Permission.INGESTION_ROLLBACK}
roles_st = st.frozensets(st.sampled_from(list(Role)), max_size=4)
brands_st = st.frozensets(st.sampled_from(["Ray-Ban", "ray ban", "Kōdo", "Oakley", "Lindberg"]), max_size=3)


def ancestors_closure(role: Role) -> set[Role]:
    """Independent restatement: the role and everything reachable through INHERITS."""
    reached = {role}
    frontier = [role]
    while frontier:
        for child in INHERITS[frontier.pop()]:
            if child not in reached:
                reached.add(child)
                frontier.append(child)
    return reached


def test_the_contract_table() -> None:
    table = {
        Permission.PRODUCT_READ: {
            Role.VIEWER,
            Role.EDITOR,
            Role.CATALOG_MANAGER,
            Role.ADMIN,
            Role.INGESTOR,
            Role.AUDITOR,
        },
        Permission.STORE_READ: {
            Role.VIEWER,
            Role.EDITOR,
            Role.CATALOG_MANAGER,
            Role.ADMIN,
            Role.INGESTOR,
            Role.AUDITOR,
        },
        Permission.INGESTION_READ: {
            Role.VIEWER,
            Role.EDITOR,
            Role.CATALOG_MANAGER,
            Role.ADMIN,
            Role.INGESTOR,
            Role.AUDITOR,
        },
        Permission.PRODUCT_WRITE: {Role.EDITOR, Role.CATALOG_MANAGER, Role.ADMIN},
        Permission.PRODUCT_ARCHIVE: {Role.CATALOG_MANAGER, Role.ADMIN},
        Permission.INGESTION_ROLLBACK: {Role.CATALOG_MANAGER, Role.ADMIN},
        Permission.STORE_MANAGE: {Role.CATALOG_MANAGER, Role.ADMIN},
        Permission.INGESTION_RUN: {Role.INGESTOR, Role.CATALOG_MANAGER, Role.ADMIN},
        Permission.AUDIT_READ: {Role.AUDITOR, Role.ADMIN},
        Permission.CLIENT_MANAGE: {Role.ADMIN},
    }
    for permission, holders in table.items():
        assert {role for role in Role if permission in permissions_of([role])} == holders, permission


@given(roles_st)
def test_inheritance_is_transitive_and_closed(roles: frozenset[Role]) -> None:
    effective = effective_roles(roles)
    assert effective_roles(effective) == effective
    assert effective == set().union(*(ancestors_closure(r) for r in roles)) if roles else effective == frozenset()


@given(roles_st)
def test_no_permission_comes_from_nowhere(roles: frozenset[Role]) -> None:
    """Every granted permission is granted directly to one of the roles or to a role they inherit."""
    for permission in permissions_of(roles):
        assert any(permission in GRANTS[r] for r in roles for r in ancestors_closure(r))


@given(roles_st, roles_st)
def test_more_roles_never_mean_fewer_permissions(a: frozenset[Role], b: frozenset[Role]) -> None:
    assert permissions_of(a) <= permissions_of(a | b)


@given(
    roles_st,
    brands_st,
    st.sampled_from(list(Permission)),
    st.lists(st.sampled_from(["Ray-Ban", "Kōdo", "Oakley", "Persol"]), max_size=2),
)
def test_a_brand_scope_never_widens_access(
    roles: frozenset[Role], brands: frozenset[str], permission: Permission, touched: list[str]
) -> None:
    request = AccessRequest(permission, "product:x", tuple(touched))
    unscoped = decide(Principal("u", roles), request)
    scoped = decide(Principal("u", roles, brands), request)
    assert not (scoped.allowed and not unscoped.allowed)
    if scoped.allowed and brands and touched and permission in CHANGES_PRODUCTS:
        assert all(Principal("u", roles, brands).covers_brand(b) for b in touched)


@given(st.sampled_from(list(Permission)))
def test_no_roles_no_access(permission: Permission) -> None:
    assert not decide(Principal("nobody", frozenset()), AccessRequest(permission, "x")).allowed


def test_brand_names_compare_like_product_ids() -> None:
    scoped = Principal("e", frozenset({Role.EDITOR}), frozenset({"Ray-Ban"}))
    assert scoped.covers_brand("ray ban") and scoped.covers_brand("RAY-BAN") and not scoped.covers_brand("Oakley")
    assert decide(scoped, AccessRequest(Permission.PRODUCT_WRITE, "p", ("Oakley",))).reason.startswith("brand")
