"""Use cases that read the catalog; each checks ``product:read`` first (and records it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from application.authorization import Authorizer, Caller
from domain.errors import ProductNotFound
from domain.history import HistoryEntry
from domain.identifiers import normalise_sku
from domain.ports import ProductHistory, ProductRepository
from domain.product import Product
from domain.rbac import Permission
from domain.search import Facets, Page, parse_filters, parse_search


class GetProduct:
    def __init__(self, products: ProductRepository, authorizer: Authorizer) -> None:
        self.products = products
        self.authorizer = authorizer

    async def __call__(self, product_id: str, caller: Caller) -> Product:
        await self.authorizer.require(caller, Permission.PRODUCT_READ, f"product:{product_id}")
        product = await self.products.get(product_id)
        if product is None:
            raise ProductNotFound(f"no product {product_id!r}")
        return product


class GetProductBySku:
    def __init__(self, products: ProductRepository, authorizer: Authorizer) -> None:
        self.products = products
        self.authorizer = authorizer

    async def __call__(self, sku: str, caller: Caller) -> Product:
        normalised = normalise_sku(sku)
        await self.authorizer.require(caller, Permission.PRODUCT_READ, f"sku:{normalised}")
        product = await self.products.get_by_sku(normalised)
        if product is None:
            raise ProductNotFound(f"no SKU {normalised!r}")
        return product


class GetHistory:
    def __init__(self, products: ProductRepository, history: ProductHistory, authorizer: Authorizer) -> None:
        self.products = products
        self.history = history
        self.authorizer = authorizer

    async def __call__(self, product_id: str, caller: Caller) -> list[HistoryEntry]:
        await self.authorizer.require(caller, Permission.PRODUCT_READ, f"product:{product_id}/history")
        if await self.products.get(product_id) is None:
            raise ProductNotFound(f"no product {product_id!r}")
        return await self.history.entries(product_id)


class SearchProducts:
    def __init__(self, products: ProductRepository, authorizer: Authorizer) -> None:
        self.products = products
        self.authorizer = authorizer

    async def __call__(self, params: Mapping[str, Any], caller: Caller) -> Page[Product]:
        await self.authorizer.require(caller, Permission.PRODUCT_READ, "products")
        return await self.products.search(parse_search(params))


class GetFacets:
    def __init__(self, products: ProductRepository, authorizer: Authorizer) -> None:
        self.products = products
        self.authorizer = authorizer

    async def __call__(self, params: Mapping[str, Any], caller: Caller) -> Facets:
        await self.authorizer.require(caller, Permission.PRODUCT_READ, "products/facets")
        return await self.products.facets(parse_filters(params))
