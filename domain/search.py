"""Catalog search: the query model, its parsing from query strings, and its pure semantics.

The in-memory adapter evaluates these rules directly; the Mongo adapter translates them to
indexed queries, and the contract tests hold the two to the same answers.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Generic, TypeVar

from domain.enums import Category, FaceShape, FrameMaterial, FrameShape, Gender, RimType, SizeClass
from domain.errors import ErrorCode, FieldError, ValidationFailed, invalid
from domain.fields import FieldReader
from domain.money import parse_currency
from domain.product import Product, Variant
from domain.text import search_terms
from domain.threats import operator_keys

T = TypeVar("T")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_QUERY_LENGTH = 200
FACET_FIELDS = (
    "brand",
    "category",
    "frame_shape",
    "frame_material",
    "rim_type",
    "gender",
    "size_class",
    "face_shape",
)


class SortOrder(StrEnum):
    NAME = "name"
    NAME_DESC = "-name"
    PRICE = "price"
    PRICE_DESC = "-price"
    UPDATED_DESC = "-updated_at"

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")

    @property
    def key(self) -> str:
        return self.value.lstrip("-")


@dataclass(frozen=True, slots=True)
class SearchFilters:
    brand: str | None = None
    category: Category | None = None
    frame_shape: FrameShape | None = None
    frame_material: FrameMaterial | None = None
    rim_type: RimType | None = None
    gender: Gender | None = None
    face_shape: FaceShape | None = None
    size_class: SizeClass | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    currency: str | None = None
    in_stock: bool | None = None
    #: Normalised words of ``q``; ``()`` with ``q_given`` means "matches nothing".
    terms: tuple[str, ...] = ()
    q_given: bool = False

    @property
    def has_variant_criteria(self) -> bool:
        """Price, currency, stock and size apply to one and the same variant."""
        return any(
            value is not None
            for value in (self.min_price, self.max_price, self.currency, self.in_stock, self.size_class)
        )

    def variant_matches(self, variant: Variant) -> bool:
        amount = variant.price.amount
        return (
            (self.min_price is None or amount >= self.min_price)
            and (self.max_price is None or amount <= self.max_price)
            and (self.currency is None or variant.price.currency == self.currency)
            and (self.in_stock is None or variant.in_stock == self.in_stock)
            and (self.size_class is None or variant.size_class == self.size_class)
        )

    def matches(self, product: Product) -> bool:
        """The reference semantics: active products only, every given filter must hold."""
        d = product.draft
        if not product.is_active or (self.q_given and not self.terms):
            return False
        keywords = set(product.keywords)
        return (
            (self.brand is None or d.brand.casefold() == self.brand.casefold())
            and (self.category is None or d.category == self.category)
            and (self.frame_shape is None or d.frame_shape == self.frame_shape)
            and (self.frame_material is None or d.frame_material == self.frame_material)
            and (self.rim_type is None or d.rim_type == self.rim_type)
            and (self.gender is None or d.gender == self.gender)
            and (self.face_shape is None or self.face_shape in product.face_shapes)
            and all(term in keywords for term in self.terms)
            and (not self.has_variant_criteria or any(self.variant_matches(v) for v in product.variants))
        )


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the previous page ended: the sort value and the product id of its last item."""

    sort: SortOrder
    value: str
    product_id: str

    def encode(self) -> str:
        raw = json.dumps({"s": self.sort.value, "v": self.value, "id": self.product_id}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, sort: SortOrder) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            cursor = cls(SortOrder(data["s"]), str(data["v"]), str(data["id"]))
            cursor.typed_value()
        except (ValueError, KeyError, TypeError, binascii.Error, InvalidOperation, UnicodeError, RecursionError):
            raise _invalid("cursor", "is not a cursor this service issued") from None
        if cursor.sort is not sort:
            raise _invalid("cursor", "was issued for another sort order")
        return cursor

    def typed_value(self) -> str | Decimal | datetime:
        return typed_sort_value(self.sort, self.value)


def typed_sort_value(sort: SortOrder, text: str) -> str | Decimal | datetime:
    """The value of the sort key, refusing what no product can hold (NaN, naive times)."""
    if sort.key == "price":
        amount = Decimal(text)
        if not amount.is_finite():
            raise ValueError("a price cursor holds a finite amount")
        return amount
    if sort.key == "updated_at":
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError("a time cursor holds an aware time")
        return moment
    return text


