"""Test doubles around the cache adapter: they count, they never mock.

``CountingCatalog`` is a real repository (it delegates to one) that records how many reads reach
it, so tests can state "the second read never got here" as a fact about state.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from adapters.cache.backend import CacheStore
from adapters.cache.cached_repository import CachedCatalog
from domain.history import HistoryEntry
from domain.ports import ProductHistory, ProductRepository
from domain.product import Product
from domain.search import Facets, Page, SearchFilters, SearchQuery


class RecordingMetrics:
    """The CacheMetrics port, remembered: ``hits``, ``misses``, ``errors``."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.errors = 0

    def cache_request(self, result: str) -> None:
        self.requests[result] += 1

    def cache_error(self) -> None:
        self.errors += 1

    @property
    def hits(self) -> int:
        return self.requests["hit"]

    @property
    def misses(self) -> int:
        return self.requests["miss"]


class CountingCatalog(ProductRepository, ProductHistory):
    """Delegates every call; counts reads; ``delay`` slows reads down to widen races."""

    def __init__(self, inner: Any, delay: float = 0.0) -> None:
        self.inner = inner
        self.delay = delay
        self.reads: Counter[str] = Counter()

    async def _read(self, name: str, *args: Any) -> Any:
        self.reads[name] += 1
        result = await getattr(self.inner, name)(*args)
        if self.delay:
            await asyncio.sleep(self.delay)
        return result

    async def get(self, product_id: str) -> Product | None:
        return await self._read("get", product_id)  # type: ignore[no-any-return]

    async def get_by_sku(self, sku: str) -> Product | None:
        return await self._read("get_by_sku", sku)  # type: ignore[no-any-return]

    async def search(self, query: SearchQuery) -> Page[Product]:
        return await self._read("search", query)  # type: ignore[no-any-return]

    async def facets(self, filters: SearchFilters) -> Facets:
        return await self._read("facets", filters)  # type: ignore[no-any-return]

    async def add(self, product: Product, entry: HistoryEntry) -> None:
        await self.inner.add(product, entry)

    async def replace(self, product: Product, expected_version: int, entry: HistoryEntry) -> None:
        await self.inner.replace(product, expected_version, entry)

    async def entries(self, product_id: str) -> list[HistoryEntry]:
        return await self.inner.entries(product_id)  # type: ignore[no-any-return]


async def open_cached(inner: Any, redis_url: str | None, metrics: Any = None) -> CachedCatalog:
    """A cached catalog with its own cache client (memory when ``redis_url`` is None)."""
    store = CacheStore.open(redis_url, metrics or RecordingMetrics())
    await store.init()
    return CachedCatalog(inner, store)
