"""Loads SKU Genie rows through the create use case: the demo catalog before the pipeline exists.

Rows of one brand + style become one product, exactly as the feed defines; the real ingestion
pipeline (with diffing, batching and rollback) replaces this for anything but a first load.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from application.authorization import Caller
from application.catalog_commands import CreateProduct
from domain.errors import DomainError, ErrorCode, ProductConflict
from domain.feed import PRODUCT_FIELDS as FEED_PRODUCT_FIELDS
from domain.feed import VARIANT_FIELDS as FEED_VARIANT_FIELDS

#: Feed fields carried over unchanged ("model_name" becomes "name", price and currency become "price").
PRODUCT_FIELDS = tuple(name for name in FEED_PRODUCT_FIELDS if name != "model_name")
VARIANT_FIELDS = tuple(name for name in FEED_VARIANT_FIELDS if name not in ("price", "currency"))


def products_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Groups feed rows into API-shaped product payloads, in first-seen order."""
    products: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (str(row.get("brand", "")), str(row.get("style_id", "")))
        if key not in products:
            product = {name: row[name] for name in PRODUCT_FIELDS if name in row}
            product["name"] = row.get("model_name")
            product["variants"] = []
            products[key] = product
        variant = {name: row[name] for name in VARIANT_FIELDS if name in row}
        variant["price"] = {"amount": row.get("price"), "currency": row.get("currency")}
        products[key]["variants"].append(variant)
    return list(products.values())


async def load_sample(
    rows: Iterable[Mapping[str, Any]], create: CreateProduct, caller: Caller
) -> tuple[int, list[str]]:
    """Creates every product it can (skipping those already there); returns how many, and one
    line per product refused."""
    created = 0
    problems: list[str] = []
    for payload in products_from_rows(rows):
        try:
            await create(payload, caller)
            created += 1
        except ProductConflict as error:
            if not any(e.code == ErrorCode.PRODUCT_EXISTS for e in error.errors):
                problems.append(f"{payload.get('brand')} {payload.get('style_id')}: {error.message}")
        except DomainError as error:
            problems.append(f"{payload.get('brand')} {payload.get('style_id')}: {error.message}")
    return created, problems
