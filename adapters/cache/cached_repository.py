"""The product repository port, read through a cache: the same port, the same contract.

Freshness rests on tag tokens, not on deleting entries. Every entry records the token its tag
had *before* the inner read; a write ends the tokens of its tags *after* the inner write and
before it returns (it deletes them, and the next read mints a new random one, so a process that
writes much and reads little fills no cache). An entry whose token is no longer current is never
served, so the classic race (a slow read fills the cache with what it read before a write) cannot
serve stale data, which a plain "delete by tag" cannot promise. Tags: ``product:<id>``,
``sku:<sku>`` (of the written product) and ``catalog`` (every search and facet result).

A SKU entry is a pointer to a product id, checked against the fresh product (which must still
hold the SKU), so a replace that drops or moves SKUs needs no knowledge of the old ones. Being
only a hint, a pointer is also remembered in the process, so that a read by SKU that hits costs
one cache read (the product's), like a read by id. Misses load once per process (single
flight) and, on a shared Redis, once across processes (a lock per key and token; the others
poll for the value, then load themselves after ``LOCK_TTL``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from functools import partial
from typing import Any, TypeVar

from adapters.cache import codec
from adapters.cache.backend import CacheStore
from adapters.cache.single_flight import SingleFlight
from domain.errors import ProductConflict, ProductNotFound, VersionMismatch
from domain.history import HistoryEntry
from domain.ingestion import Checkpoint
from domain.ports import (
    BatchWriter,
    BulkCatalog,
    Fingerprint,
    IngestionRuns,
    ProductHistory,
    ProductRepository,
    ProductWrite,
)
from domain.product import Product
from domain.search import Facets, Page, SearchFilters, SearchQuery

T = TypeVar("T")
logger = logging.getLogger(__name__)

CATALOG = "catalog"
PRODUCT_TTL = 300.0
NEGATIVE_TTL = 60.0
SEARCH_TTL = 30.0
LOCK_TTL = 2.0
POLL_INTERVAL = 0.005
#: SKU pointers remembered in process (~150 B each); the oldest leave first.
POINTERS = 20_000
#: Refused before anything was written: nothing to invalidate.
_REFUSED = (ProductConflict, ProductNotFound, VersionMismatch)
_NOTHING: Any = object()


def write_tags(product: Product) -> list[str]:
    return [f"product:{product.product_id}", CATALOG, *(f"sku:{sku}" for sku in product.skus)]


def batch_tags(writes: Sequence[ProductWrite]) -> list[str]:
    """The tags of every product a batch writes, before and after (old and new SKUs alike)."""
    products = [product for write in writes for product in (write.before, write.after) if product is not None]
    tags = [tag for product in products for tag in write_tags(product)]
    return list(dict.fromkeys(tags))


def _valid(entry: Any, token: str | None) -> bool:
    return token is not None and isinstance(entry, dict) and entry.get("t") == token and "v" in entry


class CachedCatalog(ProductRepository, ProductHistory, BulkCatalog):
    def __init__(self, inner: ProductRepository, store: CacheStore) -> None:
        if not isinstance(inner, ProductHistory):
            raise TypeError("the cached catalog wraps a repository that also keeps the history")
        self.inner = inner
        self.history: ProductHistory = inner
        self.store = store
        self.flights = SingleFlight()
        #: SKU -> product id, this process's copy of the SKU pointers it followed (see ``_by_sku``).
        self.pointers: dict[str, str] = {}

    # Reads.
    async def get(self, product_id: str) -> Product | None:
        product, outcome = await self._by_id(product_id)
        self._count(outcome)
        return product

    async def get_by_sku(self, sku: str) -> Product | None:
        product, outcome = await self._by_sku(sku)
        self._count(outcome)
        return product

    async def search(self, query: SearchQuery) -> Page[Product]:
        key = "q:" + codec.query_digest(query)
        load = partial(self.inner.search, query)
        page, outcome = await self._read(key, CATALOG, load, codec.page_to_json, codec.page_from_json, SEARCH_TTL)
        self._count(outcome)
        return page

    async def facets(self, filters: SearchFilters) -> Facets:
        key = "f:" + codec.filters_digest(filters)
        load = partial(self.inner.facets, filters)
        facets, outcome = await self._read(key, CATALOG, load, codec.facets_to_json, codec.facets_from_json, SEARCH_TTL)
        self._count(outcome)
        return facets

    async def entries(self, product_id: str) -> list[HistoryEntry]:
        return await self.history.entries(product_id)

    # Writes: invalidate after the inner write and before returning, also when it may have written.
    async def add(self, product: Product, entry: HistoryEntry) -> None:
        await self._write(self.inner.add(product, entry), product)

    async def replace(self, product: Product, expected_version: int, entry: HistoryEntry) -> None:
        await self._write(self.inner.replace(product, expected_version, entry), product)

    async def _write(self, write: Awaitable[None], product: Product) -> None:
        await self._write_tags(write, write_tags(product))

    async def _write_tags(self, write: Awaitable[None], tags: list[str]) -> None:
        try:
            await write
        except _REFUSED:
            raise
        except BaseException:  # a timeout or a cancellation may come after the commit
            await asyncio.shield(self.store.invalidate(tags))
            raise
        await asyncio.shield(self.store.invalidate(tags))

    # Batches: reads go to the inner store uncached (change detection must see the stored state);
    # a batch invalidates like a single write, for every product it writes.
    def _bulk(self) -> BulkCatalog:
        if not isinstance(self.inner, BulkCatalog):
            raise TypeError(f"{type(self.inner).__name__} does not implement BulkCatalog")
        return self.inner

    async def fingerprints(self, product_ids: Collection[str]) -> dict[str, Fingerprint]:
        return await self._bulk().fingerprints(product_ids)

    async def sku_owners(self, skus: Collection[str]) -> dict[str, str]:
        return await self._bulk().sku_owners(skus)

    async def gtin_owners(self, gtins: Collection[str]) -> dict[str, str]:
        return await self._bulk().gtin_owners(gtins)

    async def get_many(self, product_ids: Collection[str]) -> dict[str, Product]:
        return await self._bulk().get_many(product_ids)

    async def write_batch(self, writes: Sequence[ProductWrite]) -> None:
        if writes:
            await self._write_tags(self._bulk().write_batch(writes), batch_tags(writes))

    def writer(self, runs: IngestionRuns | None = None) -> BatchWriter:
        return _InvalidatingWriter(self, self._bulk().writer(runs))

    async def release(self, writer: str) -> None:
        await self._bulk().release(writer)

    def entries_from(self, source: str) -> AsyncIterator[HistoryEntry]:
        return self._bulk().entries_from(source)

    async def count_entries(self, source: str) -> int:
        return await self._bulk().count_entries(source)

    # The read-through machinery.
    def _count(self, outcome: str | None) -> None:
        if outcome is not None:
            self.store.metrics.cache_request(outcome)

    async def _by_id(self, product_id: str) -> tuple[Product | None, str | None]:
        return await self._read(
            f"p:{product_id}",
            f"product:{product_id}",
            partial(self.inner.get, product_id),
            codec.optional_product_to_json,
            codec.optional_product_from_json,
            PRODUCT_TTL,
        )

    async def _by_sku(self, sku: str) -> tuple[Product | None, str | None]:
        remembered = self.pointers.get(sku)
        if remembered is not None:  # a hint, checked like the shared pointer: one cache read, not two
            product, outcome = await self._by_id(remembered)
            if product is not None and sku in product.skus:
                return product, outcome
            del self.pointers[sku]
        key, tag = f"s:{sku}", f"sku:{sku}"
        found = await self.store.read(key, tag) if await self.store.usable() else None
        if found is None:
            return await self.inner.get_by_sku(sku), None
        entry, token = found
        pointer = entry.get("p") if isinstance(entry, dict) else None
        if isinstance(pointer, str):
            product, outcome = await self._by_id(pointer)
            if product is not None and sku in product.skus:
                self._remember_pointer(sku, pointer)
                return product, outcome
        elif _valid(entry, token):
            return None, "hit"
        token = token or await self.store.mint(tag)
        if token is None:
            return await self.inner.get_by_sku(sku), None
        return await self.flights.run((key, token), partial(self._fill_sku, sku, key, token)), "miss"

    def _remember_pointer(self, sku: str, product_id: str) -> None:
        self.pointers[sku] = product_id
        if len(self.pointers) > POINTERS:
            del self.pointers[next(iter(self.pointers))]  # the oldest

    async def _fill_sku(self, sku: str, key: str, token: str) -> Product | None:
        found = await self.inner.get_by_sku(sku)
        if found is None:
            await self.store.write(key, {"t": token, "v": None}, NEGATIVE_TTL)
            return None
        await self.store.write(key, {"p": found.product_id}, PRODUCT_TTL)
        fresh, _ = await self._by_id(found.product_id)  # warms the product entry the pointer leads to
        return fresh if fresh is not None and sku in fresh.skus else found

    async def _read(
        self,
        key: str,
        tag: str,
        load: Callable[[], Awaitable[T]],
        encode: Callable[[T], Any],
        decode: Callable[[Any], T],
        ttl: float,
    ) -> tuple[T, str | None]:
        """The value and ``hit``/``miss``; ``None`` when the cache was bypassed."""
        found = await self.store.read(key, tag) if await self.store.usable() else None
        if found is None:
            return await load(), None
        entry, token = found
        if _valid(entry, token):
            value = self._decode(decode, entry["v"])
            if value is not _NOTHING:
                return value, "hit"
        token = token or await self.store.mint(tag)
        if token is None:
            return await load(), None
        fill = partial(self._fill, key, token, load, encode, decode, ttl)
        return await self.flights.run((key, token), fill), "miss"

    async def _fill(
        self,
        key: str,
        token: str,
        load: Callable[[], Awaitable[T]],
        encode: Callable[[T], Any],
        decode: Callable[[Any], T],
        ttl: float,
    ) -> T:
        lock = f"lock:{key}:{token}"
        holder = await self.store.lock(lock, LOCK_TTL) if self.store.shared else ""
        if holder is None:
            value = await self._wait_for(key, token, decode)
            if value is not _NOTHING:
                return value  # type: ignore[no-any-return]
        try:
            value = await load()
            await self.store.write(key, {"t": token, "v": encode(value)}, ttl if value is not None else NEGATIVE_TTL)
        finally:
            await self.store.unlock(lock, holder or "")
        return value  # type: ignore[no-any-return]

    async def _wait_for(self, key: str, token: str, decode: Callable[[Any], T]) -> Any:
        """Another process loads this key: poll for its value, at most until its lock expires."""
        deadline = time.monotonic() + LOCK_TTL
        while time.monotonic() < deadline and await self.store.usable():
            await asyncio.sleep(POLL_INTERVAL)
            entry = await self.store.entry(key)
            if _valid(entry, token):
                return self._decode(decode, entry["v"])
        return _NOTHING

    def _decode(self, decode: Callable[[Any], T], data: Any) -> Any:
        try:
            return decode(data)
        except Exception:  # a foreign or damaged entry: counted, then loaded again
            logger.warning("cache.entry.undecodable", exc_info=True)
            self.store.metrics.cache_error()
            return _NOTHING


class _InvalidatingWriter(BatchWriter):
    """The inner catalog's writer, each batch invalidating like ``CachedCatalog.write_batch``."""

    def __init__(self, catalog: CachedCatalog, inner: BatchWriter) -> None:
        self.catalog = catalog
        self.inner = inner
        self.identity = inner.identity

    async def write_batch(self, writes: Sequence[ProductWrite], checkpoint: Checkpoint | None = None) -> None:
        if writes:
            await self.catalog._write_tags(self.inner.write_batch(writes, checkpoint), batch_tags(writes))
        elif checkpoint is not None:
            await self.inner.write_batch(writes, checkpoint)

    async def close(self) -> None:
        await self.inner.close()
