"""The store adapters' part of the plan-check workload: every pipeline shape a profile can give.

The shapes differ by what drives the index lookup (one brand, one category, or the status alone)
and by what the second ``$match`` holds (brand and category lists, the stock condition).
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo.stores import MongoStoreCatalog, MongoStoreProfiles
from domain.enums import Category
from domain.stores import StoreProfile

STORE_SHAPES: tuple[StoreProfile, ...] = (
    StoreProfile("plan-all", "All", "EUR"),
    StoreProfile("plan-brand", "One brand", "EUR", brands=("Ray-Ban",)),
    StoreProfile("plan-category", "One category", "EUR", categories=(Category.SUNGLASSES,)),
    StoreProfile("plan-both", "Brand and category", "EUR", (Category.EYEGLASSES,), ("Ray-Ban",), True),
    StoreProfile("plan-lists", "Lists", "USD", (Category.EYEGLASSES, Category.SUNGLASSES), ("Ray-Ban", "Oakley"), True),
)


async def drive_stores(database: AsyncDatabase[Any]) -> None:
    """Profiles written, replaced and read (a missing one too); each shape's stream and summary."""
    profiles, catalog = MongoStoreProfiles(database), MongoStoreCatalog(database)
    await profiles.get("plan-missing")
    for profile in STORE_SHAPES:
        await profiles.put(profile)
        await profiles.put(profile)  # a replacement
        stored = await profiles.get(profile.store_id)
        assert stored is not None
        await catalog.summary(stored)
        async for _ in catalog.products(stored):
            pass
