"""The Product aggregate (a frame style) and its Variants (the sellable SKUs)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from domain.enums import (
    Category,
    FaceShape,
    FrameMaterial,
    FrameShape,
    Gender,
    ProductStatus,
    RimType,
    SizeClass,
    UvProtection,
    face_shapes_for,
)
from domain.identifiers import product_id_for
from domain.measurements import PROGRESSIVE_MIN_LENS_HEIGHT, FrameMeasurements
from domain.money import Money
from domain.text import keywords_of


@dataclass(frozen=True, slots=True)
class Variant:
    sku: str
    color_name: str
    measurements: FrameMeasurements
    price: Money
    stock_quantity: int = 0
    rx_compatible: bool = False
    polarized: bool = False
    gtin: str | None = None
    color_hex: str | None = None
    lens_category: int | None = None
    uv_protection: UvProtection | None = None
    image_urls: tuple[str, ...] = ()

    @property
    def size_label(self) -> str:
        return self.measurements.size_label

    @property
    def size_class(self) -> SizeClass:
        return self.measurements.size_class

    @property
    def progressive_ready(self) -> bool:
        """A progressive lens needs an Rx frame and room for its reading corridor."""
        height = self.measurements.lens_height_mm
        return self.rx_compatible and height is not None and height >= PROGRESSIVE_MIN_LENS_HEIGHT

    @property
    def in_stock(self) -> bool:
        return self.stock_quantity > 0

    def completeness_points(self) -> int:
        """How many of the four variant-level enrichment fields are present."""
        return sum(
            (
                self.gtin is not None,
                self.color_hex is not None,
                self.measurements.lens_height_mm is not None,
                len(self.image_urls) >= 1,
            )
        )


@dataclass(frozen=True, slots=True)
class ProductDraft:
    """Everything a caller may set on a product: validated, but not yet part of the catalog."""

    style_id: str
    brand: str
    name: str
    category: Category
    frame_shape: FrameShape
    frame_material: FrameMaterial
    rim_type: RimType
    variants: tuple[Variant, ...]
    gender: Gender = Gender.UNISEX
    description_html: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def product_id(self) -> str:
        return product_id_for(self.brand, self.style_id)


@dataclass(frozen=True, slots=True)
class Product:
    """A frame style in the catalog. Immutable: every change makes a new version."""

    product_id: str
    draft: ProductDraft
    status: ProductStatus
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def create(cls, draft: ProductDraft, now: datetime) -> Product:
        return cls(draft.product_id, draft, ProductStatus.ACTIVE, 1, now, now)

    def _next(self, now: datetime, draft: ProductDraft | None = None, status: ProductStatus | None = None) -> Product:
        return dataclasses.replace(
            self,
            version=self.version + 1,
            updated_at=now,
            draft=draft or self.draft,
            status=status or self.status,
        )

    def replaced_by(self, draft: ProductDraft, now: datetime) -> Product:
        """The next version with new content; the identity and the status stay."""
        return self._next(now, draft=draft)

    def with_variant(self, variant: Variant, now: datetime) -> Product:
        variants = tuple(variant if v.sku == variant.sku else v for v in self.variants)
        return self._next(now, draft=dataclasses.replace(self.draft, variants=variants))

    def restored_to(self, previous: Product, now: datetime) -> Product:
        """The next version with the content (and status) of an earlier one: an undo that keeps counting."""
        return self._next(now, draft=previous.draft, status=previous.status)

    def archived(self, now: datetime) -> Product:
        return self._next(now, status=ProductStatus.ARCHIVED)

    def variant(self, sku: str) -> Variant | None:
        return next((v for v in self.variants if v.sku == sku), None)

    # Read-through accessors keep callers from reaching into the draft.
    @property
    def variants(self) -> tuple[Variant, ...]:
        return self.draft.variants

    @property
    def brand(self) -> str:
        return self.draft.brand

    @property
    def name(self) -> str:
        return self.draft.name

    @property
    def is_active(self) -> bool:
        return self.status is ProductStatus.ACTIVE

    # Derived data (FEED.md, "Derived fields").
    @property
    def face_shapes(self) -> tuple[FaceShape, ...]:
        return face_shapes_for(self.draft.frame_shape)

    @property
    def completeness(self) -> float:
        if not self.variants:
            return 0.0
        product_points = (self.draft.description_html is not None) + (len(self.draft.tags) >= 1)
        points = sum(v.completeness_points() + product_points for v in self.variants)
        share = Decimal(points) / Decimal(6 * len(self.variants))
        return float(share.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))

    @property
    def size_classes(self) -> tuple[SizeClass, ...]:
        return tuple(sorted({v.size_class for v in self.variants}))

    @property
    def price_min(self) -> Decimal:
        return min(v.price.amount for v in self.variants)

    @property
    def name_key(self) -> str:
        """What `sort=name` orders by: case-insensitive, then by product id."""
        return self.draft.name.casefold()

    @property
    def keywords(self) -> tuple[str, ...]:
        d = self.draft
        texts = [d.name, d.brand, d.style_id, *d.tags]
        for v in self.variants:
            texts.extend((v.sku, v.color_name))
        return tuple(sorted(keywords_of(*texts)))

    @property
    def skus(self) -> tuple[str, ...]:
        return tuple(v.sku for v in self.variants)

    @property
    def gtins(self) -> tuple[str, ...]:
        return tuple(sorted(v.gtin for v in self.variants if v.gtin is not None))
