"""In-memory twins of the store ports: the reference the MongoDB adapters are held to."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from domain.ports import ProductRepository
from domain.product import Product
from domain.search import MAX_LIMIT, Cursor, SearchFilters, SearchQuery, SortOrder
from domain.store_catalog import StoreProductEntry, StoreSummary, product_entry, summarize
from domain.store_ports import StoreCatalogSource, StoreExportSink, StoreProfiles
from domain.stores import StoreProfile


class MemoryStoreProfiles(StoreProfiles):
    def __init__(self) -> None:
        self._profiles: dict[str, StoreProfile] = {}

    async def get(self, store_id: str) -> StoreProfile | None:
        return self._profiles.get(store_id)

    async def put(self, profile: StoreProfile) -> bool:
        created = profile.store_id not in self._profiles
        self._profiles[profile.store_id] = profile
        return created


class MemoryStoreCatalog(StoreCatalogSource):
    """Evaluates the domain's reference semantics over any product repository (read page by page)."""

    def __init__(self, products: ProductRepository) -> None:
        self.repository = products

    async def _candidates(self, profile: StoreProfile) -> list[Product]:
        # The search's variant criteria hold for one and the same variant: exactly a store variant.
        filters = SearchFilters(currency=profile.currency, in_stock=None if profile.include_out_of_stock else True)
        found: list[Product] = []
        query = SearchQuery(filters=filters, sort=SortOrder.NAME, limit=MAX_LIMIT)
        while True:
            page = await self.repository.search(query)
            found.extend(p for p in page.items if profile.selects(p))
            if page.next_cursor is None:
                return found
            cursor = Cursor.decode(page.next_cursor, SortOrder.NAME)
            query = SearchQuery(filters=filters, sort=SortOrder.NAME, limit=MAX_LIMIT, cursor=cursor)

    async def products(self, profile: StoreProfile) -> AsyncIterator[StoreProductEntry]:
        for product in sorted(await self._candidates(profile), key=lambda p: p.product_id):
            yield product_entry(profile, product)

    async def summary(self, profile: StoreProfile) -> StoreSummary:
        return summarize(profile, await self._candidates(profile))


class MemoryExportSink(StoreExportSink):
    """Keeps what an export wrote, as the JSON text a file would hold."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}

    async def write_json(self, name: str, document: Any) -> str:
        self.files[name] = json.dumps(document, ensure_ascii=False)
        return name

    async def write_lines(self, name: str, documents: AsyncIterator[Any]) -> tuple[str, int]:
        lines = [json.dumps(document, ensure_ascii=False) async for document in documents]
        self.files[name] = "".join(line + "\n" for line in lines)
        return name, len(lines)
