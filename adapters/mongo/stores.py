"""Store profiles and the store catalog on MongoDB: the catalog is computed by the server.

Both pipelines lead with one indexed equality (ADR 0006), then narrow to the whole profile, then
keep each product's store variants with ``$filter``. The products stream is a ``$project`` to
the FEED.md shape sorted by ``_id``; the summary is one ``$facet`` (collections, facets, counts).

SecantusDB (0.7) evaluates a field path through an array of subdocuments (``"$variants.price"``)
to null inside expressions, so every such read is written as ``$map`` over the array instead;
MongoDB gives the same result either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from bson import Decimal128
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from adapters.mongo.documents import ProductDocument, StoreDocument, StoreProfileFields
from domain.enums import Category
from domain.search import sorted_facet
from domain.store_catalog import (
    STORE_FACETS,
    CollectionGroup,
    CollectionKind,
    StoreCounts,
    StoreProductEntry,
    StoreSummary,
    amount_text,
    build_collections,
)
from domain.store_ports import StoreCatalogSource, StoreProfiles
from domain.stores import StoreProfile

_OFFER = "_store_variants"
#: Facets over a plain product field; ``size_class`` and ``face_shape`` are built apart.
_FIELD_FACETS = ("brand", "frame_shape", "frame_material", "rim_type", "gender")


def profile_to_bson(profile: StoreProfile) -> dict[str, Any]:
    record = StoreProfileFields.model_validate(
        {
            "_id": profile.store_id,
            "name": profile.name,
            "currency": profile.currency,
            "categories": [c.value for c in profile.categories],
            "brands": list(profile.brands),
            "include_out_of_stock": profile.include_out_of_stock,
        }
    )
    return record.model_dump(by_alias=True)


def profile_from_bson(raw: dict[str, Any]) -> StoreProfile:
    record = StoreProfileFields.model_validate(raw)
    return StoreProfile(
        store_id=record.id,
        name=record.name,
        currency=record.currency,
        categories=tuple(Category(c) for c in record.categories),
        brands=tuple(record.brands),
        include_out_of_stock=record.include_out_of_stock,
    )


class MongoStoreProfiles(StoreProfiles):
    def __init__(self, database: AsyncDatabase[Any]) -> None:
        self.stores = database[StoreDocument.Settings.name]

    async def get(self, store_id: str) -> StoreProfile | None:
        raw = await self.stores.find_one({"_id": store_id})
        return profile_from_bson(raw) if raw else None

    async def put(self, profile: StoreProfile) -> bool:
        document = profile_to_bson(profile)
        try:
            result = await self.stores.replace_one({"_id": profile.store_id}, document, upsert=True)
        except DuplicateKeyError:  # a concurrent put created it first: ours replaces it
            await self.stores.replace_one({"_id": profile.store_id}, document)
            return False
        return result.upserted_id is not None


# Pipelines ---------------------------------------------------------------------------------------


def driver_match(profile: StoreProfile) -> dict[str, Any]:
    """The one equality an index answers: a single brand, else a single category, else the status."""
    if len(profile.brands) == 1:
        return {"status": "active", "brand_key": profile.brand_keys[0]}
    if len(profile.categories) == 1:
        return {"status": "active", "category": profile.categories[0].value}
    return {"status": "active"}


def offer_condition(profile: StoreProfile) -> dict[str, Any]:
    """A store variant, as a query on one array element."""
    condition: dict[str, Any] = {"currency": profile.currency}
    if not profile.include_out_of_stock:
        condition["in_stock"] = True
    return condition


def profile_match(profile: StoreProfile) -> dict[str, Any]:
    """The whole profile; ``$elemMatch`` already leaves out products without a store variant."""
    query: dict[str, Any] = {"status": "active"}
    if profile.brands:
        query["brand_key"] = {"$in": list(profile.brand_keys)}
    if profile.categories:
        query["category"] = {"$in": [c.value for c in profile.categories]}
    query["variants"] = {"$elemMatch": offer_condition(profile)}
    return query


def _map(array: Any, expression: Any) -> dict[str, Any]:
    return {"$map": {"input": array, "as": "v", "in": expression}}


def _sorted_set(array: Any) -> dict[str, Any]:
    return {"$sortArray": {"input": {"$setUnion": [array]}, "sortBy": 1}}


def offer_stage(profile: StoreProfile) -> dict[str, Any]:
    """Each product's store variants, by SKU, in ``_store_variants``."""
    conditions: list[Any] = [{"$eq": ["$$v.currency", {"$literal": profile.currency}]}]
    if not profile.include_out_of_stock:
        conditions.append({"$eq": ["$$v.in_stock", True]})
    offered = {"$filter": {"input": "$variants", "as": "v", "cond": {"$and": conditions}}}
    return {"$addFields": {_OFFER: {"$sortArray": {"input": offered, "sortBy": {"sku": 1}}}}}


def head_stages(profile: StoreProfile) -> list[dict[str, Any]]:
    return [{"$match": driver_match(profile)}, {"$match": profile_match(profile)}]


_SIZE_LABEL = {
    "$concat": [
        {"$toString": "$$v.lens_width_mm"},
        "\u25a1",
        {"$toString": "$$v.bridge_width_mm"},
        "-",
        {"$toString": "$$v.temple_length_mm"},
    ]
}
_TITLE = {"$concat": ["$brand", " ", "$name"]}


