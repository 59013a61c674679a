"""Use cases that change the catalog. Each one records who changed what, atomically with the change."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from application.authorization import Authorizer, Caller
from domain.errors import (
    ErrorCode,
    FieldError,
    ProductConflict,
    ProductNotFound,
    ValidationFailed,
    VersionMismatch,
    invalid,
)
from domain.fields import FieldReader
from domain.history import API_SOURCE, record_change
from domain.identifiers import normalise_sku
from domain.money import Money, parse_amount, parse_currency
from domain.parsing import parse_product_payload, refuse_threats
from domain.ports import BrandNames, Clock, ProductRepository
from domain.product import Product, ProductDraft
from domain.rbac import Permission
from domain.sanitising import HtmlSanitizer


def _locate_conflicts(error: ProductConflict, payload: Mapping[str, Any]) -> ProductConflict:
    """Names the conflicting SKU or GTIN by its position in the caller's own body."""
    variants = payload.get("variants")
    if not isinstance(variants, list):
        return error
    located: list[FieldError] = []
    for field_error in error.errors:
        key, _, value = (field_error.field or "").partition("=")
        for index, raw in enumerate(variants):
            candidate = raw.get(key) if isinstance(raw, Mapping) else None
            if isinstance(candidate, str) and value in {
                normalise_sku(candidate),
                candidate.strip().zfill(14),
            }:
                located.append(FieldError(f"variants[{index}].{key}", field_error.code, field_error.message))
                break
        else:
            located.append(FieldError(key or None, field_error.code, field_error.message))
    return ProductConflict(error.message, tuple(located))


async def _canonical_brand(brands: BrandNames | None, draft: ProductDraft) -> ProductDraft:
    """The draft with its brand's canonical spelling (``Nordvik`` for a ``nordvik`` written later)."""
    if brands is None:
        return draft
    name = (await brands.canonical([draft.brand]))[draft.brand]
    return draft if name == draft.brand else dataclasses.replace(draft, brand=name)


class _ProductWriter:
    """What the use cases that take a whole product body need."""

    def __init__(
        self,
        products: ProductRepository,
        clock: Clock,
        sanitizer: HtmlSanitizer,
        authorizer: Authorizer,
        brands: BrandNames | None = None,
    ) -> None:
        self.products = products
        self.clock = clock
        self.sanitizer = sanitizer
        self.authorizer = authorizer
        self.brands = brands


class CreateProduct(_ProductWriter):
    async def __call__(self, payload: Mapping[str, Any], caller: Caller, source: str = API_SOURCE) -> Product:
        await self.authorizer.precheck(caller, Permission.PRODUCT_WRITE, "product")
        draft = parse_product_payload(payload, self.sanitizer)
        await self.authorizer.require(caller, Permission.PRODUCT_WRITE, f"product:{draft.product_id}", (draft.brand,))
        draft = await _canonical_brand(self.brands, draft)  # after the decision: a refused write registers nothing
        product = Product.create(draft, self.clock.now())
        try:
            await self.products.add(product, record_change(None, product, caller.actor, source))
        except ProductConflict as conflict:
            raise _locate_conflicts(conflict, payload) from None
        return product


class ReplaceProduct(_ProductWriter):
    async def __call__(
        self, product_id: str, payload: Mapping[str, Any], expected_version: int, caller: Caller
    ) -> Product:
        resource = f"product:{product_id}"
        await self.authorizer.precheck(caller, Permission.PRODUCT_WRITE, resource)
        current = await self.products.get(product_id)
        if current is None:
            await self.authorizer.require(caller, Permission.PRODUCT_WRITE, resource)
            raise ProductNotFound(f"no product {product_id!r}")
        draft = parse_product_payload(payload, self.sanitizer)
        await self.authorizer.require(caller, Permission.PRODUCT_WRITE, resource, (current.brand, draft.brand))
        if draft.product_id != current.product_id:
            message = f"brand and style_id identify the product; they make {draft.product_id!r}, not {product_id!r}"
            raise ValidationFailed(message, (FieldError("style_id", ErrorCode.INVALID_VALUE, message),))
        if current.version != expected_version:
            raise VersionMismatch(product_id, expected_version, current.version)
        draft = await _canonical_brand(self.brands, draft)
        if draft == current.draft:
            return current
        product = current.replaced_by(draft, self.clock.now())
        try:
            entry = record_change(current, product, caller.actor, API_SOURCE)
            await self.products.replace(product, expected_version, entry)
        except ProductConflict as conflict:
            raise _locate_conflicts(conflict, payload) from None
        return product


