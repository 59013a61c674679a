"""The store generation data of FEED.md: its JSON pieces, their order, and the reference computation.

``summarize`` and ``product_entry`` are the executable specification: the memory adapter uses
them directly, the MongoDB adapter computes the same on the server, and the contract tests hold
the two to the same answers. Prices are text with two decimals, as in the API.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypedDict

from domain.identifiers import slugify
from domain.money import Money
from domain.product import Product
from domain.search import Facets, sorted_facet
from domain.snapshot import timestamp
from domain.stores import StoreProfile, profile_to_dict

#: The facets of a store, in the order FEED.md lists them (the API's, without ``category``).
STORE_FACETS = ("brand", "frame_shape", "frame_material", "rim_type", "size_class", "gender", "face_shape")


class PriceRange(TypedDict):
    min: str
    max: str
    currency: str


class StoreVariantEntry(TypedDict):
    sku: str
    color_name: str
    size_label: str
    price: str
    in_stock: bool


class StoreProductEntry(TypedDict):
    product_id: str
    url_path: str
    title: str
    brand: str
    category: str
    frame_shape: str
    face_shapes: list[str]
    price_range: PriceRange
    size_labels: list[str]
    colors: list[str]
    image_url: str | None
    variants: list[StoreVariantEntry]


def amount_text(amount: Decimal, currency: str) -> str:
    """``163.00``: the API's money formatting."""
    return Money(amount, currency).to_json()["amount"]


def product_title(brand: str, name: str) -> str:
    return f"{brand} {name}"


def product_entry(profile: StoreProfile, product: Product) -> StoreProductEntry:
    """The store's view of a product it selects (``profile.selects(product)``)."""
    variants = profile.variants_of(product)
    amounts = [v.price.amount for v in variants]
    d = product.draft
    return {
        "product_id": product.product_id,
        "url_path": f"/p/{product.product_id}",
        "title": product_title(d.brand, d.name),
        "brand": d.brand,
        "category": d.category.value,
        "frame_shape": d.frame_shape.value,
        "face_shapes": [s.value for s in product.face_shapes],
        "price_range": {
            "min": amount_text(min(amounts), profile.currency),
            "max": amount_text(max(amounts), profile.currency),
            "currency": profile.currency,
        },
        "size_labels": sorted({v.size_label for v in variants}),
        "colors": sorted({v.color_name for v in variants}),
        "image_url": next((url for v in variants for url in v.image_urls), None),
        "variants": [
            {
                "sku": v.sku,
                "color_name": v.color_name,
                "size_label": v.size_label,
                "price": amount_text(v.price.amount, profile.currency),
                "in_stock": v.in_stock,
            }
            for v in variants
        ],
    }


class CollectionKind(StrEnum):
    CATEGORY = "category"
    SHAPE = "shape"  # the frame shape
    BRAND = "brand"


def collection_id(kind: CollectionKind, value: str) -> str:
    """``category-sunglasses``, ``shape-cat-eye``, ``brand-ray-ban`` (the brand's slug)."""
    return f"{kind.value}-{slugify(value) if kind is CollectionKind.BRAND else value}"


def collection_title(kind: CollectionKind, value: str) -> str:
    """The brand as written; a category or shape with a capital (``Cat-eye``)."""
    return value if kind is CollectionKind.BRAND else value[:1].upper() + value[1:]


@dataclass(frozen=True, slots=True)
class CollectionGroup:
    """The store products under one category, shape or brand spelling, sorted by (title, id).

    ``titles`` runs parallel to ``product_ids``; it is needed only when groups merge, which
    happens when brand spellings share a slug (``Ray-Ban`` and ``RAY BAN``).
    """

    kind: CollectionKind
    value: str
    product_ids: tuple[str, ...]
    titles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoreCollection:
    collection_id: str
    title: str
    product_ids: tuple[str, ...]


def build_collections(groups: Iterable[CollectionGroup]) -> tuple[StoreCollection, ...]:
    """Collections by id, each listing its products by title (then id)."""
    by_id: dict[str, list[CollectionGroup]] = defaultdict(list)
    for group in groups:
        by_id[collection_id(group.kind, group.value)].append(group)
    collections = []
    for cid in sorted(by_id):
        members = by_id[cid]
        if len(members) == 1:
            ids = members[0].product_ids
        else:
            pairs = sorted(pair for g in members for pair in zip(g.titles, g.product_ids, strict=True))
            ids = tuple(product_id for _, product_id in pairs)
        title = min(collection_title(g.kind, g.value) for g in members)
        collections.append(StoreCollection(cid, title, ids))
    return tuple(collections)


@dataclass(frozen=True, slots=True)
class StoreCounts:
    products: int
    variants: int


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """Everything of the store data but the products themselves (those are streamed)."""

    collections: tuple[StoreCollection, ...]
    facets: Facets
    counts: StoreCounts


def store_facet_values(profile: StoreProfile, product: Product) -> dict[str, tuple[str, ...]]:
    """What a store product counts under; sizes are those of its store variants."""
    d = product.draft
    return {
        "brand": (d.brand,),
        "frame_shape": (d.frame_shape.value,),
        "frame_material": (d.frame_material.value,),
        "rim_type": (d.rim_type.value,),
        "size_class": tuple(sorted({v.size_class.value for v in profile.variants_of(product)})),
        "gender": (d.gender.value,),
        "face_shape": tuple(s.value for s in product.face_shapes),
    }


def summarize(profile: StoreProfile, products: Iterable[Product]) -> StoreSummary:
    """The reference computation over products (any order); only the selected ones count."""
    members: dict[tuple[CollectionKind, str], list[tuple[str, str]]] = defaultdict(list)
    counters: dict[str, Counter[str]] = {name: Counter() for name in STORE_FACETS}
    count = variants = 0
    for product in products:
        if not profile.selects(product):
            continue
        d = product.draft
        count += 1
        variants += len(profile.variants_of(product))
        title = product_title(d.brand, d.name)
        for kind, value in (
            (CollectionKind.CATEGORY, d.category.value),
            (CollectionKind.SHAPE, d.frame_shape.value),
            (CollectionKind.BRAND, d.brand),
        ):
            members[(kind, value)].append((title, product.product_id))
        for name, values in store_facet_values(profile, product).items():
            counters[name].update(values)
    groups = []
    for (kind, value), pairs in members.items():
        pairs.sort()
        groups.append(CollectionGroup(kind, value, tuple(i for _, i in pairs), tuple(t for t, _ in pairs)))
    facets = {name: sorted_facet(counters[name]) for name in STORE_FACETS}
    return StoreSummary(build_collections(groups), facets, StoreCounts(count, variants))


def collection_to_dict(collection: StoreCollection) -> dict[str, Any]:
    return {
        "collection_id": collection.collection_id,
        "title": collection.title,
        "product_ids": list(collection.product_ids),
    }


def facets_to_dict(facets: Facets) -> dict[str, list[dict[str, Any]]]:
    return {name: [{"value": f.value, "count": f.count} for f in facets.get(name, [])] for name in STORE_FACETS}


def counts_to_dict(counts: StoreCounts) -> dict[str, int]:
    return {"products": counts.products, "variants": counts.variants}


def catalog_head(profile: StoreProfile, generated_at: datetime) -> dict[str, Any]:
    """What precedes the products in the catalog document."""
    return {"store": profile_to_dict(profile), "generated_at": timestamp(generated_at)}
