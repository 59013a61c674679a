"""The cache codec: JSON-safe data that rebuilds the very same domain objects."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from adapters.cache import codec
from domain.product import Product
from domain.search import Cursor, FacetCount, Page, SearchFilters, SearchQuery, SortOrder, parse_filters
from tests.strategies import products


def through_json(data: Any) -> Any:
    """What a Redis round trip does to a value: JSON text and back, nothing else survives."""
    return json.loads(json.dumps(data, allow_nan=False))


@given(products())
def test_every_product_round_trips_through_json(product: Product) -> None:
    restored = codec.product_from_json(through_json(codec.product_to_json(product)))
    assert restored == product
    assert [v.price.amount.as_tuple() for v in restored.variants] == [
        v.price.amount.as_tuple() for v in product.variants
    ]  # the Decimal's exact digits, not just an equal value


@given(st.lists(products(), max_size=3), st.none() | st.text(min_size=1, max_size=20))
def test_pages_round_trip(items: list[Product], cursor: str | None) -> None:
    page = Page(tuple(items), cursor)
    assert codec.page_from_json(through_json(codec.page_to_json(page))) == page


def test_facets_and_missing_products_round_trip() -> None:
    facets = {"brand": [FacetCount("Ray-Ban", 2), FacetCount("Kōdo", 1)], "category": []}
    assert codec.facets_from_json(through_json(codec.facets_to_json(facets))) == facets
    assert codec.optional_product_from_json(through_json(codec.optional_product_to_json(None))) is None


def test_equal_queries_share_a_digest_and_different_ones_do_not() -> None:
    a = parse_filters({"brand": "Ray-Ban", "min_price": "10", "q": "club round"})
    b = parse_filters({"q": "club round", "min_price": "10", "brand": "Ray-Ban"})
    assert codec.filters_digest(a) == codec.filters_digest(b)
    assert codec.filters_digest(a) != codec.filters_digest(parse_filters({"brand": "Ray-Ban", "min_price": "11"}))
    assert codec.filters_digest(SearchFilters(min_price=Decimal("10"))) != codec.filters_digest(
        SearchFilters(max_price=Decimal("10"))
    )
    cursor = Cursor(SortOrder.NAME, "club", "ray-ban-rb3016")
    first, second = SearchQuery(a), SearchQuery(a, cursor=cursor)
    assert codec.query_digest(first) == codec.query_digest(SearchQuery(b))
    assert codec.query_digest(first) != codec.query_digest(second)
    assert codec.query_digest(first) != codec.query_digest(SearchQuery(a, limit=5))
