"""Use cases over the memory twin: the behaviour callers rely on, checked by state."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from adapters.html.nh3_sanitizer import Nh3Sanitizer
from adapters.memory.audit_log import MemoryAuditLog
from adapters.memory.catalog import MemoryCatalog
from adapters.memory.clock import FixedClock
from application.audit_queries import ReadAudit
from application.authorization import Authorizer
from application.catalog_commands import ArchiveProduct, CreateProduct, PatchVariant, ReplaceProduct
from application.catalog_queries import GetFacets, GetHistory, GetProduct, GetProductBySku, SearchProducts
from domain.errors import AccessDenied, ErrorCode, ProductConflict, ProductNotFound, ValidationFailed, VersionMismatch
from tests.builders import authorizer, caller, payload, variant


@pytest.fixture
def repo() -> MemoryCatalog:
    return MemoryCatalog()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def create(repo: MemoryCatalog, clock: FixedClock) -> CreateProduct:
    return CreateProduct(repo, clock, Nh3Sanitizer(), authorizer())


@pytest.fixture
def replace(repo: MemoryCatalog, clock: FixedClock) -> ReplaceProduct:
    return ReplaceProduct(repo, clock, Nh3Sanitizer(), authorizer())


async def test_create_derives_and_records(create: CreateProduct, repo: MemoryCatalog) -> None:
    product = await create(
        payload(description_html='<p onclick="x()">Hi<script>alert(1)</script></p>'), caller("alice")
    )
    assert product.product_id == "ray-ban-rb3016"
    assert product.version == 1
    assert product.draft.description_html == "<p>Hi</p>"
    assert [e.actor for e in await GetHistory(repo, repo, authorizer())(product.product_id, caller())] == ["alice"]


async def test_create_names_the_conflicting_sku_by_its_place_in_the_body(create: CreateProduct) -> None:
    await create(payload(), caller("a"))
    body = payload("OTHER", variants=[variant("OTHER-A"), variant(" rb3016-blk-51 ")])
    with pytest.raises(ProductConflict) as caught:
        await create(body, caller("a"))
    assert [(e.field, e.code) for e in caught.value.errors] == [("variants[1].sku", ErrorCode.SKU_CONFLICT)]


async def test_replace_bumps_the_version_by_one_and_ignores_read_only_fields(
    create: CreateProduct, replace: ReplaceProduct, repo: MemoryCatalog
) -> None:
    created = await create(payload(), caller("a"))
    body = payload(name="Club Two", product_id="ignored", version=99, completeness=0.1, status="archived")
    body["variants"][0]["size_label"] = "nonsense"
    replaced = await replace(created.product_id, body, 1, caller("b"))
    assert (replaced.version, replaced.name, replaced.status.value) == (2, "Club Two", "active")
    assert replaced.created_at == created.created_at < replaced.updated_at
    history = await GetHistory(repo, repo, authorizer())(created.product_id, caller())
    assert [(e.version, e.actor) for e in history] == [(1, "a"), (2, "b")]


async def test_replace_with_the_same_content_changes_nothing(create: CreateProduct, replace: ReplaceProduct) -> None:
    created = await create(payload(), caller("a"))
    assert await replace(created.product_id, payload(), 1, caller("b")) == created


async def test_replace_refuses_stale_versions_and_identity_changes(
    create: CreateProduct, replace: ReplaceProduct
) -> None:
    created = await create(payload(), caller("a"))
    with pytest.raises(VersionMismatch):
        await replace(created.product_id, payload(name="X"), 7, caller("b"))
    with pytest.raises(ValidationFailed) as caught:
        await replace(created.product_id, payload(style_id="OTHER"), 1, caller("b"))
    assert caught.value.errors[0].field == "style_id"
    with pytest.raises(ProductNotFound):
        await replace("missing", payload(), 1, caller("b"))


async def test_concurrent_replaces_with_one_version_let_exactly_one_through(
    create: CreateProduct, replace: ReplaceProduct
) -> None:
    created = await create(payload(), caller("a"))
    results = await asyncio.gather(
        *(replace(created.product_id, payload(name=f"N{i}"), 1, caller(f"u{i}")) for i in range(8)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, VersionMismatch) for r in results if isinstance(r, Exception))


async def test_patch_price_and_stock(create: CreateProduct, repo: MemoryCatalog, clock: FixedClock) -> None:
    await create(payload(), caller("a"))
    patch = PatchVariant(repo, clock, authorizer())
    after = await patch("rb3016-blk-51", {"price": {"amount": "99.5"}, "stock_quantity": 0}, 1, caller("b"))
    v = after.variant("RB3016-BLK-51")
    assert v is not None
    assert (v.price.amount, v.price.currency, v.stock_quantity, after.version) == (Decimal("99.50"), "EUR", 0, 2)
    assert (await patch("RB3016-BLK-51", {"price": "99.50"}, 2, caller("b"))).version == 2
    assert (await patch("RB3016-BLK-51", {"price": "12"}, 2, caller("b"))).variant("RB3016-BLK-51").price.amount == 12


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({}, "price", ErrorCode.MISSING_FIELD),
        ({"price": {"amount": "1.001"}}, "price.amount", ErrorCode.INVALID_VALUE),
        ({"price": {"amount": "1", "currency": "euro"}}, "price.currency", ErrorCode.INVALID_VALUE),
        ({"stock_quantity": -1}, "stock_quantity", ErrorCode.OUT_OF_RANGE),
        ({"stock_quantity": {"$gt": 0}}, "stock_quantity.$gt", ErrorCode.THREAT_DETECTED),
        ([1], None, ErrorCode.INVALID_VALUE),
    ],
)
async def test_patch_refuses_bad_input_precisely(
    create: CreateProduct, repo: MemoryCatalog, clock: FixedClock, body: object, field: str | None, code: str
) -> None:
    created = await create(payload(), caller("a"))
    with pytest.raises(ValidationFailed) as caught:
        await PatchVariant(repo, clock, authorizer())("RB3016-BLK-51", body, 1, caller("b"))
    assert (caught.value.errors[0].field, caught.value.errors[0].code) == (field, code)
    assert await repo.get(created.product_id) == created


async def test_patch_unknown_sku_and_stale_version(
    create: CreateProduct, repo: MemoryCatalog, clock: FixedClock
) -> None:
    await create(payload(), caller("a"))
    with pytest.raises(ProductNotFound):
        await PatchVariant(repo, clock, authorizer())("NOPE-1", {"stock_quantity": 1}, 1, caller("b"))
    with pytest.raises(VersionMismatch):
        await PatchVariant(repo, clock, authorizer())("RB3016-BLK-51", {"stock_quantity": 1}, 3, caller("b"))


async def test_archive_hides_from_search_but_stays_readable(
    create: CreateProduct, repo: MemoryCatalog, clock: FixedClock
) -> None:
    created = await create(payload(), caller("a"))
    archive = ArchiveProduct(repo, clock, authorizer())
    archived = await archive(created.product_id, caller("m"))
    assert (archived.status.value, archived.version) == ("archived", 2)
    assert await archive(created.product_id, caller("m")) == archived
    assert (await GetProduct(repo, authorizer())(created.product_id, caller())).status.value == "archived"
    assert (await GetProductBySku(repo, authorizer())(" rb3016-blk-51", caller())).product_id == created.product_id
    assert (await SearchProducts(repo, authorizer())({}, caller())).items == ()
    assert (await GetFacets(repo, authorizer())({}, caller()))["brand"] == []
    with pytest.raises(ProductNotFound):
        await archive("missing", caller("m"))


async def test_archive_retries_when_a_write_slips_in_between(
    create: CreateProduct, repo: MemoryCatalog, clock: FixedClock, replace: ReplaceProduct
) -> None:
    created = await create(payload(), caller("a"))
    original_replace = repo.replace
    raced = False

    async def racing_replace(product, expected_version, entry):  # type: ignore[no-untyped-def]
        nonlocal raced
        if not raced:
            raced = True
            await replace(created.product_id, payload(name="Sneaky"), expected_version, caller("other"))
        await original_replace(product, expected_version, entry)

    repo.replace = racing_replace  # type: ignore[method-assign]
    archived = await ArchiveProduct(repo, clock, authorizer())(created.product_id, caller("m"))
    assert (archived.version, archived.name, archived.status.value) == (3, "Sneaky", "archived")


async def test_reads_of_missing_things(repo: MemoryCatalog) -> None:
    with pytest.raises(ProductNotFound):
        await GetProduct(repo, authorizer())("x", caller())
    with pytest.raises(ProductNotFound):
        await GetProductBySku(repo, authorizer())("x-1", caller())
    with pytest.raises(ProductNotFound):
        await GetHistory(repo, repo, authorizer())("x", caller())


async def test_every_use_case_checks_its_permission_and_records_the_decision(repo: MemoryCatalog) -> None:
    audit = MemoryAuditLog()
    authz = Authorizer(audit, FixedClock())
    clock = FixedClock()
    await CreateProduct(repo, clock, Nh3Sanitizer(), authz)(payload(), caller("boss"))
    viewer = caller("val", "viewer")
    with pytest.raises(AccessDenied):
        await CreateProduct(repo, clock, Nh3Sanitizer(), authz)(payload("X1", variants=[variant("X1-A")]), viewer)
    with pytest.raises(AccessDenied):
        await ReplaceProduct(repo, clock, Nh3Sanitizer(), authz)("ray-ban-rb3016", payload(name="N"), 1, viewer)
    with pytest.raises(AccessDenied):
        await PatchVariant(repo, clock, authz)("RB3016-BLK-51", {"stock_quantity": 1}, 1, viewer)
    with pytest.raises(AccessDenied):
        await ArchiveProduct(repo, clock, authz)("ray-ban-rb3016", caller("ed", "editor"))
    with pytest.raises(AccessDenied):
        await ReadAudit(audit, authz)({}, viewer)
    assert (await GetProduct(repo, authz)("ray-ban-rb3016", viewer)).version == 1
    assert await repo.get("ray-ban-x1") is None
    records = (await ReadAudit(audit, authz)({"limit": "200"}, caller("aud", "auditor"))).items
    decisions = [(r.actor, r.action, r.decision.value) for r in reversed(records)]
    assert decisions == [
        ("boss", "product:write", "allow"),
        ("val", "product:write", "deny"),
        ("val", "product:write", "deny"),
        ("val", "product:write", "deny"),
        ("ed", "product:archive", "deny"),
        ("val", "audit:read", "deny"),
        ("val", "product:read", "allow"),
        ("aud", "audit:read", "allow"),
    ]
    assert all(r.correlation_id.startswith("req-") for r in records)


async def test_brand_scoped_writers_stay_inside_their_brands(repo: MemoryCatalog) -> None:
    authz = authorizer()
    clock = FixedClock()
    create = CreateProduct(repo, clock, Nh3Sanitizer(), authz)
    scoped = caller("rb-editor", "editor", brands=("ray ban",))
    created = await create(payload(), scoped)
    assert created.brand == "Ray-Ban"
    with pytest.raises(AccessDenied):
        await create(payload("K1", "Kōdo", [variant("K1-A")]), scoped)
    other = await create(payload("K1", "Kōdo", [variant("K1-A")]), caller())
    with pytest.raises(AccessDenied):
        await PatchVariant(repo, clock, authz)("K1-A", {"stock_quantity": 1}, 1, scoped)
    with pytest.raises(AccessDenied):
        await ReplaceProduct(repo, clock, Nh3Sanitizer(), authz)(other.product_id, payload("K1", "Kōdo"), 1, scoped)
    assert (await repo.get(other.product_id)).version == 1
    assert (await PatchVariant(repo, clock, authz)("RB3016-BLK-51", {"stock_quantity": 2}, 1, scoped)).version == 2
