"""Uniqueness across the catalog: a SKU and a GTIN belong to one product only.

Repositories report a taken value as ``ProductConflict`` with a FieldError whose field is
``"<key>=<value>"`` (``sku=RB3016-W0365-51``); the use case, which still has the caller's body,
turns that into the caller's own field path.
"""

from __future__ import annotations

from domain.errors import ErrorCode, FieldError, ProductConflict


def product_exists(product_id: str) -> ProductConflict:
    message = f"product {product_id!r} already exists"
    return ProductConflict(message, (FieldError("product_id", ErrorCode.PRODUCT_EXISTS, message),))


def sku_taken(sku: str, owner: str | None) -> ProductConflict:
    message = f"SKU {sku} belongs to product {owner!r}" if owner else f"SKU {sku} belongs to another product"
    return ProductConflict(message, (FieldError(f"sku={sku}", ErrorCode.SKU_CONFLICT, message),))


def gtin_taken(gtin: str, owner: str | None) -> ProductConflict:
    message = f"GTIN {gtin} belongs to product {owner!r}" if owner else f"GTIN {gtin} belongs to another product"
    return ProductConflict(message, (FieldError(f"gtin={gtin}", ErrorCode.GTIN_CONFLICT, message),))
