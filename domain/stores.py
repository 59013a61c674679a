"""Store profiles: which slice of the catalog a generated storefront shows (FEED.md, store data).

A profile selects active products of some categories and brands (an empty list means all), and
of each product only the variants in the store's currency (in stock, unless out-of-stock
variants are included). A product left with no such variant is not in the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.enums import Category
from domain.errors import ErrorCode, FieldError, NotFound, RuleViolation, ValidationFailed, invalid
from domain.fields import FieldReader
from domain.money import parse_currency
from domain.product import Product, Variant
from domain.text import parse_plain_text
from domain.threats import operator_keys

_STORE_ID = re.compile(r"[a-z0-9-]{1,60}")
MAX_NAME = 120
MAX_BRAND = 60
MAX_BRANDS = 200
MAX_CATEGORIES = 10


class StoreNotFound(NotFound):
    """No store profile with that id (a 404, like a missing product)."""


@dataclass(frozen=True, slots=True)
class StoreProfile:
    store_id: str
    name: str
    currency: str
    #: Empty: every category.
    categories: tuple[Category, ...] = ()
    #: Empty: every brand. Compared case-insensitively (``ray-ban`` selects ``Ray-Ban``).
    brands: tuple[str, ...] = ()
    include_out_of_stock: bool = False

    @property
    def brand_keys(self) -> tuple[str, ...]:
        """The brands as the catalog compares them (its ``brand_key``)."""
        return tuple(brand.casefold() for brand in self.brands)

    def offers(self, variant: Variant) -> bool:
        """A variant the store sells: in its currency and, unless told otherwise, in stock."""
        return variant.price.currency == self.currency and (self.include_out_of_stock or variant.in_stock)

    def variants_of(self, product: Product) -> tuple[Variant, ...]:
        """The product's store variants, by SKU."""
        return tuple(sorted((v for v in product.variants if self.offers(v)), key=lambda v: v.sku))

    def selects(self, product: Product) -> bool:
        """The reference semantics of store membership; the database adapter must agree with it."""
        d = product.draft
        return (
            product.is_active
            and (not self.categories or d.category in self.categories)
            and (not self.brands or d.brand.casefold() in self.brand_keys)
            and any(self.offers(v) for v in product.variants)
        )


def parse_store_id(raw: str) -> str:
    """A store id is used in paths and file names: 1-60 of ``a-z 0-9 -``, nothing else."""
    if not _STORE_ID.fullmatch(raw):
        raise RuleViolation(ErrorCode.INVALID_VALUE, "a store id is 1-60 characters of a-z, 0-9 and '-'")
    return raw


def _list(reader: FieldReader, key: str, max_items: int) -> list[tuple[str, Any]]:
    """The items of a list field with their own field names (``brands[2]``); [] when absent."""
    value = reader.data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        code = ErrorCode.THREAT_DETECTED if isinstance(value, Mapping) else ErrorCode.INVALID_VALUE
        reader.fail(key, code, "must be a list of strings")
        return []
    if len(value) > max_items:
        reader.fail(key, ErrorCode.OUT_OF_RANGE, f"holds at most {max_items} items")
        return []
    return [(f"{key}[{index}]", item) for index, item in enumerate(value)]


def _categories(reader: FieldReader) -> tuple[Category, ...]:
    chosen: list[Category] = []
    allowed = ", ".join(c.value for c in Category)
    for name, item in _list(reader, "categories", MAX_CATEGORIES):
        try:
            category = Category(item.strip()) if isinstance(item, str) else None
        except ValueError:
            category = None
        if category is None:
            reader.errors.append(FieldError(name, ErrorCode.INVALID_VALUE, f"must be one of: {allowed}"))
        elif category not in chosen:
            chosen.append(category)
    return tuple(chosen)


def _brands(reader: FieldReader) -> tuple[str, ...]:
    chosen: dict[str, str] = {}
    for name, item in _list(reader, "brands", MAX_BRANDS):
        if not isinstance(item, str):
            code = ErrorCode.THREAT_DETECTED if isinstance(item, Mapping) else ErrorCode.INVALID_VALUE
            reader.errors.append(FieldError(name, code, "must be a string"))
            continue
        try:
            brand = parse_plain_text(item, MAX_BRAND)
        except RuleViolation as violation:
            reader.errors.append(FieldError(name, violation.code, violation.message))
            continue
        chosen.setdefault(brand.casefold(), brand)  # one brand, however it is spelt
    return tuple(chosen.values())


def parse_store_profile(store_id: str, payload: Any) -> StoreProfile:
    """A profile from an API body; ``store_id`` comes from the path (one in the body is ignored)."""
    if not isinstance(payload, Mapping):
        error = FieldError(None, ErrorCode.INVALID_VALUE, "the body must be a JSON object")
        raise ValidationFailed("the body must be a JSON object", (error,))
    threats = operator_keys(payload)
    if threats:
        raise invalid("the input carries operator keys", tuple(threats))
    reader = FieldReader(payload)
    valid_id = reader.apply("store_id", parse_store_id, store_id)
    name = reader.string("name", lambda raw: parse_plain_text(raw, MAX_NAME))
    currency = reader.string("currency", parse_currency)
    categories = _categories(reader)
    brands = _brands(reader)
    value = payload.get("include_out_of_stock")
    include = False
    if isinstance(value, bool):
        include = value
    elif value is not None:
        reader.fail("include_out_of_stock", ErrorCode.INVALID_VALUE, "must be true or false")
    if reader.errors:
        raise invalid("the store profile is not valid", tuple(reader.errors))
    assert valid_id is not None and name is not None and currency is not None
    return StoreProfile(valid_id, name, currency, categories, brands, include)


def profile_to_dict(profile: StoreProfile) -> dict[str, Any]:
    """The profile as the API shows it (CONTRACT.md 4.5)."""
    return {
        "store_id": profile.store_id,
        "name": profile.name,
        "currency": profile.currency,
        "categories": [c.value for c in profile.categories],
        "brands": list(profile.brands),
        "include_out_of_stock": profile.include_out_of_stock,
    }
