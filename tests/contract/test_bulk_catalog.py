"""The batch catalog contract (``BulkCatalog``): the same assertions against every adapter of it."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from adapters.mongo.mapping import product_to_bson
from adapters.mongo.product_repository import MongoCatalog
from domain.errors import ErrorCode, ProductConflict, VersionMismatch
from domain.feed_rows import fields_hash, variant_hash
from domain.history import HistoryEntry, ingestion_source, record_change
from domain.ports import Fingerprint, ProductWrite
from domain.product import Product
from domain.search import parse_search
from tests.builders import T0, creation, payload, product, sunglasses, variant

RUN = ingestion_source("run-1")


def _later(p: Product, seconds: int = 1, **changes: Any) -> Product:
    return p.replaced_by(dataclasses.replace(p.draft, **changes), T0 + timedelta(seconds=seconds))


def _create(p: Product) -> ProductWrite:
    return ProductWrite(None, p, record_change(None, p, "ingestor", RUN, keep_previous=True))


def _replace(before: Product, after: Product, reverts: bool = False) -> ProductWrite:
    return ProductWrite(
        before, after, record_change(before, after, "ingestor", RUN, keep_previous=True, reverts=reverts)
    )


async def _seed(catalog: Any, *products: Product) -> None:
    for p in products:
        await catalog.add(p, creation(p))


async def _state(catalog: Any, *ids: str) -> dict[str, Any]:
    """Everything a batch could have changed about these products."""
    return {pid: (await catalog.get(pid), await catalog.entries(pid)) for pid in ids}


def _expected_fingerprint(p: Product) -> Fingerprint:
    return Fingerprint(p.product_id, p.version, fields_hash(p.draft), {v.sku: variant_hash(v) for v in p.variants})


async def test_fingerprints_carry_the_content_hashes_of_stored_products(catalog: Any) -> None:
    club = product(payload(variants=[variant("RB3016-A"), variant("RB3016-B", gtin="08053672000016")]))
    old = product(payload("OLD1", variants=[variant("OLD1-A")])).archived(T0)
    await _seed(catalog, club, old)
    renamed = _later(club, name="Club")
    await catalog.replace(renamed, 1, record_change(club, renamed, "x", "api"))
    found = await catalog.fingerprints([club.product_id, old.product_id, "nope"])
    assert found == {club.product_id: _expected_fingerprint(renamed), old.product_id: _expected_fingerprint(old)}
    assert found[club.product_id].version == 2
    assert await catalog.fingerprints([]) == {}


async def test_owners_and_get_many(catalog: Any) -> None:
    club = product(payload(variants=[variant("RB3016-A", gtin="08053672000016"), variant("RB3016-B")]))
    way = product(sunglasses())
    await _seed(catalog, club, way)
    assert await catalog.sku_owners({"RB3016-A", "RB3016-B", "RB2140-G15-50", "NOPE-1"}) == {
        "RB3016-A": club.product_id,
        "RB3016-B": club.product_id,
        "RB2140-G15-50": way.product_id,
    }
    assert await catalog.gtin_owners(["08053672000016", "00000000000000"]) == {"08053672000016": "RB3016-A"}
    assert await catalog.get_many({club.product_id, way.product_id, "nope"}) == {
        club.product_id: club,
        way.product_id: way,
    }
    assert await catalog.sku_owners(set()) == {} and await catalog.get_many([]) == {}


async def test_a_batch_creates_replaces_and_deletes(catalog: Any) -> None:
    keep, gone = product(payload("KEEP1", variants=[variant("KEEP1-A")])), product(payload("GONE1"))
    await _seed(catalog, keep, gone)
    new = product(payload("NEW1", variants=[variant("NEW1-A", gtin="08053672000016")]))
    changed = keep.replaced_by(product(payload("KEEP1", variants=[variant("KEEP1-B")])).draft, T0)
    await catalog.write_batch([_create(new), _replace(keep, changed), ProductWrite(gone, None)])
    assert await catalog.get(new.product_id) == new
    assert await catalog.get(keep.product_id) == changed
    assert await catalog.get(gone.product_id) is None
    assert await catalog.entries(gone.product_id) == []
    assert await catalog.get_by_sku("KEEP1-A") is None
    assert await catalog.get_by_sku("KEEP1-B") == changed
    assert await catalog.get_by_sku("GONE1-BLK-51") is None
    assert await catalog.gtin_owners(["08053672000016"]) == {"08053672000016": "NEW1-A"}
    assert [e.version for e in await catalog.entries(keep.product_id)] == [1, 2]
    assert [(e.version, e.source) for e in await catalog.entries(new.product_id)] == [(1, RUN)]
    # The SKU of the deleted product is free again.
    again = product(payload("OTHER9", variants=[variant("GONE1-BLK-51")]))
    await catalog.write_batch([_create(again)])
    assert await catalog.sku_owners(["GONE1-BLK-51"]) == {"GONE1-BLK-51": again.product_id}


async def test_an_empty_batch_writes_nothing(catalog: Any) -> None:
    await catalog.write_batch([])
    assert await catalog.fingerprints(["ray-ban-rb3016"]) == {}


async def test_one_stale_version_leaves_the_whole_batch_unapplied(catalog: Any) -> None:
    a, b = product(payload("A1", variants=[variant("A1-A")])), product(payload("B1", variants=[variant("B1-A")]))
    await _seed(catalog, a, b)
    b2 = _later(b, name="Moved on")
    await catalog.replace(b2, 1, record_change(b, b2, "someone", "api"))
    before = await _state(catalog, a.product_id, b.product_id, "ray-ban-c1")
    c = product(payload("C1", variants=[variant("C1-A")]))
    with pytest.raises(VersionMismatch) as caught:
        await catalog.write_batch([_create(c), _replace(a, _later(a, name="New")), _replace(b, _later(b, name="Lost"))])
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert b.product_id in str(caught.value)
    assert await _state(catalog, a.product_id, b.product_id, c.product_id) == before
    assert await catalog.get_by_sku("C1-A") is None


@pytest.mark.parametrize(
    "case", ["create-existing", "create-twice", "delete-stale", "replace-missing", "delete-missing"]
)
async def test_every_precondition_is_checked(catalog: Any, case: str) -> None:
    a = product(payload("A1", variants=[variant("A1-A")]))
    await _seed(catalog, a)
    a2 = _later(a, name="Second")
    await catalog.replace(a2, 1, record_change(a, a2, "x", "api"))
    ghost = product(payload("GHOST1", variants=[variant("GHOST1-A")]))
    fresh = product(payload("FRESH1", variants=[variant("FRESH1-A")]))
    write, expected, actual = {
        "create-existing": (_create(a), 0, 2),
        "create-twice": (_create(fresh), 0, 1),
        "delete-stale": (ProductWrite(a, None), 1, 2),
        "replace-missing": (_replace(ghost, _later(ghost)), 1, None),
        "delete-missing": (ProductWrite(ghost, None), 1, None),
    }[case]
    with pytest.raises(VersionMismatch) as caught:
        await catalog.write_batch([_create(fresh), write])
    assert (caught.value.expected, caught.value.actual) == (expected, actual)
    assert await catalog.get(fresh.product_id) is None
    assert await catalog.get(a.product_id) == a2
    assert len(await catalog.entries(a.product_id)) == 2


async def test_a_batch_may_write_one_product_twice(catalog: Any) -> None:
    a = product(payload("A1", variants=[variant("A1-A")]))
    a2 = _later(a, name="Two")
    a3 = _later(a2, seconds=2, name="Three")
    await catalog.write_batch([_create(a), _replace(a, a2), _replace(a2, a3)])
    assert await catalog.get(a.product_id) == a3
    assert [e.version for e in await catalog.entries(a.product_id)] == [1, 2, 3]
    with pytest.raises(VersionMismatch) as caught:
        await catalog.write_batch([_replace(a3, _later(a3, seconds=3)), _replace(a3, _later(a3, seconds=4))])
    assert (caught.value.expected, caught.value.actual) == (3, 4)
    assert await catalog.get(a.product_id) == a3


@pytest.mark.parametrize("kind", ["sku", "gtin"])
async def test_a_sku_or_gtin_of_another_product_refuses_the_batch(catalog: Any, kind: str) -> None:
    owner = product(payload("OWNER1", variants=[variant("OWNER1-A", gtin="08053672000016")]))
    await _seed(catalog, owner)
    fresh = product(payload("FRESH1", variants=[variant("FRESH1-A")]))
    taken = variant("OWNER1-A") if kind == "sku" else variant("THIEF1-A", gtin="8053672000016")
    thief = product(payload("THIEF1", variants=[taken]))
    with pytest.raises(ProductConflict) as caught:
        await catalog.write_batch([_create(fresh), _create(thief)])
    assert caught.value.errors[0].code == (ErrorCode.SKU_CONFLICT if kind == "sku" else ErrorCode.GTIN_CONFLICT)
    assert owner.product_id in caught.value.message
    assert await catalog.get(fresh.product_id) is None
    assert await catalog.get(thief.product_id) is None
    assert await catalog.entries(fresh.product_id) == []


async def test_a_conflict_inside_the_batch_names_the_product_written_first(catalog: Any) -> None:
    first = product(payload("FIRST1", variants=[variant("SHARED-1")]))
    second = product(payload("SECOND1", variants=[variant("SHARED-1")]))
    with pytest.raises(ProductConflict) as caught:
        await catalog.write_batch([_create(first), _create(second)])
    assert first.product_id in caught.value.message
    assert await catalog.get_many([first.product_id, second.product_id]) == {}


async def test_entries_from_a_source_in_product_then_version_order(catalog: Any) -> None:
    zed, alpha = product(payload("ZED1", variants=[variant("ZED1-A")])), product(payload("ALPHA1"))
    api_only = product(payload("API1", variants=[variant("API1-A")]))
    await _seed(catalog, zed, api_only)
    zed2, alpha2 = _later(zed, name="Zed two"), _later(alpha, name="Alpha two")
    await catalog.write_batch([_replace(zed, zed2), _create(alpha)])
    await catalog.write_batch([_replace(alpha, alpha2, reverts=True)])
    other = ingestion_source("run-2")
    zed3 = _later(zed2, seconds=2, name="Zed three")
    await catalog.write_batch([ProductWrite(zed2, zed3, record_change(zed2, zed3, "ingestor", other, True))])
    entries: list[HistoryEntry] = [entry async for entry in catalog.entries_from(RUN)]
    assert [(e.product_id, e.version) for e in entries] == [
        (alpha.product_id, 1),
        (alpha.product_id, 2),
        (zed.product_id, 2),
    ]
    assert [e.previous for e in entries] == [None, alpha, zed]
    assert [e.reverts for e in entries] == [False, True, False]
    assert entries == [*(await catalog.entries(alpha.product_id)), (await catalog.entries(zed.product_id))[1]]
    assert [e.version async for e in catalog.entries_from(other)] == [3]
    assert [e async for e in catalog.entries_from("ingestion:none")] == []
    assert await catalog.count_entries(RUN) == len(entries)
    assert (await catalog.count_entries(other), await catalog.count_entries("ingestion:none")) == (1, 0)
    # The API's own entries keep no previous product.
    assert (await catalog.entries(api_only.product_id))[0].previous is None


async def test_entries_from_reads_every_page(catalog: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("adapters.mongo.bulk_writes.PAGE", 2)
    items = [product(payload(f"P{i}", variants=[variant(f"P{i}-A")])) for i in range(5)]
    await catalog.write_batch([_create(p) for p in items])
    await catalog.write_batch([_replace(p, _later(p)) for p in items[:3]])
    listed = [(e.product_id, e.version) async for e in catalog.entries_from(RUN)]
    assert listed == sorted([(p.product_id, 1) for p in items] + [(p.product_id, 2) for p in items[:3]])


async def test_a_read_after_a_batch_is_never_stale(catalog: Any) -> None:
    a = product(payload("A1", variants=[variant("A1-A")]))
    b = product(payload("B1", variants=[variant("B1-A")]))
    await _seed(catalog, a, b)
    # Warm every kind of cached read.
    assert await catalog.get(a.product_id) == a and await catalog.get_by_sku("A1-A") == a
    assert await catalog.get_by_sku("A1-NEW") is None and await catalog.get(b.product_id) == b
    assert [p.name for p in (await catalog.search(parse_search({"q": "clubmaster"}))).items] == ["Clubmaster"] * 2
    moved = a.replaced_by(product(payload("A1", variants=[variant("A1-NEW")], name="Renamed")).draft, T0)
    await catalog.write_batch([_replace(a, moved), ProductWrite(b, None)])
    assert await catalog.get(a.product_id) == moved
    assert await catalog.get_by_sku("A1-A") is None
    assert await catalog.get_by_sku("A1-NEW") == moved
    assert await catalog.get(b.product_id) is None and await catalog.get_by_sku("B1-A") is None
    assert (await catalog.search(parse_search({"q": "clubmaster"}))).items == ()
    assert [p.product_id for p in (await catalog.search(parse_search({"q": "renamed"}))).items] == [a.product_id]


async def test_documents_written_before_the_hashes_still_have_fingerprints(mongo_catalog: MongoCatalog) -> None:
    p = product(payload(variants=[variant("RB3016-A"), variant("RB3016-B")]))
    document = product_to_bson(p)
    del document["fields_hash"]
    for stored in document["variants"]:
        del stored["content_hash"]
    await mongo_catalog.products.insert_one(document)
    assert await mongo_catalog.fingerprints([p.product_id]) == {p.product_id: _expected_fingerprint(p)}
    assert await mongo_catalog.get(p.product_id) == p


async def test_the_stored_document_holds_the_hashes(mongo_catalog: MongoCatalog) -> None:
    p = product(payload(variants=[variant("RB3016-A")]))
    await mongo_catalog.write_batch([_create(p)])
    raw = await mongo_catalog.products.find_one({"_id": p.product_id})
    assert raw["fields_hash"] == fields_hash(p.draft)
    assert raw["variants"][0]["content_hash"] == variant_hash(p.variants[0])


async def test_raw_digests_are_stored_by_an_ingestion_write_and_dropped_by_any_other(catalog: Any) -> None:
    """ADR 0011: a raw digest only ever stands for the stored variant *and* product fields."""
    p = product(payload(variants=[variant("RB3016-A"), variant("RB3016-B")]))
    raw = {"RB3016-A": "a" * 32, "RB3016-B": "b" * 32, "NOT-STORED": "c" * 32}
    await catalog.write_batch([dataclasses.replace(_create(p), raw_digests=raw)])
    fingerprint = (await catalog.fingerprints([p.product_id]))[p.product_id]
    assert fingerprint.raw_hashes == {"RB3016-A": "a" * 32, "RB3016-B": "b" * 32}
    assert dataclasses.replace(fingerprint, raw_hashes={}) == _expected_fingerprint(p)
    assert await catalog.get(p.product_id) == p

    # Stamped: the digests change, the product (version, content, history) does not.
    await catalog.write_batch([ProductWrite(p, p, None, {"RB3016-A": "d" * 32})])
    fingerprint = (await catalog.fingerprints([p.product_id]))[p.product_id]
    assert (fingerprint.version, fingerprint.raw_hashes) == (1, {"RB3016-A": "d" * 32})
    assert [e.version for e in await catalog.entries(p.product_id)] == [1]

    # An API write (the repository port) drops them all.
    renamed = _later(p, name="Club")
    await catalog.replace(renamed, 1, record_change(p, renamed, "x", "api"))
    assert (await catalog.fingerprints([p.product_id]))[p.product_id].raw_hashes == {}

    # So does a batch write that carries none (a rollback's).
    await catalog.write_batch([_replace(renamed, _later(renamed, 2, name="Club 2"))])
    assert (await catalog.fingerprints([p.product_id]))[p.product_id].raw_hashes == {}
    again = await catalog.get(p.product_id)
    await catalog.write_batch([ProductWrite(again, again, None, {"RB3016-B": "e" * 32})])
    assert (await catalog.fingerprints([p.product_id]))[p.product_id].raw_hashes == {"RB3016-B": "e" * 32}
    await catalog.write_batch([_replace(again, _later(again, 3, name="Club 3"))])
    assert (await catalog.fingerprints([p.product_id]))[p.product_id].raw_hashes == {}


async def test_a_stamp_is_conditional_on_the_version_like_any_write(catalog: Any) -> None:
    p = product(payload(variants=[variant("RB3016-A")]))
    await _seed(catalog, p)
    renamed = _later(p, name="Club")
    await catalog.replace(renamed, 1, record_change(p, renamed, "x", "api"))
    with pytest.raises(VersionMismatch):
        await catalog.write_batch([ProductWrite(p, p, None, {"RB3016-A": "a" * 32})])
    assert (await catalog.fingerprints([p.product_id]))[p.product_id].raw_hashes == {}
    assert await catalog.get(p.product_id) == renamed


async def test_the_stored_document_holds_raw_digests_only_from_ingestion(mongo_catalog: MongoCatalog) -> None:
    p = product(payload(variants=[variant("RB3016-A"), variant("RB3016-B")]))
    await mongo_catalog.write_batch([ProductWrite(None, p, creation(p), {"RB3016-A": "a" * 32})])
    raw = await mongo_catalog.products.find_one({"_id": p.product_id})
    assert [v.get("raw_hash") for v in raw["variants"]] == ["a" * 32, None]
    assert "raw_hash" not in raw["variants"][1]
    assert await mongo_catalog.get(p.product_id) == p
