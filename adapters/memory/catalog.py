"""The in-memory product repository and history: the executable specification of the port."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Sequence

from adapters.batch_rules import expected_version, fingerprint_of
from adapters.memory.ingestion_runs import MemoryIngestionRuns
from domain.conflicts import gtin_taken, product_exists, sku_taken
from domain.errors import ProductNotFound, VersionMismatch
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
from domain.search import (
    FACET_FIELDS,
    Facets,
    Page,
    SearchFilters,
    SearchQuery,
    cursor_after,
    facet_values,
    sort_value,
    sorted_facet,
)


class MemoryCatalog(ProductRepository, ProductHistory, BulkCatalog):
    def __init__(self) -> None:
        self._products: dict[str, Product] = {}
        self._by_sku: dict[str, str] = {}
        self._by_gtin: dict[str, str] = {}
        self._history: dict[str, list[HistoryEntry]] = {}
        #: Product id -> SKU -> raw digest, as an ingestion write left them (any other write drops them).
        self._raw: dict[str, dict[str, str]] = {}
        self._lock = asyncio.Lock()

    async def get(self, product_id: str) -> Product | None:
        return self._products.get(product_id)

    async def get_by_sku(self, sku: str) -> Product | None:
        product_id = self._by_sku.get(sku)
        return self._products.get(product_id) if product_id else None

    def _check_unique(self, product: Product) -> None:
        for sku in product.skus:
            owner = self._by_sku.get(sku)
            if owner not in (None, product.product_id):
                raise sku_taken(sku, owner)
        for gtin in product.gtins:
            owner = self._by_gtin.get(gtin)
            if owner not in (None, product.product_id):
                raise gtin_taken(gtin, owner)

    def _store(self, product: Product, previous: Product | None, entry: HistoryEntry) -> None:
        if previous is not None:
            for sku in previous.skus:
                self._by_sku.pop(sku, None)
            for gtin in previous.gtins:
                self._by_gtin.pop(gtin, None)
        self._products[product.product_id] = product
        self._raw.pop(product.product_id, None)
        self._by_sku.update(dict.fromkeys(product.skus, product.product_id))
        self._by_gtin.update(dict.fromkeys(product.gtins, product.product_id))
        self._history.setdefault(product.product_id, []).append(entry)

    async def add(self, product: Product, entry: HistoryEntry) -> None:
        async with self._lock:
            if product.product_id in self._products:
                raise product_exists(product.product_id)
            self._check_unique(product)
            self._store(product, None, entry)

    async def replace(self, product: Product, expected_version: int, entry: HistoryEntry) -> None:
        async with self._lock:
            current = self._products.get(product.product_id)
            if current is None:
                raise ProductNotFound(f"no product {product.product_id!r}")
            if current.version != expected_version:
                raise VersionMismatch(product.product_id, expected_version, current.version)
            self._check_unique(product)
            self._store(product, current, entry)

    async def search(self, query: SearchQuery) -> Page[Product]:
        sort = query.sort
        matching = [p for p in self._products.values() if query.filters.matches(p)]
        matching.sort(key=lambda p: (sort_value(p, sort), p.product_id), reverse=sort.descending)
        if query.cursor is not None:
            after = (query.cursor.typed_value(), query.cursor.product_id)
            matching = [
                p
                for p in matching
                if (
                    (sort_value(p, sort), p.product_id) < after
                    if sort.descending
                    else (sort_value(p, sort), p.product_id) > after
                )  # type: ignore[operator]
            ]
        items = tuple(matching[: query.limit])
        more = len(matching) > query.limit
        return Page(items, cursor_after(items[-1], sort).encode() if more and items else None)

    async def facets(self, filters: SearchFilters) -> Facets:
        counters: dict[str, Counter[str]] = {name: Counter() for name in FACET_FIELDS}
        for product in self._products.values():
            if filters.matches(product):
                for name, values in facet_values(product).items():
                    counters[name].update(values)
        return {name: sorted_facet(counter) for name, counter in counters.items()}

    async def entries(self, product_id: str) -> list[HistoryEntry]:
        return list(self._history.get(product_id, []))

    # Batches: every write checked in order against the state the writes before it left.
    async def fingerprints(self, product_ids: Collection[str]) -> dict[str, Fingerprint]:
        return {
            pid: dataclasses.replace(fingerprint_of(self._products[pid]), raw_hashes=dict(self._raw.get(pid, {})))
            for pid in set(product_ids)
            if pid in self._products
        }

    async def sku_owners(self, skus: Collection[str]) -> dict[str, str]:
        return {sku: self._by_sku[sku] for sku in set(skus) if sku in self._by_sku}

    async def gtin_owners(self, gtins: Collection[str]) -> dict[str, str]:
        owners: dict[str, str] = {}
        for gtin in set(gtins):
            product = self._products.get(self._by_gtin.get(gtin, ""))
            owners.update({v.gtin: v.sku for v in product.variants if v.gtin == gtin} if product else {})
        return owners

    async def get_many(self, product_ids: Collection[str]) -> dict[str, Product]:
        return {pid: self._products[pid] for pid in set(product_ids) if pid in self._products}

    def writer(self, runs: IngestionRuns | None = None) -> BatchWriter:
        if isinstance(runs, MemoryIngestionRuns):
            return _CheckpointingWriter(self, runs)
        return super().writer(runs)

    async def write_batch(self, writes: Sequence[ProductWrite], then: Callable[[], None] | None = None) -> None:
        """``then`` runs once the batch is known to apply, before it is stored: its exception (a run
        taken over) stores nothing, like an aborted transaction."""
        async with self._lock:
            products, by_sku, by_gtin = dict(self._products), dict(self._by_sku), dict(self._by_gtin)
            history = dict(self._history)  # lists are replaced below, never changed in place
            raw = dict(self._raw)  # likewise
            for write in writes:
                product_id = write.product_id
                current = products.get(product_id)
                actual = current.version if current is not None else None
                if expected_version(write) != actual:
                    raise VersionMismatch(product_id, expected_version(write) or 0, actual)
                if current is not None:
                    for sku in current.skus:
                        by_sku.pop(sku, None)
                    for gtin in current.gtins:
                        by_gtin.pop(gtin, None)
                raw.pop(product_id, None)
                if write.after is None:
                    del products[product_id]
                    history.pop(product_id, None)
                    continue
                _check_free(write.after, by_sku, by_gtin)
                products[product_id] = write.after
                by_sku.update(dict.fromkeys(write.after.skus, product_id))
                by_gtin.update(dict.fromkeys(write.after.gtins, product_id))
                if write.raw_digests:
                    skus = set(write.after.skus)
                    raw[product_id] = {sku: d for sku, d in write.raw_digests.items() if sku in skus}
                if write.entry is not None:
                    history[product_id] = [*history.get(product_id, []), write.entry]
            if then is not None:
                then()
            self._products, self._by_sku, self._by_gtin, self._history = products, by_sku, by_gtin, history
            self._raw = raw

    async def count_entries(self, source: str) -> int:
        return sum(1 for entries in self._history.values() for entry in entries if entry.source == source)

    async def entries_from(self, source: str) -> AsyncIterator[HistoryEntry]:
        found = [entry for entries in self._history.values() for entry in entries if entry.source == source]
        for entry in sorted(found, key=lambda e: (e.product_id, e.version)):
            yield entry


def _check_free(product: Product, by_sku: dict[str, str], by_gtin: dict[str, str]) -> None:
    for sku in product.skus:
        if by_sku.get(sku, product.product_id) != product.product_id:
            raise sku_taken(sku, by_sku[sku])
    for gtin in product.gtins:
        if by_gtin.get(gtin, product.product_id) != product.product_id:
            raise gtin_taken(gtin, by_gtin[gtin])


class _CheckpointingWriter(BatchWriter):
    """Batches and their checkpoints stored together under the catalog's lock: all or nothing."""

    def __init__(self, catalog: MemoryCatalog, runs: MemoryIngestionRuns) -> None:
        self.catalog = catalog
        self.runs = runs

    async def write_batch(self, writes: Sequence[ProductWrite], checkpoint: Checkpoint | None = None) -> None:
        if checkpoint is None:
            await self.catalog.write_batch(writes)
            return
        runs = self.runs
        await self.catalog.write_batch(writes, then=lambda: runs.keep_checkpoint(checkpoint))