class PatchVariant:
    """Price and stock of one SKU: the two things that change every day."""

    def __init__(self, products: ProductRepository, clock: Clock, authorizer: Authorizer) -> None:
        self.products = products
        self.clock = clock
        self.authorizer = authorizer

    async def __call__(self, sku: str, payload: Any, expected_version: int, caller: Caller) -> Product:
        sku = normalise_sku(sku)
        await self.authorizer.precheck(caller, Permission.PRODUCT_WRITE, f"sku:{sku}")
        current = await self.products.get_by_sku(sku)
        variant = current.variant(sku) if current else None
        if current is None or variant is None:
            await self.authorizer.require(caller, Permission.PRODUCT_WRITE, f"sku:{sku}")
            raise ProductNotFound(f"no SKU {sku!r}")
        await self.authorizer.require(caller, Permission.PRODUCT_WRITE, f"sku:{sku}", (current.brand,))
        if not isinstance(payload, Mapping):
            error = FieldError(None, ErrorCode.INVALID_VALUE, "the body must be a JSON object")
            raise ValidationFailed("the body must be a JSON object", (error,))
        refuse_threats(payload)
        reader = FieldReader(payload)
        price = variant.price
        raw_price = payload.get("price")
        if isinstance(raw_price, Mapping):
            amount = reader.apply("price.amount", parse_amount, raw_price.get("amount"))
            currency = raw_price.get("currency")
            currency = price.currency if currency is None else reader.apply("price.currency", parse_currency, currency)
            if amount is not None and currency is not None:
                price = Money(amount, currency)
        elif raw_price is not None:
            amount = reader.apply("price", parse_amount, raw_price)
            price = Money(amount, price.currency) if amount is not None else price
        stock = reader.integer("stock_quantity", (0, 10_000_000), required=False)
        if raw_price is None and stock is None and not reader.errors:
            reader.fail("price", ErrorCode.MISSING_FIELD, "give price, stock_quantity or both")
        if reader.errors:
            raise invalid("the change is not valid", tuple(reader.errors))
        if current.version != expected_version:
            raise VersionMismatch(current.product_id, expected_version, current.version)
        changed = dataclasses.replace(
            variant, price=price, stock_quantity=variant.stock_quantity if stock is None else stock
        )
        if changed == variant:
            return current
        product = current.with_variant(changed, self.clock.now())
        await self.products.replace(
            product, expected_version, record_change(current, product, caller.actor, API_SOURCE)
        )
        return product


class ArchiveProduct:
    """Archiving hides a product from search but keeps it readable, so links never break."""

    ATTEMPTS = 5

    def __init__(self, products: ProductRepository, clock: Clock, authorizer: Authorizer) -> None:
        self.products = products
        self.clock = clock
        self.authorizer = authorizer

    async def __call__(self, product_id: str, caller: Caller) -> Product:
        resource = f"product:{product_id}"
        await self.authorizer.precheck(caller, Permission.PRODUCT_ARCHIVE, resource)
        current = await self.products.get(product_id)
        if current is None:
            await self.authorizer.require(caller, Permission.PRODUCT_ARCHIVE, resource)
            raise ProductNotFound(f"no product {product_id!r}")
        await self.authorizer.require(caller, Permission.PRODUCT_ARCHIVE, resource, (current.brand,))
        for _ in range(self.ATTEMPTS):
            current = await self.products.get(product_id)
            if current is None:
                raise ProductNotFound(f"no product {product_id!r}")
            if not current.is_active:
                return current
            product = current.archived(self.clock.now())
            try:
                await self.products.replace(
                    product, current.version, record_change(current, product, caller.actor, API_SOURCE)
                )
            except VersionMismatch:
                continue
            return product
        raise VersionMismatch(product_id, 0, None)
