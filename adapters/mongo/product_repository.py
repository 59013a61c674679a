"""The product repository and history on MongoDB.

Every write is one transaction that stores the product and its history entry together; the
product write is conditional on the version the caller read, so no update is ever lost.
"""

from __future__ import annotations

from typing import Any

from bson import Decimal128
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from adapters.mongo.bulk_writes import MongoBulkWrites
from adapters.mongo.documents import HistoryDocument, HistoryRecord, ProductDocument
from adapters.mongo.mapping import history_to_bson, history_to_domain, product_from_bson, product_to_bson
from adapters.mongo.retries import DEFAULT_RETRY, RetryPolicy
from domain.conflicts import gtin_taken, product_exists, sku_taken
from domain.errors import ProductConflict, ProductNotFound, VersionMismatch
from domain.history import HistoryEntry
from domain.ports import ProductHistory, ProductRepository
from domain.product import Product
from domain.search import (
    Facets,
    Page,
    SearchFilters,
    SearchQuery,
    SortOrder,
    cursor_after,
    sorted_facet,
)

_SORT_FIELDS = {"name": "name_key", "price": "price_min", "updated_at": "updated_at"}
_FACET_PATHS = {
    "brand": "brand",
    "category": "category",
    "frame_shape": "frame_shape",
    "frame_material": "frame_material",
    "rim_type": "rim_type",
    "gender": "gender",
    "size_class": "size_classes",
    "face_shape": "face_shapes",
}
_ARRAY_PATHS = frozenset({"size_classes", "face_shapes"})
_MATCH_NOTHING = {"_id": {"$exists": False}}


def filter_document(filters: SearchFilters) -> dict[str, Any]:
    """The MongoDB filter with the semantics of ``SearchFilters.matches``."""
    if filters.q_given and not filters.terms:
        return _MATCH_NOTHING
    query: dict[str, Any] = {"status": "active"}
    if filters.brand is not None:
        query["brand_key"] = filters.brand.casefold()
    for name in ("category", "frame_shape", "frame_material", "rim_type", "gender"):
        value = getattr(filters, name)
        if value is not None:
            query[name] = value.value
    if filters.face_shape is not None:
        query["face_shapes"] = filters.face_shape.value
    if filters.terms:
        query["keywords"] = {"$all": list(filters.terms)}
    if filters.has_variant_criteria:
        variant: dict[str, Any] = {}
        price: dict[str, Any] = {}
        if filters.min_price is not None:
            price["$gte"] = Decimal128(filters.min_price)
        if filters.max_price is not None:
            price["$lte"] = Decimal128(filters.max_price)
        if price:
            variant["price"] = price
        if filters.currency is not None:
            variant["currency"] = filters.currency
        if filters.in_stock is not None:
            variant["in_stock"] = filters.in_stock
        if filters.size_class is not None:
            variant["size_class"] = filters.size_class.value
        query["variants"] = {"$elemMatch": variant}
    return query


#: Equality filters that can drive an index lookup, most selective first.
_DRIVERS = (
    ("brand", "brand_key"),
    ("frame_shape", "frame_shape"),
    ("face_shape", "face_shapes"),
    ("frame_material", "frame_material"),
    ("category", "category"),
    ("gender", "gender"),
    ("rim_type", "rim_type"),
)


def driver_match(filters: SearchFilters) -> dict[str, Any]:
    """The one equality the index lookup starts from; the full filter follows as a second stage.

    Leading with a single indexed equality keeps every query shape on an index, also on servers
    whose planner (like SecantusDB's) only uses an index whose leading fields are exactly the
    filter's fields; MongoDB merges the two stages and plans them together.
    """
    if filters.terms:
        return {"keywords": max(filters.terms, key=len)}
    condition = filter_document(SearchFilters(**{name: getattr(filters, name) for name, _ in _DRIVERS}))
    for name, path in _DRIVERS:
        if getattr(filters, name) is not None:
            return {"status": "active", path: condition[path]}
    return {"status": "active"}


