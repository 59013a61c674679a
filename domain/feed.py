"""The SKU Genie feed's field names (FEED.md), in the order of its field table.

One row is one variant; the product-level fields repeat on every row of a style.
"""

from __future__ import annotations

PRODUCT_FIELDS: tuple[str, ...] = (
    "style_id",
    "brand",
    "model_name",
    "category",
    "frame_shape",
    "frame_material",
    "rim_type",
    "gender",
    "description_html",
    "tags",
)
VARIANT_FIELDS: tuple[str, ...] = (
    "sku",
    "gtin",
    "color_name",
    "color_hex",
    "lens_width_mm",
    "bridge_width_mm",
    "temple_length_mm",
    "lens_height_mm",
    "price",
    "currency",
    "stock_quantity",
    "rx_compatible",
    "polarized",
    "lens_category",
    "uv_protection",
    "image_urls",
)
#: Every field, in the order of the FEED.md table (how the sample feed writes its rows).
FEED_FIELDS: tuple[str, ...] = (
    "sku",
    "gtin",
    *PRODUCT_FIELDS[:8],
    *VARIANT_FIELDS[2:15],
    "description_html",
    "image_urls",
    "tags",
)
