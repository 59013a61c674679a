"""The product repository contract: the same assertions against every adapter of the port."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.enums import FrameShape
from domain.errors import ErrorCode, ProductConflict, ProductNotFound, VersionMismatch
from domain.history import record_change
from domain.search import SearchFilters, SearchQuery, SortOrder, parse_filters, parse_search
from tests.builders import T0, creation, payload, product, sunglasses, variant


async def test_add_then_get_by_id_and_by_sku(catalog: Any) -> None:
    p = product()
    await catalog.add(p, creation(p))
    assert await catalog.get(p.product_id) == p
    assert await catalog.get_by_sku("RB3016-BLK-51") == p
    assert await catalog.get("nope") is None
    assert await catalog.get_by_sku("NOPE-1") is None


async def test_the_creation_is_the_first_history_entry(catalog: Any) -> None:
    p = product()
    await catalog.add(p, creation(p, actor="alice"))
    (entry,) = await catalog.entries(p.product_id)
    assert (entry.version, entry.actor, entry.source) == (1, "alice", "api")
    assert entry.changes["name"] == {"from": None, "to": "Clubmaster"}
    assert await catalog.entries("nope") == []


async def test_add_refuses_an_existing_product(catalog: Any) -> None:
    p = product()
    await catalog.add(p, creation(p))
    with pytest.raises(ProductConflict) as caught:
        await catalog.add(p, creation(p))
    assert caught.value.errors[0].code == ErrorCode.PRODUCT_EXISTS
    assert len(await catalog.entries(p.product_id)) == 1


async def test_a_sku_belongs_to_one_product(catalog: Any) -> None:
    first = product()
    await catalog.add(first, creation(first))
    thief = product(payload("OTHER1", variants=[variant("RB3016-BLK-51")]))
    with pytest.raises(ProductConflict) as caught:
        await catalog.add(thief, creation(thief))
    assert caught.value.errors[0].code == ErrorCode.SKU_CONFLICT
    assert "ray-ban-rb3016" in caught.value.message
    assert await catalog.get(thief.product_id) is None
    assert await catalog.entries(thief.product_id) == []


async def test_a_gtin_belongs_to_one_sku(catalog: Any) -> None:
    first = product(payload(variants=[variant("RB3016-BLK-51", gtin="08053672000016")]))
    await catalog.add(first, creation(first))
    other = product(payload("OTHER1", variants=[variant("OTHER1-A", gtin="8053672000016")]))
    with pytest.raises(ProductConflict) as caught:
        await catalog.add(other, creation(other))
    assert caught.value.errors[0].code == ErrorCode.GTIN_CONFLICT
    # Products without GTINs never collide with each other.
    a = product(payload("NOGTIN1", variants=[variant("NOGTIN1-A")]))
    b = product(payload("NOGTIN2", variants=[variant("NOGTIN2-A")]))
    await catalog.add(a, creation(a))
    await catalog.add(b, creation(b))


async def test_replace_is_conditional_on_the_version(catalog: Any) -> None:
    p = product()
    await catalog.add(p, creation(p))
    renamed = p.replaced_by(dataclasses.replace(p.draft, name="Club"), T0 + timedelta(seconds=1))
    await catalog.replace(renamed, 1, record_change(p, renamed, "bob", "api"))
    assert await catalog.get(p.product_id) == renamed
    stale = p.replaced_by(dataclasses.replace(p.draft, name="Lost"), T0 + timedelta(seconds=2))
    with pytest.raises(VersionMismatch) as caught:
        await catalog.replace(stale, 1, record_change(p, stale, "eve", "api"))
    assert caught.value.actual == 2
    assert (await catalog.get(p.product_id)).name == "Club"
    assert [e.version for e in await catalog.entries(p.product_id)] == [1, 2]
    assert (await catalog.entries(p.product_id))[1].changes == {"name": {"from": "Clubmaster", "to": "Club"}}


async def test_replace_of_a_missing_product(catalog: Any) -> None:
    p = product()
    with pytest.raises(ProductNotFound):
        await catalog.replace(p.archived(T0), 1, creation(p))


async def test_replace_moves_skus_and_refuses_foreign_ones(catalog: Any) -> None:
    a = product()
    b = product(payload("OTHER1", variants=[variant("OTHER1-A")]))
    await catalog.add(a, creation(a))
    await catalog.add(b, creation(b))
    moved = a.replaced_by(product(payload(variants=[variant("RB3016-NEW-51")])).draft, T0)
    await catalog.replace(moved, 1, record_change(a, moved, "x", "api"))
    assert await catalog.get_by_sku("RB3016-BLK-51") is None
    assert (await catalog.get_by_sku("RB3016-NEW-51")).product_id == a.product_id
    grab = moved.replaced_by(product(payload(variants=[variant("OTHER1-A")])).draft, T0)
    with pytest.raises(ProductConflict):
        await catalog.replace(grab, 2, record_change(moved, grab, "x", "api"))
    assert (await catalog.get_by_sku("OTHER1-A")).product_id == b.product_id
    assert (await catalog.get(a.product_id)).version == 2


async def test_a_sku_read_before_it_moves_is_found_where_it_went(catalog: Any) -> None:
    """Reads first, so that a cached catalog holds (and remembers) the SKU's old pointer."""
    a = product()
    b = product(payload("OTHER1", variants=[variant("OTHER1-A")]))
    await catalog.add(a, creation(a))
    await catalog.add(b, creation(b))
    for _ in range(2):  # a miss, then a hit that follows the pointer
        assert (await catalog.get_by_sku("RB3016-BLK-51")).product_id == a.product_id
    without = a.replaced_by(product(payload(variants=[variant("RB3016-NEW-51")])).draft, T0)
    await catalog.replace(without, 1, record_change(a, without, "x", "api"))
    assert await catalog.get_by_sku("RB3016-BLK-51") is None
    taken = b.replaced_by(
        product(payload("OTHER1", variants=[variant("OTHER1-A"), variant("RB3016-BLK-51")])).draft, T0
    )
    await catalog.replace(taken, 1, record_change(b, taken, "x", "api"))
    assert (await catalog.get_by_sku("RB3016-BLK-51")).product_id == b.product_id
    assert (await catalog.get_by_sku("RB3016-BLK-51")).product_id == b.product_id


