"""Beanie documents: the stored shape of the catalog, kept apart from the domain entities.

Besides the product's own fields a document carries denormalised query keys (``brand_key``,
``name_key``, ``keywords``, ``skus``, ``gtins``, ``price_min``, ``size_classes``), so that every
query shape is answered by an index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from beanie import DecimalAnnotation, Document
from pydantic import BaseModel, ConfigDict, Field
from pymongo import ASCENDING, DESCENDING, IndexModel

Text = Annotated[str, Field(min_length=1)]


class VariantDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Annotated[str, Field(min_length=3, max_length=40)]
    gtin: Annotated[str, Field(min_length=14, max_length=14)] | None = None
    color_name: Text
    color_hex: str | None = None
    lens_width_mm: Annotated[int, Field(ge=40, le=62)]
    bridge_width_mm: Annotated[int, Field(ge=14, le=24)]
    temple_length_mm: Annotated[int, Field(ge=120, le=155)]
    lens_height_mm: Annotated[int, Field(ge=20, le=60)] | None = None
    size_class: str
    price: DecimalAnnotation
    currency: Annotated[str, Field(min_length=3, max_length=3)]
    stock_quantity: Annotated[int, Field(ge=0)]
    in_stock: bool
    rx_compatible: bool
    polarized: bool
    lens_category: Annotated[int, Field(ge=0, le=4)] | None = None
    uv_protection: str | None = None
    image_urls: list[str]


class ProductDocument(Document):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(alias="_id")  # type: ignore[assignment]
    style_id: Text
    brand: Text
    name: Text
    category: str
    frame_shape: str
    frame_material: str
    rim_type: str
    gender: str
    description_html: str | None = None
    tags: list[str]
    face_shapes: list[str]
    status: str
    version: Annotated[int, Field(ge=1)]
    created_at: datetime
    updated_at: datetime
    completeness: float
    variants: Annotated[list[VariantDocument], Field(min_length=1)]
    # Query keys, derived from the fields above on every write.
    brand_key: str
    name_key: str
    price_min: DecimalAnnotation
    size_classes: list[str]
    skus: list[str]
    gtins: list[str]
    keywords: list[str]

    class Settings:
        name = "products"
        use_revision = False
        validate_on_save = False
        keep_nulls = True
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("skus", ASCENDING)], name="sku_unique", unique=True),
            IndexModel(
                [("gtins", ASCENDING)],
                name="gtin_unique",
                unique=True,
                partialFilterExpression={"gtins": {"$type": "string"}},
            ),
            IndexModel([("status", ASCENDING), ("name_key", ASCENDING), ("_id", ASCENDING)], name="by_name"),
            IndexModel([("status", ASCENDING), ("price_min", ASCENDING), ("_id", ASCENDING)], name="by_price"),
            IndexModel([("status", ASCENDING), ("updated_at", DESCENDING), ("_id", DESCENDING)], name="by_updated"),
            IndexModel(
                [
                    ("status", ASCENDING),
                    ("brand_key", ASCENDING),
                    ("name_key", ASCENDING),
                    ("_id", ASCENDING),
                ],
                name="by_brand",
            ),
            IndexModel([("keywords", ASCENDING), ("status", ASCENDING)], name="by_keyword"),
            IndexModel(
                [("status", ASCENDING), ("variants.currency", ASCENDING), ("variants.price", ASCENDING)],
                name="by_variant_price",
            ),
        ]


class HistoryDocument(Document):
    model_config = ConfigDict(extra="forbid")

    product_id: str
    version: Annotated[int, Field(ge=1)]
    at: datetime
    actor: str
    source: str
    changes: dict[str, Any]

    class Settings:
        name = "product_history"
        use_revision = False
        validate_on_save = False
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("product_id", ASCENDING), ("version", ASCENDING)], name="by_product", unique=True),
        ]


DOCUMENT_MODELS: list[type[Document]] = [ProductDocument, HistoryDocument]