def sort_value(product: Product, sort: SortOrder) -> str | Decimal | datetime:
    if sort.key == "price":
        return product.price_min
    if sort.key == "updated_at":
        return product.updated_at
    return product.name_key


def cursor_after(product: Product, sort: SortOrder) -> Cursor:
    value = sort_value(product, sort)
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return Cursor(sort, text, product.product_id)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    filters: SearchFilters = field(default_factory=SearchFilters)
    sort: SortOrder = SortOrder.NAME
    limit: int = DEFAULT_LIMIT
    cursor: Cursor | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True, order=True)
class FacetCount:
    value: str
    count: int


Facets = dict[str, list[FacetCount]]


def facet_values(product: Product) -> dict[str, tuple[str, ...]]:
    """The values a product counts under, once each, per facet."""
    d = product.draft
    return {
        "brand": (d.brand,),
        "category": (d.category.value,),
        "frame_shape": (d.frame_shape.value,),
        "frame_material": (d.frame_material.value,),
        "rim_type": (d.rim_type.value,),
        "gender": (d.gender.value,),
        "size_class": tuple(s.value for s in product.size_classes),
        "face_shape": tuple(s.value for s in product.face_shapes),
    }


def sorted_facet(counts: Mapping[str, int]) -> list[FacetCount]:
    """Count descending, then value: the order the contract fixes."""
    return [FacetCount(v, n) for v, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])) if n > 0]


def _invalid(name: str, message: str, code: str = ErrorCode.INVALID_VALUE) -> ValidationFailed:
    return ValidationFailed(f"{name} {message}", (FieldError(name, code, message),))


def _decimal(reader: FieldReader, key: str) -> Decimal | None:
    raw = reader.raw(key, required=False)
    if raw is None:
        return None
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        reader.fail(key, ErrorCode.INVALID_VALUE, "must be a decimal number of 0 or more")
        return None
    return value


def parse_filters(params: Mapping[str, Any], reader: FieldReader | None = None) -> SearchFilters:
    """Filters from a query string; unknown parameters are ignored, bad values reported."""
    reader = reader or FieldReader(params)
    threats = operator_keys(dict(params))
    if threats:
        reader.errors.extend(threats)
    brand = reader.string("brand", lambda s: s.strip() or None, required=False)
    q = reader.string("q", lambda s: s, required=False)
    if q is not None and len(q) > MAX_QUERY_LENGTH:
        reader.fail("q", ErrorCode.OUT_OF_RANGE, f"is at most {MAX_QUERY_LENGTH} characters")
    currency = reader.string("currency", parse_currency, required=False)
    filters = SearchFilters(
        brand=brand,
        category=reader.choice("category", Category, required=False),
        frame_shape=reader.choice("frame_shape", FrameShape, required=False),
        frame_material=reader.choice("frame_material", FrameMaterial, required=False),
        rim_type=reader.choice("rim_type", RimType, required=False),
        gender=reader.choice("gender", Gender, required=False),
        face_shape=reader.choice("face_shape", FaceShape, required=False),
        size_class=reader.choice("size_class", SizeClass, required=False),
        min_price=_decimal(reader, "min_price"),
        max_price=_decimal(reader, "max_price"),
        currency=currency,
        in_stock=reader.boolean("in_stock"),
        terms=tuple(dict.fromkeys(search_terms(q)))[:20] if q else (),
        q_given=q is not None and q != "",
    )
    if reader.errors:
        raise invalid("the search parameters are not valid", tuple(reader.errors))
    return filters


def parse_search(params: Mapping[str, Any]) -> SearchQuery:
    reader = FieldReader(params)
    sort = reader.choice("sort", SortOrder, required=False) or SortOrder.NAME
    limit = reader.integer("limit", (1, MAX_LIMIT), required=False) or DEFAULT_LIMIT
    filters = parse_filters(params, reader)
    token = params.get("cursor")
    cursor = Cursor.decode(token, sort) if isinstance(token, str) and token else None
    return SearchQuery(filters=filters, sort=sort, limit=limit, cursor=cursor)
