"""Store profiles (parsing, rules) and the store use cases over the memory twins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.files.store_export import DirectoryExportSink
from adapters.memory.audit_log import MemoryAuditLog
from adapters.memory.catalog import MemoryCatalog
from adapters.memory.clock import FixedClock
from adapters.memory.stores import MemoryExportSink, MemoryStoreCatalog, MemoryStoreProfiles
from application.authorization import Authorizer
from application.stores import EXPORT_FILES, ExportStore, GetStoreProfile, PutStoreProfile, StoreCatalog
from domain.audit import parse_audit_query
from domain.enums import Category
from domain.errors import AccessDenied, ThreatDetected, ValidationFailed
from domain.store_catalog import CollectionGroup, CollectionKind, build_collections, collection_id
from domain.stores import StoreNotFound, StoreProfile, parse_store_profile, profile_to_dict
from tests.builders import T0, caller, creation, payload, product, sunglasses, variant

BODY = {"name": " Europe ", "currency": "eur", "categories": ["sunglasses"], "brands": ["Ray-Ban"]}


def errors_of(store_id: str, body: Any) -> set[tuple[str | None, str]]:
    with pytest.raises(ValidationFailed) as caught:
        parse_store_profile(store_id, body)
    return {(e.field, e.code) for e in caught.value.errors}


def test_a_profile_is_parsed_and_normalised() -> None:
    body = {
        **BODY,
        "categories": ["sunglasses", " eyeglasses", "sunglasses"],
        "brands": ["Ray-Ban", "RAY-BAN", "Oakley"],
    }
    profile = parse_store_profile("eu-1", {**body, "store_id": "ignored", "unknown": 1})
    assert profile == StoreProfile(
        "eu-1", "Europe", "EUR", (Category.SUNGLASSES, Category.EYEGLASSES), ("Ray-Ban", "Oakley"), False
    )
    assert profile.brand_keys == ("ray-ban", "oakley")
    assert profile_to_dict(profile) == {
        "store_id": "eu-1",
        "name": "Europe",
        "currency": "EUR",
        "categories": ["sunglasses", "eyeglasses"],
        "brands": ["Ray-Ban", "Oakley"],
        "include_out_of_stock": False,
    }
    minimal = parse_store_profile("x", {"name": "X", "currency": "USD", "include_out_of_stock": True})
    assert (minimal.categories, minimal.brands, minimal.include_out_of_stock) == ((), (), True)


@pytest.mark.parametrize("store_id", ["", "EU", "eu_1", "eu 1", "é", "a" * 61, "eu/1"])
def test_a_store_id_is_a_slug(store_id: str) -> None:
    assert ("store_id", "invalid_value") in errors_of(store_id, BODY)


def test_every_field_at_fault_is_reported_at_once() -> None:
    body = {
        "name": "<b>Shop</b>",
        "currency": "euro",
        "categories": ["sunglasses", "goggles", 3],
        "brands": ["Ray-Ban", "", "x" * 61, 7],
        "include_out_of_stock": "yes",
    }
    assert errors_of("eu", body) == {
        ("name", "threat_detected"),
        ("currency", "invalid_value"),
        ("categories[1]", "invalid_value"),
        ("categories[2]", "invalid_value"),
        ("brands[1]", "out_of_range"),
        ("brands[2]", "out_of_range"),
        ("brands[3]", "invalid_value"),
        ("include_out_of_stock", "invalid_value"),
    }
    assert errors_of("eu", {}) == {("name", "missing_field"), ("currency", "missing_field")}
    assert errors_of("eu", {**BODY, "brands": "Ray-Ban"}) == {("brands", "invalid_value")}
    assert errors_of("eu", {**BODY, "brands": ["x"] * 201}) == {("brands", "out_of_range")}
    assert errors_of("eu", ["not", "an", "object"]) == {(None, "invalid_value")}


def test_operator_keys_are_a_threat() -> None:
    with pytest.raises(ThreatDetected):
        parse_store_profile("eu", {**BODY, "brands": [{"$ne": ""}]})
    with pytest.raises(ThreatDetected):
        parse_store_profile("eu", {**BODY, "$where": "1"})


def test_brand_collections_merge_spellings_that_share_a_slug() -> None:
    assert collection_id(CollectionKind.BRAND, "Kōdo Eyewear") == "brand-kodo-eyewear"
    merged = build_collections(
        [
            CollectionGroup(CollectionKind.BRAND, "Ray-Ban", ("b", "d"), ("Ray-Ban A", "Ray-Ban C")),
            CollectionGroup(CollectionKind.BRAND, "ray ban", ("c",), ("ray ban B",)),
            CollectionGroup(CollectionKind.SHAPE, "cat-eye", ("a",)),
        ]
    )
    assert [(c.collection_id, c.title, c.product_ids) for c in merged] == [
        ("brand-ray-ban", "Ray-Ban", ("b", "d", "c")),
        ("shape-cat-eye", "Cat-eye", ("a",)),
    ]


class Stores:
    def __init__(self) -> None:
        self.catalog = MemoryCatalog()
        self.audit = MemoryAuditLog()
        self.clock = FixedClock(T0)
        authorizer = Authorizer(self.audit, self.clock)
        self.profiles = MemoryStoreProfiles()
        self.put = PutStoreProfile(self.profiles, authorizer)
        self.get = GetStoreProfile(self.profiles, authorizer)
        self.read = StoreCatalog(self.profiles, MemoryStoreCatalog(self.catalog), self.clock, authorizer)
        self.export = ExportStore(self.read)

    async def audited(self) -> list[Any]:
        """Newest first."""
        return list((await self.audit.query(parse_audit_query({"limit": "200"}))).items)

    async def seed(self) -> None:
        for item in (
            product(payload(variants=[variant("RB3016-A"), variant("RB3016-B", "99.00", stock_quantity=0)])),
            product(sunglasses()),
            product(payload("OX1", "Oakley", [variant("OX1-A", "80.00", "USD")])),
        ):
            await self.catalog.add(item, creation(item))


async def test_put_creates_then_replaces_and_get_reads() -> None:
    stores = Stores()
    profile, created = await stores.put("eu", BODY, caller("boss", "catalog_manager"))
    assert created and profile.currency == "EUR"
    again, created = await stores.put("eu", {**BODY, "name": "Europe 2"}, caller("boss", "catalog_manager"))
    assert not created
    assert await stores.get("eu", caller("reader", "viewer")) == again
    with pytest.raises(StoreNotFound):
        await stores.get("nope", caller("reader", "viewer"))


async def test_managing_stores_needs_store_manage_and_every_decision_is_audited() -> None:
    stores = Stores()
    with pytest.raises(AccessDenied):
        await stores.put("eu", BODY, caller("ed", "editor"))
    assert await stores.profiles.get("eu") is None
    with pytest.raises(AccessDenied):
        await stores.get("eu", caller("nobody", "unknown-role"))
    records = [(r.actor, r.action, r.resource, r.decision.value) for r in await stores.audited()]
    assert records == [("nobody", "store:read", "store:eu", "deny"), ("ed", "store:manage", "store:eu", "deny")]


async def test_the_catalog_and_its_export() -> None:
    stores = Stores()
    await stores.seed()
    await stores.put("eu", {"name": "EU", "currency": "EUR"}, caller())
    data = await stores.read("eu", caller("reader", "viewer"))
    assert data.head() == {
        "store": profile_to_dict(await stores.profiles.get("eu")),
        "generated_at": "2026-01-01T00:00:00.002Z",
    }
    assert [e["product_id"] async for e in data.products] == ["ray-ban-rb2140", "ray-ban-rb3016"]
    assert data.tail()["counts"] == {"products": 2, "variants": 2}
    assert list(data.tail()["facets"]) == [
        "brand",
        "frame_shape",
        "frame_material",
        "rim_type",
        "size_class",
        "gender",
        "face_shape",
    ]
    sink = MemoryExportSink()
    result = await stores.export("eu", sink, caller("reader", "viewer"))
    assert result.files == EXPORT_FILES
    assert (result.products, result.variants, result.collections) == (2, 2, 5)
    lines = sink.files["products.ndjson"].splitlines()
    assert [json.loads(line)["product_id"] for line in lines] == ["ray-ban-rb2140", "ray-ban-rb3016"]
    store = json.loads(sink.files["store.json"])
    assert set(store) == {"store", "generated_at", "counts"}
    assert [c["collection_id"] for c in json.loads(sink.files["collections.json"])] == [
        "brand-ray-ban",
        "category-eyeglasses",
        "category-sunglasses",
        "shape-browline",
        "shape-wayfarer",
    ]
    assert json.loads(sink.files["facets.json"])["brand"] == [{"value": "Ray-Ban", "count": 2}]
    assert ("reader", "store:read", "store:eu/export") in [
        (r.actor, r.action, r.resource) for r in await stores.audited()
    ]
    with pytest.raises(StoreNotFound):
        await stores.export("nope", sink, caller())


async def test_the_directory_sink_writes_whole_files_only(tmp_path: Path) -> None:
    sink = DirectoryExportSink(tmp_path / "out" / "eu")

    async def entries(fail: bool) -> Any:
        yield {"n": 1}
        yield {"n": "ü"}
        if fail:
            raise RuntimeError("the database went away")

    assert await sink.write_json("store.json", {"a": 1}) == str(tmp_path / "out" / "eu" / "store.json")
    path, count = await sink.write_lines("products.ndjson", entries(False))
    assert count == 2
    assert Path(path).read_text(encoding="utf-8") == '{"n":1}\n{"n":"ü"}\n'  # noqa: ASYNC240
    with pytest.raises(RuntimeError):
        await sink.write_lines("broken.ndjson", entries(True))
    assert sorted(p.name for p in (tmp_path / "out" / "eu").iterdir()) == ["products.ndjson", "store.json"]
