"""What the cache stores: JSON-safe data, never pickles, and a lossless way back to the domain.

A Redis shared by several processes is a place where anyone with network access may write; a
pickle read from there runs code. JSON cannot, so every cached value is built from dicts, lists,
strings, numbers and None, and decoding rebuilds the immutable domain objects field by field.

The shape is close to the API's (``domain.snapshot``) but lossless where the API is not: full
time precision and the Decimal's exact text. Derived fields (size label, face shapes,
completeness…) are left out because the domain derives them again. ``FORMAT`` changes whenever
the shape does; it is part of every key, so no process ever reads another format.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.enums import Category, FrameMaterial, FrameShape, Gender, ProductStatus, RimType, UvProtection
from domain.measurements import FrameMeasurements
from domain.money import Money
from domain.product import Product, ProductDraft, Variant
from domain.search import FacetCount, Facets, Page, SearchFilters, SearchQuery

FORMAT = 1


def variant_to_json(variant: Variant) -> dict[str, Any]:
    m = variant.measurements
    return {
        "sku": variant.sku,
        "color_name": variant.color_name,
        "size": [m.lens_width_mm, m.bridge_width_mm, m.temple_length_mm, m.lens_height_mm],
        "price": [str(variant.price.amount), variant.price.currency],
        "stock_quantity": variant.stock_quantity,
        "rx_compatible": variant.rx_compatible,
        "polarized": variant.polarized,
        "gtin": variant.gtin,
        "color_hex": variant.color_hex,
        "lens_category": variant.lens_category,
        "uv_protection": variant.uv_protection.value if variant.uv_protection else None,
        "image_urls": list(variant.image_urls),
    }


def variant_from_json(data: dict[str, Any]) -> Variant:
    lens, bridge, temple, height = data["size"]
    amount, currency = data["price"]
    return Variant(
        sku=data["sku"],
        color_name=data["color_name"],
        measurements=FrameMeasurements(lens, bridge, temple, height),
        price=Money(Decimal(amount), currency),
        stock_quantity=data["stock_quantity"],
        rx_compatible=data["rx_compatible"],
        polarized=data["polarized"],
        gtin=data["gtin"],
        color_hex=data["color_hex"],
        lens_category=data["lens_category"],
        uv_protection=UvProtection(data["uv_protection"]) if data["uv_protection"] else None,
        image_urls=tuple(data["image_urls"]),
    )


def product_to_json(product: Product) -> dict[str, Any]:
    d = product.draft
    return {
        "product_id": product.product_id,
        "status": product.status.value,
        "version": product.version,
        "created_at": product.created_at.isoformat(),
        "updated_at": product.updated_at.isoformat(),
        "style_id": d.style_id,
        "brand": d.brand,
        "name": d.name,
        "category": d.category.value,
        "frame_shape": d.frame_shape.value,
        "frame_material": d.frame_material.value,
        "rim_type": d.rim_type.value,
        "gender": d.gender.value,
        "description_html": d.description_html,
        "tags": list(d.tags),
        "variants": [variant_to_json(v) for v in d.variants],
    }


def product_from_json(data: dict[str, Any]) -> Product:
    draft = ProductDraft(
        style_id=data["style_id"],
        brand=data["brand"],
        name=data["name"],
        category=Category(data["category"]),
        frame_shape=FrameShape(data["frame_shape"]),
        frame_material=FrameMaterial(data["frame_material"]),
        rim_type=RimType(data["rim_type"]),
        gender=Gender(data["gender"]),
        description_html=data["description_html"],
        tags=tuple(data["tags"]),
        variants=tuple(variant_from_json(v) for v in data["variants"]),
    )
    return Product(
        product_id=data["product_id"],
        draft=draft,
        status=ProductStatus(data["status"]),
        version=data["version"],
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
    )


def optional_product_to_json(product: Product | None) -> dict[str, Any] | None:
    return None if product is None else product_to_json(product)


def optional_product_from_json(data: dict[str, Any] | None) -> Product | None:
    return None if data is None else product_from_json(data)


def page_to_json(page: Page[Product]) -> dict[str, Any]:
    return {"items": [product_to_json(p) for p in page.items], "next_cursor": page.next_cursor}


def page_from_json(data: dict[str, Any]) -> Page[Product]:
    return Page(tuple(product_from_json(p) for p in data["items"]), data["next_cursor"])


def facets_to_json(facets: Facets) -> dict[str, Any]:
    return {name: [[c.value, c.count] for c in counts] for name, counts in facets.items()}


def facets_from_json(data: dict[str, Any]) -> Facets:
    return {name: [FacetCount(value, count) for value, count in counts] for name, counts in data.items()}


def _plain(value: Any) -> Any:
    """Filter values as text: enums by value, Decimals by their exact text, tuples as lists."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal | str):  # StrEnum members are str
        return str(value)
    return value


def filters_digest(filters: SearchFilters) -> str:
    """A stable name for a set of filters: equal filters, equal digest, in every process."""
    fields = {name: _plain(getattr(filters, name)) for name in SearchFilters.__dataclass_fields__}
    return _digest(fields)


def query_digest(query: SearchQuery) -> str:
    cursor = query.cursor.encode() if query.cursor is not None else None
    return _digest({"f": filters_digest(query.filters), "s": query.sort.value, "l": query.limit, "c": cursor})


def _digest(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