def products_pipeline(profile: StoreProfile) -> list[dict[str, Any]]:
    """The FEED.md product entries, by product id (prices still Decimal128: formatted on the way out)."""
    offer = f"${_OFFER}"
    prices = _map(offer, "$$v.price")
    images = {
        "$reduce": {
            "input": _map(offer, "$$v.image_urls"),
            "initialValue": [],
            "in": {"$concatArrays": ["$$value", "$$this"]},
        }
    }
    return [
        *head_stages(profile),
        {"$sort": {"_id": 1}},
        offer_stage(profile),
        {
            "$project": {
                "_id": 0,
                "product_id": "$_id",
                "url_path": {"$concat": ["/p/", "$_id"]},
                "title": _TITLE,
                "brand": "$brand",
                "category": "$category",
                "frame_shape": "$frame_shape",
                "face_shapes": "$face_shapes",
                "price_min": {"$min": prices},
                "price_max": {"$max": prices},
                "size_labels": _sorted_set(_map(offer, _SIZE_LABEL)),
                "colors": _sorted_set(_map(offer, "$$v.color_name")),
                "image_url": {"$ifNull": [{"$first": images}, None]},
                "variants": _map(
                    offer,
                    {
                        "sku": "$$v.sku",
                        "color_name": "$$v.color_name",
                        "size_label": _SIZE_LABEL,
                        "price": "$$v.price",
                        "in_stock": "$$v.in_stock",
                    },
                ),
            }
        },
    ]


_COLLECTION_PATHS = (
    (CollectionKind.CATEGORY, "$category"),
    (CollectionKind.SHAPE, "$frame_shape"),
    (CollectionKind.BRAND, "$brand"),
)


def _count_by(path: str) -> list[dict[str, Any]]:
    return [{"$group": {"_id": path, "count": {"$sum": 1}}}]


def summary_pipeline(profile: StoreProfile) -> list[dict[str, Any]]:
    """One ``$facet``: collection members sorted by title, facet counts of products, totals."""
    offer = f"${_OFFER}"
    keys = [{"k": kind.value, "v": path} for kind, path in _COLLECTION_PATHS]
    items = "$items"
    collections = [
        {"$project": {"title": _TITLE, "keys": keys}},
        {"$unwind": "$keys"},
        {"$group": {"_id": "$keys", "items": {"$push": {"t": "$title", "id": "$_id"}}}},
        {
            "$project": {
                "_id": 0,
                "kind": "$_id.k",
                "value": "$_id.v",
                "items": {"$sortArray": {"input": items, "sortBy": {"t": 1, "id": 1}}},
            }
        },
        {
            "$project": {
                "kind": 1,
                "value": 1,
                "product_ids": _map(items, "$$v.id"),
                # Titles only where spellings may merge into one collection (see CollectionGroup).
                "titles": {"$cond": [{"$eq": ["$kind", CollectionKind.BRAND.value]}, _map(items, "$$v.t"), []]},
            }
        },
    ]
    facets: dict[str, list[dict[str, Any]]] = {name: _count_by(f"${name}") for name in _FIELD_FACETS}
    facets["size_class"] = [
        {"$project": {"values": {"$setUnion": [_map(offer, "$$v.size_class")]}}},
        {"$unwind": "$values"},
        *_count_by("$values"),
    ]
    facets["face_shape"] = [{"$unwind": "$face_shapes"}, *_count_by("$face_shapes")]
    counts = [{"$group": {"_id": None, "products": {"$sum": 1}, "variants": {"$sum": {"$size": offer}}}}]
    return [
        *head_stages(profile),
        offer_stage(profile),
        {"$facet": {"collections": collections, **facets, "counts": counts}},
    ]


def _amount(value: Decimal128 | Decimal, currency: str) -> str:
    return amount_text(value.to_decimal() if isinstance(value, Decimal128) else value, currency)


def entry_from_bson(raw: dict[str, Any], currency: str) -> StoreProductEntry:
    """The server's projection in FEED.md key order, prices as text."""
    return {
        "product_id": raw["product_id"],
        "url_path": raw["url_path"],
        "title": raw["title"],
        "brand": raw["brand"],
        "category": raw["category"],
        "frame_shape": raw["frame_shape"],
        "face_shapes": list(raw["face_shapes"]),
        "price_range": {
            "min": _amount(raw["price_min"], currency),
            "max": _amount(raw["price_max"], currency),
            "currency": currency,
        },
        "size_labels": list(raw["size_labels"]),
        "colors": list(raw["colors"]),
        "image_url": raw.get("image_url"),
        "variants": [
            {
                "sku": v["sku"],
                "color_name": v["color_name"],
                "size_label": v["size_label"],
                "price": _amount(v["price"], currency),
                "in_stock": v["in_stock"],
            }
            for v in raw["variants"]
        ],
    }


def summary_from_bson(raw: dict[str, Any]) -> StoreSummary:
    groups = [
        CollectionGroup(CollectionKind(row["kind"]), row["value"], tuple(row["product_ids"]), tuple(row["titles"]))
        for row in raw["collections"]
    ]
    facets = {name: sorted_facet({row["_id"]: row["count"] for row in raw.get(name, [])}) for name in STORE_FACETS}
    totals = raw["counts"][0] if raw["counts"] else {"products": 0, "variants": 0}
    return StoreSummary(build_collections(groups), facets, StoreCounts(totals["products"], totals["variants"]))


class MongoStoreCatalog(StoreCatalogSource):
    def __init__(self, database: AsyncDatabase[Any]) -> None:
        self.products_collection = database[ProductDocument.Settings.name]

    async def products(self, profile: StoreProfile) -> AsyncIterator[StoreProductEntry]:
        cursor = await self.products_collection.aggregate(products_pipeline(profile), allowDiskUse=True)
        async with cursor:
            async for raw in cursor:
                yield entry_from_bson(raw, profile.currency)

    async def summary(self, profile: StoreProfile) -> StoreSummary:
        cursor = await self.products_collection.aggregate(summary_pipeline(profile), allowDiskUse=True)
        rows = await cursor.to_list(1)
        return summary_from_bson(rows[0] if rows else {"collections": [], "counts": []})
