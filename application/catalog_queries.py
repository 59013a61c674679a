"""Use cases that read the catalog."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.errors import ProductNotFound
from domain.history import HistoryEntry
from domain.identifiers import normalise_sku
from domain.ports import ProductHistory, ProductRepository
from domain.product import Product
from domain.search import Facets, Page, parse_filters, parse_search


class GetProduct:
    def __init__(self, products: ProductRepository) -> None:
        self.products = products

    async def __call__(self, product_id: str) -> Product:
        product = await self.products.get(product_id)
        if product is None:
            raise ProductNotFound(f"no product {product_id!r}")
        return product


class GetProductBySku:
    def __init__(self, products: ProductRepository) -> None:
        self.products = products

    async def __call__(self, sku: str) -> Product:
        normalised = normalise_sku(sku)
        product = await self.products.get_by_sku(normalised)
        if product is None:
            raise ProductNotFound(f"no SKU {normalised!r}")
        return product


class GetHistory:
    def __init__(self, products: ProductRepository, history: ProductHistory) -> None:
        self.products = products
        self.history = history

    async def __call__(self, product_id: str) -> list[HistoryEntry]:
        if await self.products.get(product_id) is None:
            raise ProductNotFound(f"no product {product_id!r}")
        return await self.history.entries(product_id)


class SearchProducts:
    def __init__(self, products: ProductRepository) -> None:
        self.products = products

    async def __call__(self, params: Mapping[str, Any]) -> Page[Product]:
        return await self.products.search(parse_search(params))


class GetFacets:
    def __init__(self, products: ProductRepository) -> None:
        self.products = products

    async def __call__(self, params: Mapping[str, Any]) -> Facets:
        return await self.products.facets(parse_filters(params))
