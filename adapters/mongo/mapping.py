"""Pure mapping between domain entities and stored documents, both ways.

A property test proves ``to_domain(to_document(p)) == p`` for any valid product, so the two
models can evolve apart without silently losing data.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from bson import Decimal128

from adapters.mongo.documents import HistoryRecord, ProductRecord, VariantDocument
from domain.enums import Category, FrameMaterial, FrameShape, Gender, ProductStatus, RimType, UvProtection
from domain.feed_rows import fields_hash, variant_hash
from domain.history import HistoryEntry
from domain.measurements import FrameMeasurements
from domain.money import Money
from domain.product import Product, ProductDraft, Variant


def variant_to_document(variant: Variant) -> VariantDocument:
    m = variant.measurements
    return VariantDocument(
        sku=variant.sku,
        gtin=variant.gtin,
        color_name=variant.color_name,
        color_hex=variant.color_hex,
        lens_width_mm=m.lens_width_mm,
        bridge_width_mm=m.bridge_width_mm,
        temple_length_mm=m.temple_length_mm,
        lens_height_mm=m.lens_height_mm,
        size_class=variant.size_class.value,
        price=variant.price.amount,
        currency=variant.price.currency,
        stock_quantity=variant.stock_quantity,
        in_stock=variant.in_stock,
        rx_compatible=variant.rx_compatible,
        polarized=variant.polarized,
        lens_category=variant.lens_category,
        uv_protection=variant.uv_protection.value if variant.uv_protection else None,
        image_urls=list(variant.image_urls),
        content_hash=variant_hash(variant),
    )


def to_document(product: Product) -> ProductRecord:
    d = product.draft
    return ProductRecord.model_validate(
        dict(
            _id=product.product_id,
            style_id=d.style_id,
            brand=d.brand,
            name=d.name,
            category=d.category.value,
            frame_shape=d.frame_shape.value,
            frame_material=d.frame_material.value,
            rim_type=d.rim_type.value,
            gender=d.gender.value,
            description_html=d.description_html,
            tags=list(d.tags),
            face_shapes=[s.value for s in product.face_shapes],
            status=product.status.value,
            version=product.version,
            created_at=product.created_at,
            updated_at=product.updated_at,
            completeness=product.completeness,
            variants=[variant_to_document(v) for v in product.variants],
            brand_key=d.brand.casefold(),
            name_key=product.name_key,
            price_min=product.price_min,
            size_classes=[s.value for s in product.size_classes],
            skus=list(product.skus),
            gtins=list(product.gtins) or None,
            keywords=list(product.keywords),
            fields_hash=fields_hash(d),
        )
    )


def variant_to_domain(doc: VariantDocument) -> Variant:
    return Variant(
        sku=doc.sku,
        gtin=doc.gtin,
        color_name=doc.color_name,
        color_hex=doc.color_hex,
        measurements=FrameMeasurements(
            doc.lens_width_mm, doc.bridge_width_mm, doc.temple_length_mm, doc.lens_height_mm
        ),
        price=Money(doc.price, doc.currency),
        stock_quantity=doc.stock_quantity,
        rx_compatible=doc.rx_compatible,
        polarized=doc.polarized,
        lens_category=doc.lens_category,
        uv_protection=UvProtection(doc.uv_protection) if doc.uv_protection else None,
        image_urls=tuple(doc.image_urls),
    )


def to_domain(doc: ProductRecord) -> Product:
    draft = ProductDraft(
        style_id=doc.style_id,
        brand=doc.brand,
        name=doc.name,
        category=Category(doc.category),
        frame_shape=FrameShape(doc.frame_shape),
        frame_material=FrameMaterial(doc.frame_material),
        rim_type=RimType(doc.rim_type),
        gender=Gender(doc.gender),
        description_html=doc.description_html,
        tags=tuple(doc.tags),
        variants=tuple(variant_to_domain(v) for v in doc.variants),
    )
    return Product(
        product_id=doc.id,
        draft=draft,
        status=ProductStatus(doc.status),
        version=doc.version,
        created_at=doc.created_at,
        updated_at=doc.updated_at,
    )


def bson_of(value: Any) -> Any:
    """Plain BSON-ready data: Decimals become Decimal128, never floats."""
    if isinstance(value, Decimal):
        return Decimal128(value)
    if isinstance(value, dict):
        return {key: bson_of(item) for key, item in value.items()}
    if isinstance(value, list):
        return [bson_of(item) for item in value]
    return value


def product_to_bson(product: Product, raw_hashes: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The stored document; ``raw_hashes`` (SKU -> raw digest) only from an ingestion write."""
    document = to_document(product)
    excluded: dict[str, Any] = {"revision_id": True, "variants": {"__all__": {"raw_hash"}}}
    if document.gtins is None:
        excluded["gtins"] = True
    raw: dict[str, Any] = bson_of(document.model_dump(by_alias=True, exclude=excluded))
    if raw_hashes:
        for variant in raw["variants"]:
            digest = raw_hashes.get(variant["sku"])
            if digest is not None:
                variant["raw_hash"] = digest
    return raw


def product_from_bson(raw: dict[str, Any]) -> Product:
    return to_domain(ProductRecord.model_validate(raw))


def history_to_bson(entry: HistoryEntry) -> dict[str, Any]:
    previous = product_to_bson(entry.previous) if entry.previous is not None else None
    doc = HistoryRecord.model_validate(
        {
            "product_id": entry.product_id,
            "version": entry.version,
            "at": entry.at,
            "actor": entry.actor,
            "source": entry.source,
            "changes": entry.changes,
            "previous": previous,
            "reverts": entry.reverts,
        }
    )
    # ``previous`` keeps the product's own stored shape (Decimal128 prices, no null ``gtins``).
    return {**doc.model_dump(exclude={"id", "revision_id", "previous"}), "previous": previous}


def history_to_domain(doc: HistoryRecord) -> HistoryEntry:
    return HistoryEntry(
        product_id=doc.product_id,
        version=doc.version,
        at=doc.at,
        actor=doc.actor,
        source=doc.source,
        changes=doc.changes,
        previous=to_domain(doc.previous) if doc.previous is not None else None,
        reverts=doc.reverts,
    )
