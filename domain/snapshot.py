"""The canonical representation of a product: the JSON shape of CONTRACT.md 4.3.

The domain owns it because history diffs, caches and the API must all agree on what a product
"looks like"; adapters never invent their own serialisation of the aggregate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.product import Product, Variant


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds: the precision every store keeps."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def variant_to_dict(variant: Variant) -> dict[str, Any]:
    m = variant.measurements
    return {
        "sku": variant.sku,
        "gtin": variant.gtin,
        "color_name": variant.color_name,
        "color_hex": variant.color_hex,
        "lens_width_mm": m.lens_width_mm,
        "bridge_width_mm": m.bridge_width_mm,
        "temple_length_mm": m.temple_length_mm,
        "lens_height_mm": m.lens_height_mm,
        "size_label": variant.size_label,
        "size_class": variant.size_class.value,
        "price": variant.price.to_json(),
        "stock_quantity": variant.stock_quantity,
        "rx_compatible": variant.rx_compatible,
        "progressive_ready": variant.progressive_ready,
        "polarized": variant.polarized,
        "lens_category": variant.lens_category,
        "uv_protection": variant.uv_protection.value if variant.uv_protection else None,
        "image_urls": list(variant.image_urls),
    }


def product_to_dict(product: Product) -> dict[str, Any]:
    d = product.draft
    return {
        "product_id": product.product_id,
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
        "face_shapes": [shape.value for shape in product.face_shapes],
        "status": product.status.value,
        "completeness": product.completeness,
        "version": product.version,
        "created_at": timestamp(product.created_at),
        "updated_at": timestamp(product.updated_at),
        "variants": [variant_to_dict(v) for v in product.variants],
    }
