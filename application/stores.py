"""Store use cases: manage profiles (``store:manage``), read and export store data (``store:read``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from application.authorization import Authorizer, Caller
from domain.ports import Clock
from domain.rbac import Permission
from domain.store_catalog import (
    StoreProductEntry,
    StoreSummary,
    catalog_head,
    collection_to_dict,
    counts_to_dict,
    facets_to_dict,
)
from domain.store_ports import StoreCatalogSource, StoreExportSink, StoreProfiles
from domain.stores import StoreNotFound, StoreProfile, parse_store_profile

EXPORT_FILES = ("store.json", "products.ndjson", "collections.json", "facets.json")


async def _profile(profiles: StoreProfiles, store_id: str) -> StoreProfile:
    profile = await profiles.get(store_id)
    if profile is None:
        raise StoreNotFound(f"no store {store_id!r}")
    return profile


class PutStoreProfile:
    def __init__(self, profiles: StoreProfiles, authorizer: Authorizer) -> None:
        self.profiles = profiles
        self.authorizer = authorizer

    async def __call__(self, store_id: str, payload: Any, caller: Caller) -> tuple[StoreProfile, bool]:
        """The stored profile and whether it was created (else it replaced the previous one)."""
        await self.authorizer.require(caller, Permission.STORE_MANAGE, f"store:{store_id}")
        profile = parse_store_profile(store_id, payload)
        return profile, await self.profiles.put(profile)


class GetStoreProfile:
    def __init__(self, profiles: StoreProfiles, authorizer: Authorizer) -> None:
        self.profiles = profiles
        self.authorizer = authorizer

    async def __call__(self, store_id: str, caller: Caller) -> StoreProfile:
        await self.authorizer.require(caller, Permission.STORE_READ, f"store:{store_id}")
        return await _profile(self.profiles, store_id)


@dataclass(frozen=True)
class StoreData:
    """The store generation data; ``products`` is a stream, to be consumed once."""

    profile: StoreProfile
    generated_at: datetime
    summary: StoreSummary
    products: AsyncIterator[StoreProductEntry]

    def head(self) -> dict[str, Any]:
        return catalog_head(self.profile, self.generated_at)

    def tail(self) -> dict[str, Any]:
        """What follows the products: collections, facets and counts."""
        return {
            "collections": [collection_to_dict(c) for c in self.summary.collections],
            "facets": facets_to_dict(self.summary.facets),
            "counts": counts_to_dict(self.summary.counts),
        }


class StoreCatalog:
    def __init__(
        self, profiles: StoreProfiles, source: StoreCatalogSource, clock: Clock, authorizer: Authorizer
    ) -> None:
        self.profiles = profiles
        self.source = source
        self.clock = clock
        self.authorizer = authorizer

    async def __call__(self, store_id: str, caller: Caller, resource: str = "catalog") -> StoreData:
        await self.authorizer.require(caller, Permission.STORE_READ, f"store:{store_id}/{resource}")
        profile = await _profile(self.profiles, store_id)
        generated_at = self.clock.now()
        summary = await self.source.summary(profile)
        return StoreData(profile, generated_at, summary, self.source.products(profile))


@dataclass(frozen=True)
class StoreExport:
    store_id: str
    files: tuple[str, ...]
    products: int
    variants: int
    collections: int


class ExportStore:
    """Writes the store data as four files; products go to the sink one by one, never all at once."""

    def __init__(self, catalog: StoreCatalog) -> None:
        self.catalog = catalog

    async def __call__(self, store_id: str, sink: StoreExportSink, caller: Caller) -> StoreExport:
        data = await self.catalog(store_id, caller, resource="export")
        tail = data.tail()
        store = await sink.write_json("store.json", {**data.head(), "counts": tail["counts"]})
        products, lines = await sink.write_lines("products.ndjson", data.products)
        collections = await sink.write_json("collections.json", tail["collections"])
        facets = await sink.write_json("facets.json", tail["facets"])
        return StoreExport(
            data.profile.store_id,
            (store, products, collections, facets),
            lines,
            data.summary.counts.variants,
            len(data.summary.collections),
        )