def search_pipeline(filters: SearchFilters, extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``$match`` on the indexed driver, then on the whole filter (and the cursor, when paging)."""
    condition = filter_document(filters)
    if extra is not None:
        condition = {"$and": [condition, extra]}
    return [{"$match": driver_match(filters)}, {"$match": condition}]


def _cursor_condition(query: SearchQuery) -> dict[str, Any] | None:
    if query.cursor is None:
        return None
    field = _SORT_FIELDS[query.sort.key]
    value: Any = query.cursor.typed_value()
    if field == "price_min":
        value = Decimal128(value)
    op = "$lt" if query.sort.descending else "$gt"
    return {"$or": [{field: {op: value}}, {field: value, "_id": {op: query.cursor.product_id}}]}


def sort_document(sort: SortOrder) -> list[tuple[str, int]]:
    direction = DESCENDING if sort.descending else ASCENDING
    return [(_SORT_FIELDS[sort.key], direction), ("_id", direction)]


class MongoCatalog(MongoBulkWrites, ProductRepository, ProductHistory):
    """``retry`` bounds the retries of the batch operations (``BulkCatalog``, in ``bulk_writes``)."""

    def __init__(self, database: AsyncDatabase[Any], retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self.database = database
        self.client = database.client
        self.products = database[ProductDocument.Settings.name]
        self.history = database[HistoryDocument.Settings.name]
        self.retry = retry

    async def get(self, product_id: str) -> Product | None:
        raw = await self.products.find_one({"_id": product_id})
        return product_from_bson(raw) if raw else None

    async def get_by_sku(self, sku: str) -> Product | None:
        raw = await self.products.find_one({"skus": sku})
        return product_from_bson(raw) if raw else None

    async def _conflict(self, error: DuplicateKeyError, product: Product, new: bool) -> ProductConflict:
        if new and await self.products.find_one({"_id": product.product_id}, {"_id": 1}):
            return product_exists(product.product_id)
        details = error.details or {}
        key_value = details.get("keyValue") or {}
        if "skus" in key_value:
            sku = str(key_value["skus"])
            owner = await self.products.find_one({"skus": sku}, {"_id": 1})
            return sku_taken(sku, owner["_id"] if owner else None)
        if "gtins" in key_value:
            gtin = str(key_value["gtins"])
            owner = await self.products.find_one({"gtins": gtin}, {"_id": 1})
            return gtin_taken(gtin, owner["_id"] if owner else None)
        return product_exists(product.product_id)

    async def _in_transaction(self, work: Any) -> None:
        async with self.client.start_session() as session:
            await session.with_transaction(work)

    async def add(self, product: Product, entry: HistoryEntry) -> None:
        document = product_to_bson(product)

        async def work(session: AsyncClientSession) -> None:
            await self.products.insert_one(document, session=session)
            await self.history.insert_one(history_to_bson(entry), session=session)

        try:
            await self._in_transaction(work)
        except DuplicateKeyError as error:
            raise await self._conflict(error, product, new=True) from None

    async def replace(self, product: Product, expected_version: int, entry: HistoryEntry) -> None:
        document = product_to_bson(product)

        async def work(session: AsyncClientSession) -> None:
            result = await self.products.replace_one(
                {"_id": product.product_id, "version": expected_version}, document, session=session
            )
            if result.matched_count == 0:
                current = await self.products.find_one({"_id": product.product_id}, {"version": 1}, session=session)
                if current is None:
                    raise ProductNotFound(f"no product {product.product_id!r}")
                raise VersionMismatch(product.product_id, expected_version, current["version"])
            await self.history.insert_one(history_to_bson(entry), session=session)

        try:
            await self._in_transaction(work)
        except DuplicateKeyError as error:
            raise await self._conflict(error, product, new=False) from None

    async def search(self, query: SearchQuery) -> Page[Product]:
        if query.filters.q_given and not query.filters.terms:
            return Page((), None)
        pipeline = [
            *search_pipeline(query.filters, _cursor_condition(query)),
            {"$sort": dict(sort_document(query.sort))},
            {"$limit": query.limit + 1},
        ]
        cursor = await self.products.aggregate(pipeline)
        items = tuple([product_from_bson(raw) async for raw in cursor])
        if len(items) > query.limit:
            items = items[: query.limit]
            return Page(items, cursor_after(items[-1], query.sort).encode())
        return Page(items, None)

    async def facets(self, filters: SearchFilters) -> Facets:
        if filters.q_given and not filters.terms:
            return {name: [] for name in _FACET_PATHS}
        stages: dict[str, list[dict[str, Any]]] = {}
        for name, path in _FACET_PATHS.items():
            unwind = [{"$unwind": f"${path}"}] if path in _ARRAY_PATHS else []
            stages[name] = [*unwind, {"$group": {"_id": f"${path}", "count": {"$sum": 1}}}]
        cursor = await self.products.aggregate([*search_pipeline(filters), {"$facet": stages}])
        result = (await cursor.to_list(1))[0]
        return {name: sorted_facet({row["_id"]: row["count"] for row in result[name]}) for name in _FACET_PATHS}

    async def entries(self, product_id: str) -> list[HistoryEntry]:
        # Through this repository's own database, never Beanie's process-wide binding.
        cursor = self.history.find({"product_id": product_id}, {"_id": 0}).sort("version", ASCENDING)
        return [history_to_domain(HistoryRecord.model_validate(raw)) async for raw in cursor]
