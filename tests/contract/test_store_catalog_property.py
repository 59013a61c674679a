"""Property: for any small catalog and profile, the server's pipelines give what the memory twin gives."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapters.memory.catalog import MemoryCatalog
from adapters.memory.stores import MemoryStoreCatalog
from adapters.mongo.client import MongoOptions, create_client
from adapters.mongo.migrations import migrate
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.stores import MongoStoreCatalog
from domain.enums import Category
from domain.errors import ProductConflict
from domain.history import record_change
from domain.product import Product
from domain.stores import StoreProfile
from tests.strategies import drafts, products

#: Spellings that share a slug ("Ray-Ban", "RAY-BAN", "ray ban") make brand collections merge.
SPELLINGS = ("Ray-Ban", "RAY-BAN", "ray ban", "Oakley", "Kōdo", "Lindberg")
CURRENCIES = ("EUR", "USD")


def _products(archived: bool) -> st.SearchStrategy[Product]:
    return st.sampled_from(SPELLINGS).flatmap(
        lambda brand: products(draft=drafts(brand=brand, currencies=CURRENCIES), max_versions=0, archived=archived)
    )


#: Mostly active products, so that stores are rarely empty.
_catalog_products = st.one_of(_products(False), _products(False), _products(False), _products(True))
_profiles = st.builds(
    StoreProfile,
    store_id=st.just("prop"),
    name=st.just("Property"),
    currency=st.sampled_from((*CURRENCIES, *CURRENCIES, "GBP")),
    categories=st.lists(st.sampled_from(Category), unique=True, max_size=2).map(tuple),
    brands=st.lists(
        st.sampled_from(SPELLINGS).map(str.swapcase) | st.sampled_from(SPELLINGS), unique=True, max_size=2
    ).map(tuple),
    include_out_of_stock=st.booleans(),
)


def test_mongo_store_catalog_equals_the_memory_twin(mongo_url: str) -> None:
    loop = asyncio.new_event_loop()
    client: Any = create_client(mongo_url, MongoOptions(timeout_ms=30_000))
    database = client[f"eyewear_stores_{uuid.uuid4().hex[:8]}"]
    mongo = MongoCatalog(database)

    async def compare(items: list[Product], profiles: list[StoreProfile]) -> None:
        await mongo.products.delete_many({})
        await mongo.history.delete_many({})
        memory = MemoryCatalog()
        for item in items:
            entry = record_change(None, item, "prop", "api")
            try:
                await memory.add(item, entry)
            except ProductConflict:
                continue
            await mongo.add(item, entry)
        twin, real = MemoryStoreCatalog(memory), MongoStoreCatalog(database)
        for profile in profiles:
            entries = [e async for e in real.products(profile)]
            assert entries == [e async for e in twin.products(profile)], profile
            event("an empty store" if not entries else "a store with products")
            assert await real.summary(profile) == await twin.summary(profile), profile

    @given(
        items=st.lists(_catalog_products, min_size=1, max_size=10), profiles=st.lists(_profiles, min_size=1, max_size=3)
    )
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    def check(items: list[Product], profiles: list[StoreProfile]) -> None:
        loop.run_until_complete(compare(items, profiles))

    try:
        loop.run_until_complete(migrate(database))
        check()
    finally:
        loop.run_until_complete(client.drop_database(database.name))
        loop.run_until_complete(client.close())
        loop.close()
