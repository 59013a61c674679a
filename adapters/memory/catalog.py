"""The in-memory product repository and history: the executable specification of the port."""

from __future__ import annotations

import asyncio
from collections import Counter

from domain.conflicts import gtin_taken, product_exists, sku_taken
from domain.errors import ProductNotFound, VersionMismatch
from domain.history import HistoryEntry
from domain.ports import ProductHistory, ProductRepository
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


class MemoryCatalog(ProductRepository, ProductHistory):
    def __init__(self) -> None:
        self._products: dict[str, Product] = {}
        self._by_sku: dict[str, str] = {}
        self._by_gtin: dict[str, str] = {}
        self._history: dict[str, list[HistoryEntry]] = {}
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