async def _seed(catalog: Any) -> dict[str, Any]:
    items = {
        "club": product(payload()),
        "wayfarer": product(sunglasses()),
        "round": product(
            payload(
                "R1",
                "Kōdo",
                [variant("R1-A", "80.00", "USD", stock_quantity=0), variant("R1-B", "95.50", "USD", lens_width_mm=56)],
                name="Moon",
                frame_shape="round",
                tags=["light", "kids-fit"],
            ),
            T0 + timedelta(seconds=5),
        ),
        "archived": product(payload("OLD1", variants=[variant("OLD1-A")], name="Aardvark")).archived(T0),
    }
    for p in items.values():
        await catalog.add(p, creation(p))
    return items


async def _ids(catalog: Any, **params: str) -> list[str]:
    page = await catalog.search(parse_search(params))
    return [p.product_id for p in page.items]


async def test_search_filters_combine_and_exclude_archived(catalog: Any) -> None:
    await _seed(catalog)
    assert await _ids(catalog) == ["ray-ban-rb3016", "kodo-r1", "ray-ban-rb2140"]
    assert await _ids(catalog, brand="ray-ban") == ["ray-ban-rb3016", "ray-ban-rb2140"]
    assert await _ids(catalog, category="sunglasses") == ["ray-ban-rb2140"]
    assert await _ids(catalog, face_shape="square") == ["kodo-r1"]
    assert await _ids(catalog, size_class="large") == ["kodo-r1"]
    assert await _ids(catalog, brand="Ray-Ban", frame_shape="round") == []
    assert await _ids(catalog, gender="unisex", rim_type="full-rim", frame_material="acetate") == [
        "ray-ban-rb3016",
        "kodo-r1",
        "ray-ban-rb2140",
    ]


async def test_price_stock_and_size_apply_to_the_same_variant(catalog: Any) -> None:
    await _seed(catalog)
    assert await _ids(catalog, min_price="80", max_price="80") == ["kodo-r1"]
    assert await _ids(catalog, max_price="100", currency="EUR") == []
    assert await _ids(catalog, max_price="100", currency="USD") == ["kodo-r1"]
    # The in-stock USD variant is 95.50; the 80.00 one is out of stock.
    assert await _ids(catalog, max_price="90", in_stock="true") == []
    assert await _ids(catalog, max_price="90", in_stock="false") == ["kodo-r1"]
    assert await _ids(catalog, size_class="large", max_price="90") == []


