"""The store ports' contract: the same assertions against the memory twins and MongoDB."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

import pytest

from adapters.memory.catalog import MemoryCatalog
from adapters.memory.stores import MemoryStoreCatalog, MemoryStoreProfiles
from adapters.mongo.stores import MongoStoreCatalog, MongoStoreProfiles
from domain.enums import Category
from domain.history import record_change
from domain.store_catalog import StoreCollection
from domain.store_ports import StoreCatalogSource, StoreProfiles
from domain.stores import StoreProfile
from tests.builders import T0, creation, payload, product, sunglasses, variant


@dataclass
class World:
    catalog: Any
    profiles: StoreProfiles
    source: StoreCatalogSource

    async def add(self, *items: Any) -> None:
        for item in items:
            await self.catalog.add(item, creation(item))

    async def products(self, profile: StoreProfile) -> list[dict[str, Any]]:
        return [dict(entry) async for entry in self.source.products(profile)]


@pytest.fixture(params=["memory", "mongo"])
def world(request: pytest.FixtureRequest) -> World:
    if request.param == "memory":
        catalog = MemoryCatalog()
        return World(catalog, MemoryStoreProfiles(), MemoryStoreCatalog(catalog))
    mongo = request.getfixturevalue("mongo_catalog")
    return World(mongo, MongoStoreProfiles(mongo.database), MongoStoreCatalog(mongo.database))


EUR = StoreProfile("eu", "Europe", "EUR")


async def seed(world: World) -> None:
    club = product(
        payload(
            variants=[
                variant("RB3016-BLK-51", "120.00", image_urls=[]),
                variant("RB3016-TOR-55", "150.00", color_name="Tortoise", lens_width_mm=55, stock_quantity=0),
                variant("RB3016-USD-51", "130.00", "USD"),
            ]
        )
    )
    wayfarer = product(sunglasses())  # Ray-Ban, EUR 120.00, small, in stock
    shouting = product(payload("RB4165", "RAY-BAN", [variant("RB4165-A", "99.90")], name="Aviator"))
    moon = product(payload("R1", "Kōdo", [variant("R1-A", "80.00", "USD")], name="Moon", frame_shape="round"))
    sold_out = product(
        payload("OX8046", "Oakley", [variant("OX8046-A", "90.00", stock_quantity=0)], frame_shape="rectangle")
    )
    gone = product(sunglasses("OO9208", "Oakley", variants=[variant("OO9208-A", lens_category=3)]))
    archived = gone.archived(T0)
    await world.add(club, wayfarer, shouting, moon, sold_out, gone)
    await world.catalog.replace(archived, 1, record_change(gone, archived, "t", "api"))


async def test_profiles_are_created_then_replaced(world: World) -> None:
    assert await world.profiles.get("eu") is None
    assert await world.profiles.put(EUR) is True
    assert await world.profiles.get("eu") == EUR
    changed = replace(EUR, name="Europe 2", categories=(Category.SUNGLASSES,), brands=("Ray-Ban", "Oakley"))
    assert await world.profiles.put(changed) is False
    assert await world.profiles.get("eu") == changed
    assert await world.profiles.get("other") is None


async def test_concurrent_creates_report_exactly_one_creation(world: World) -> None:
    outcomes = await asyncio.gather(*(world.profiles.put(replace(EUR, name=f"Europe {i}")) for i in range(6)))
    assert sorted(outcomes) == [False] * 5 + [True]
    stored = await world.profiles.get("eu")
    assert stored is not None and stored.name.startswith("Europe ")


async def test_the_store_shows_active_products_with_in_stock_variants_in_its_currency(world: World) -> None:
    await seed(world)
    entries = await world.products(EUR)
    assert [e["product_id"] for e in entries] == ["ray-ban-rb2140", "ray-ban-rb3016", "ray-ban-rb4165"]
    club = entries[1]
    assert club == {
        "product_id": "ray-ban-rb3016",
        "url_path": "/p/ray-ban-rb3016",
        "title": "Ray-Ban Clubmaster",
        "brand": "Ray-Ban",
        "category": "eyeglasses",
        "frame_shape": "browline",
        "face_shapes": ["diamond", "oblong", "oval"],
        "price_range": {"min": "120.00", "max": "120.00", "currency": "EUR"},
        "size_labels": ["51□21-145"],
        "colors": ["Black"],
        "image_url": None,  # the only store variant has no image
        "variants": [
            {
                "sku": "RB3016-BLK-51",
                "color_name": "Black",
                "size_label": "51□21-145",
                "price": "120.00",
                "in_stock": True,
            }
        ],
    }
    assert entries[2]["price_range"] == {"min": "99.90", "max": "99.90", "currency": "EUR"}
    assert entries[0]["image_url"] == "https://img.example.com/a.jpg"


async def test_out_of_stock_variants_when_the_profile_includes_them(world: World) -> None:
    await seed(world)
    entries = await world.products(replace(EUR, include_out_of_stock=True))
    assert [e["product_id"] for e in entries] == ["oakley-ox8046", "ray-ban-rb2140", "ray-ban-rb3016", "ray-ban-rb4165"]
    club = entries[2]
    assert club["price_range"] == {"min": "120.00", "max": "150.00", "currency": "EUR"}
    assert club["size_labels"] == ["51□21-145", "55□21-145"]
    assert club["colors"] == ["Black", "Tortoise"]
    assert [(v["sku"], v["in_stock"]) for v in club["variants"]] == [("RB3016-BLK-51", True), ("RB3016-TOR-55", False)]
    assert club["image_url"] == "https://img.example.com/a.jpg"  # of the first variant that has one


async def test_currency_category_and_brand_filters(world: World) -> None:
    await seed(world)
    usd = await world.products(StoreProfile("us", "US", "USD"))
    assert [(e["product_id"], e["price_range"]["min"]) for e in usd] == [
        ("kodo-r1", "80.00"),
        ("ray-ban-rb3016", "130.00"),
    ]
    assert [v["sku"] for v in usd[1]["variants"]] == ["RB3016-USD-51"]
    shades = await world.products(replace(EUR, categories=(Category.SUNGLASSES,)))
    assert [e["product_id"] for e in shades] == ["ray-ban-rb2140"]
    ray_ban = await world.products(replace(EUR, brands=("ray-ban",), include_out_of_stock=True))
    assert [e["product_id"] for e in ray_ban] == ["ray-ban-rb2140", "ray-ban-rb3016", "ray-ban-rb4165"]
    both = replace(EUR, brands=("oakley", "RAY-BAN"), categories=(Category.EYEGLASSES,), include_out_of_stock=True)
    assert [e["product_id"] for e in await world.products(both)] == [
        "oakley-ox8046",
        "ray-ban-rb3016",
        "ray-ban-rb4165",
    ]
    assert await world.products(replace(EUR, brands=("Kōdo",))) == []  # Kōdo sells in USD only


async def test_summary_collections_facets_and_counts(world: World) -> None:
    await seed(world)
    summary = await world.source.summary(replace(EUR, include_out_of_stock=True))
    assert summary.collections == (
        StoreCollection("brand-oakley", "Oakley", ("oakley-ox8046",)),
        # Two spellings of one brand make one collection, its products by title ("RAY-BAN …" first).
        StoreCollection("brand-ray-ban", "RAY-BAN", ("ray-ban-rb4165", "ray-ban-rb3016", "ray-ban-rb2140")),
        StoreCollection("category-eyeglasses", "Eyeglasses", ("oakley-ox8046", "ray-ban-rb4165", "ray-ban-rb3016")),
        StoreCollection("category-sunglasses", "Sunglasses", ("ray-ban-rb2140",)),
        StoreCollection("shape-browline", "Browline", ("ray-ban-rb4165", "ray-ban-rb3016")),
        StoreCollection("shape-rectangle", "Rectangle", ("oakley-ox8046",)),
        StoreCollection("shape-wayfarer", "Wayfarer", ("ray-ban-rb2140",)),
    )
    facets = {name: [(f.value, f.count) for f in values] for name, values in summary.facets.items()}
    assert facets == {
        "brand": [("Ray-Ban", 2), ("Oakley", 1), ("RAY-BAN", 1)],
        "frame_shape": [("browline", 2), ("rectangle", 1), ("wayfarer", 1)],
        "frame_material": [("acetate", 4)],
        "rim_type": [("full-rim", 4)],
        "size_class": [("medium", 3), ("large", 1), ("small", 1)],
        "gender": [("unisex", 4)],
        "face_shape": [("oval", 4), ("diamond", 2), ("oblong", 2), ("round", 2), ("heart", 1)],
    }
    assert (summary.counts.products, summary.counts.variants) == (4, 5)


async def test_size_facets_count_only_store_variants(world: World) -> None:
    await seed(world)
    summary = await world.source.summary(replace(EUR, brands=("Ray-Ban",)))
    assert [(f.value, f.count) for f in summary.facets["size_class"]] == [("medium", 2), ("small", 1)]
    assert (summary.counts.products, summary.counts.variants) == (3, 3)


async def test_an_empty_store(world: World) -> None:
    await seed(world)
    profile = StoreProfile("ch", "Switzerland", "CHF")
    assert await world.products(profile) == []
    summary = await world.source.summary(profile)
    assert summary.collections == ()
    assert all(values == [] for values in summary.facets.values())
    assert len(summary.facets) == 7
    assert (summary.counts.products, summary.counts.variants) == (0, 0)