async def test_q_matches_words_and_prefixes_as_plain_text(catalog: Any) -> None:
    await _seed(catalog)
    assert await _ids(catalog, q="club") == ["ray-ban-rb3016"]
    assert await _ids(catalog, q="KODO moon") == ["kodo-r1"]
    assert await _ids(catalog, q="rb2140-g15") == ["ray-ban-rb2140"]
    assert await _ids(catalog, q="kids") == ["kodo-r1"]
    assert await _ids(catalog, q=".*") == []
    assert await _ids(catalog, q='{"$gt": ""}') == []
    assert await _ids(catalog, q="black") == ["ray-ban-rb3016", "kodo-r1", "ray-ban-rb2140"]
    assert await _ids(catalog, q="2140") == ["ray-ban-rb2140"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["ray-ban-rb3016", "kodo-r1", "ray-ban-rb2140"]),
        ("-name", ["ray-ban-rb2140", "kodo-r1", "ray-ban-rb3016"]),
        ("price", ["kodo-r1", "ray-ban-rb2140", "ray-ban-rb3016"]),
        ("-price", ["ray-ban-rb3016", "ray-ban-rb2140", "kodo-r1"]),
        ("-updated_at", ["kodo-r1", "ray-ban-rb3016", "ray-ban-rb2140"]),
    ],
)
async def test_sort_orders(catalog: Any, sort: str, expected: list[str]) -> None:
    await _seed(catalog)
    assert await _ids(catalog, sort=sort) == expected


@pytest.mark.parametrize("sort", [s.value for s in SortOrder])
async def test_cursor_pages_cover_everything_once(catalog: Any, sort: str) -> None:
    for i in range(7):
        p = product(payload(f"S{i}", variants=[variant(f"S{i}-A", f"{100 + i % 3}.00")], name=f"N{i % 2}"))
        await catalog.add(p, creation(p))
    seen: list[str] = []
    params: dict[str, str] = {"sort": sort, "limit": "3"}
    pages = 0
    while True:
        page = await catalog.search(parse_search(params))
        seen += [p.product_id for p in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        params["cursor"] = page.next_cursor
    assert pages == 3
    assert sorted(seen) == sorted(f"ray-ban-s{i}" for i in range(7))
    assert seen == [p.product_id for p in (await catalog.search(SearchQuery(sort=SortOrder(sort), limit=50))).items]


async def test_cursor_is_stable_when_products_change_between_pages(catalog: Any) -> None:
    for i in range(6):
        p = product(payload(f"S{i}", variants=[variant(f"S{i}-A")], name=f"Name {i}"))
        await catalog.add(p, creation(p))
    first = await catalog.search(parse_search({"limit": "3"}))
    late = product(payload("S00", variants=[variant("S00-A")], name="Name 0a"))
    await catalog.add(late, creation(late))
    second = await catalog.search(parse_search({"limit": "3", "cursor": first.next_cursor}))
    assert [p.name for p in first.items] == ["Name 0", "Name 1", "Name 2"]
    assert [p.name for p in second.items] == ["Name 3", "Name 4", "Name 5"]


async def test_facets_count_products_once_per_value(catalog: Any) -> None:
    await _seed(catalog)
    facets = await catalog.facets(SearchFilters())
    as_pairs = {name: [(f.value, f.count) for f in values] for name, values in facets.items()}
    assert as_pairs["brand"] == [("Ray-Ban", 2), ("Kōdo", 1)]
    assert as_pairs["category"] == [("eyeglasses", 2), ("sunglasses", 1)]
    assert as_pairs["size_class"] == [("medium", 2), ("large", 1), ("small", 1)]
    assert ("oval", 3) in as_pairs["face_shape"]
    assert as_pairs["frame_shape"] == [("browline", 1), ("round", 1), ("wayfarer", 1)]
    filtered = await catalog.facets(parse_filters({"brand": "Ray-Ban"}))
    assert [(f.value, f.count) for f in filtered["brand"]] == [("Ray-Ban", 2)]
    assert await catalog.facets(parse_filters({"q": "!!!"})) == {name: [] for name in facets}


async def test_facets_and_search_agree(catalog: Any) -> None:
    await _seed(catalog)
    for shape in FrameShape:
        filters = SearchFilters(frame_shape=shape)
        page = await catalog.search(SearchQuery(filters=filters, limit=100))
        facets = await catalog.facets(SearchFilters())
        counted = {f.value: f.count for f in facets["frame_shape"]}
        assert counted.get(shape.value, 0) == len(page.items)


async def test_prices_keep_their_decimals(catalog: Any) -> None:
    p = product(payload(variants=[variant("RB3016-A", "0.10"), variant("RB3016-B", "99999.99")]))
    await catalog.add(p, creation(p))
    stored = await catalog.get(p.product_id)
    assert [v.price.amount for v in stored.variants] == [Decimal("0.10"), Decimal("99999.99")]
