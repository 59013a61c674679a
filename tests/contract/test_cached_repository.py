"""What the cache adds to the repository contract: fresh across clients, hits, one load per miss.

The whole contract suite (test_product_repository.py) also runs against the cached adapter; these
tests cover what only a cache can get wrong.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pickle
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.cache import codec
from adapters.cache.backend import PREFIX, CacheStore, CacheUnavailable, token_key
from adapters.cache.cached_repository import CachedCatalog
from adapters.mongo.product_repository import MongoCatalog
from domain.history import record_change
from domain.ports import ProductWrite
from domain.product import Product
from domain.search import SearchFilters, parse_search
from tests.builders import T0, creation, payload, product, variant
from tests.support.cache import CountingCatalog, RecordingMetrics, open_cached

BACKENDS = ["memory", "redis"]


async def cache_url(request: pytest.FixtureRequest, backend: str) -> str | None:
    if backend == "memory":
        return None
    url: str = request.getfixturevalue("redis_url")
    cleaner = CacheStore.open(url, RecordingMetrics())
    await cleaner.cache.delete_match(PREFIX + "*")
    await cleaner.close()
    return url


@pytest.fixture
async def closing() -> AsyncIterator[list[CachedCatalog]]:
    """Cached catalogs a test opened; their cache clients are closed afterwards."""
    opened: list[CachedCatalog] = []
    yield opened
    for cached in opened:
        await cached.store.close()


async def client(closing: list[CachedCatalog], inner: Any, url: str | None, metrics: Any = None) -> CachedCatalog:
    cached = await open_cached(inner, url, metrics)
    closing.append(cached)
    return cached


def renamed(p: Product, name: str, skus: list[str], seconds: int = 1) -> Product:
    draft = product(payload(variants=[variant(sku) for sku in skus], name=name)).draft
    return p.replaced_by(dataclasses.replace(draft, style_id=p.draft.style_id), T0 + timedelta(seconds=seconds))


async def names(catalog: Any, **params: str) -> list[str]:
    return [p.name for p in (await catalog.search(parse_search(params))).items]


async def test_a_write_through_one_redis_client_is_never_stale_through_the_other(
    mongo_catalog: MongoCatalog, request: pytest.FixtureRequest, closing: list[CachedCatalog]
) -> None:
    url = await cache_url(request, "redis")
    a, b = await client(closing, mongo_catalog, url), await client(closing, mongo_catalog, url)
    p = product()
    await a.add(p, creation(p))
    for _ in range(2):  # the second round is served from b's cache
        assert await b.get(p.product_id) == p
        assert await b.get_by_sku("RB3016-BLK-51") == p
        assert await b.get_by_sku("RB3016-NEW-51") is None
        assert await names(b) == ["Clubmaster"]
        assert [(f.value, f.count) for f in (await b.facets(SearchFilters()))["brand"]] == [("Ray-Ban", 1)]

    moved = renamed(p, "Club", ["RB3016-NEW-51"])
    await a.replace(moved, 1, record_change(p, moved, "x", "api"))
    assert await b.get(p.product_id) == moved
    assert await b.get_by_sku("RB3016-BLK-51") is None
    assert await b.get_by_sku("RB3016-NEW-51") == moved
    assert await names(b, q="club") == ["Club"]

    archived = moved.archived(T0 + timedelta(seconds=2))
    await b.replace(archived, 2, record_change(moved, archived, "x", "api"))
    assert await a.get(p.product_id) == archived
    assert await names(a) == []
    assert (await a.facets(SearchFilters()))["brand"] == []
    assert [e.version for e in await a.entries(p.product_id)] == [1, 2, 3]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_second_read_is_a_hit_that_never_reaches_the_repository(
    backend: str, mongo_catalog: MongoCatalog, request: pytest.FixtureRequest, closing: list[CachedCatalog]
) -> None:
    inner, metrics = CountingCatalog(mongo_catalog), RecordingMetrics()
    cached = await client(closing, inner, await cache_url(request, backend), metrics)
    p = product()
    await cached.add(p, creation(p))
    for _ in range(3):
        assert await cached.get(p.product_id) == p
        assert await cached.get_by_sku("RB3016-BLK-51") == p
        assert await cached.get("nope") is None
        assert await names(cached) == ["Clubmaster"]
        await cached.facets(SearchFilters())
    assert inner.reads == {"get": 2, "get_by_sku": 1, "search": 1, "facets": 1}  # a cold SKU warms its product
    assert (metrics.misses, metrics.hits, metrics.errors) == (5, 10, 0)
    updated = renamed(p, "Club", ["RB3016-BLK-51"])
    await cached.replace(updated, 1, record_change(p, updated, "x", "api"))
    assert await cached.get_by_sku("RB3016-BLK-51") == updated  # the pointer leads to the reloaded product
    assert await names(cached) == ["Club"]
    assert inner.reads == {"get": 3, "get_by_sku": 1, "search": 2, "facets": 1}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_concurrent_misses_of_a_cold_key_load_it_once(
    backend: str, mongo_catalog: MongoCatalog, request: pytest.FixtureRequest, closing: list[CachedCatalog]
) -> None:
    """One load per process (single flight); across Redis clients, one load while the lock holds."""
    url = await cache_url(request, backend)
    inner = CountingCatalog(mongo_catalog, delay=0.05)
    clients = [await client(closing, inner, url) for _ in range(1 if url is None else 2)]
    p = product()
    await mongo_catalog.add(p, creation(p))
    results = await asyncio.gather(*(clients[i % len(clients)].get(p.product_id) for i in range(40)))
    pages = await asyncio.gather(*(clients[i % len(clients)].search(parse_search({})) for i in range(40)))
    assert set(results) == {p}
    assert {page.items for page in pages} == {(p,)}
    assert inner.reads == {"get": 1, "search": 1}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_read_that_began_before_a_write_leaves_nothing_stale_behind(
    backend: str, mongo_catalog: MongoCatalog, request: pytest.FixtureRequest, closing: list[CachedCatalog]
) -> None:
    """The race a plain delete-by-tag loses: the slow read fills the cache after the write's delete."""
    url = await cache_url(request, backend)
    reader = await client(closing, CountingCatalog(mongo_catalog, delay=0.2), url)
    writer = CachedCatalog(mongo_catalog, reader.store) if url is None else await client(closing, mongo_catalog, url)
    p = product()
    await writer.add(p, creation(p))
    slow = asyncio.create_task(reader.get(p.product_id))
    await asyncio.sleep(0.05)  # the slow read has read version 1 and now dawdles
    updated = renamed(p, "Club", ["RB3016-BLK-51"])
    await writer.replace(updated, 1, record_change(p, updated, "x", "api"))
    assert await slow == p  # concurrent with the write: either answer is right
    assert await reader.get(p.product_id) == updated
    assert await writer.get(p.product_id) == updated


async def test_a_pickle_planted_in_redis_is_never_unpickled(
    mongo_catalog: MongoCatalog, request: pytest.FixtureRequest, closing: list[CachedCatalog], tmp_path: Path
) -> None:
    metrics = RecordingMetrics()
    cached = await client(closing, mongo_catalog, await cache_url(request, "redis"), metrics)
    p = product()
    await cached.add(p, creation(p))
    assert await cached.get(p.product_id) == p
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> Any:
            return (os.mkdir, (str(marker),))

    await cached.store.cache.set_raw(PREFIX + f"p:{p.product_id}", pickle.dumps(Exploit()))
    assert await cached.get(p.product_id) == p
    assert not marker.exists()
    assert metrics.errors == 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_damaged_entry_is_counted_and_loaded_again(
    backend: str, mongo_catalog: MongoCatalog, request: pytest.FixtureRequest, closing: list[CachedCatalog]
) -> None:
    metrics = RecordingMetrics()
    cached = await client(closing, mongo_catalog, await cache_url(request, backend), metrics)
    p = product()
    await cached.add(p, creation(p))
    assert await cached.get(p.product_id) == p
    found = await cached.store.read(f"p:{p.product_id}", f"product:{p.product_id}")
    assert found is not None
    await cached.store.write(f"p:{p.product_id}", {"t": found[1], "v": {"product_id": "forged"}}, 60)
    assert await cached.get(p.product_id) == p
    assert metrics.errors == 1
    assert await cached.get(p.product_id) == p  # the reload replaced the damaged entry
    assert metrics.errors == 1


async def test_without_a_change_feed_a_private_cache_keeps_entries_briefly(
    mongo_catalog: MongoCatalog, closing: list[CachedCatalog]
) -> None:
    inner = CountingCatalog(mongo_catalog)
    cached = await client(closing, inner, None)
    cached.store.limit_age(0.1)
    p = product()
    await cached.add(p, creation(p))
    assert await cached.get(p.product_id) == await cached.get(p.product_id) == p
    assert inner.reads["get"] == 1
    await asyncio.sleep(0.15)
    assert await cached.get(p.product_id) == p
    assert inner.reads["get"] == 2


async def test_a_suspended_cache_is_bypassed_and_not_ready(
    mongo_catalog: MongoCatalog, closing: list[CachedCatalog]
) -> None:
    inner, metrics = CountingCatalog(mongo_catalog), RecordingMetrics()
    cached = await client(closing, inner, None, metrics)
    p = product()
    await cached.add(p, creation(p))
    assert await cached.get(p.product_id) == p
    cached.store.suspend()
    with pytest.raises(CacheUnavailable):
        await cached.store.ping()
    for _ in range(2):
        assert await cached.get(p.product_id) == p
        assert await cached.get_by_sku("RB3016-BLK-51") == p
    assert (inner.reads["get"], inner.reads["get_by_sku"], metrics.hits + metrics.misses) == (3, 2, 1)
    await cached.store.resume()
    await cached.store.ping()
    assert await cached.get(p.product_id) == await cached.get(p.product_id) == p
    assert inner.reads["get"] == 4  # resuming forgot what was cached before


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_write_deletes_its_tokens_so_old_entries_never_match_and_nothing_is_cached_for_it(
    backend: str, mongo_catalog: MongoCatalog, request: pytest.FixtureRequest, closing: list[CachedCatalog]
) -> None:
    """Invalidating deletes the tokens: a writer fills no cache, and a read mints a new token."""
    cached = await client(closing, mongo_catalog, await cache_url(request, backend))
    p = product()
    await cached.write_batch([ProductWrite(None, p, creation(p))])
    assert [key async for key in cached.store.cache.scan(PREFIX + "*")] == []  # written, nothing cached

    token_of = PREFIX + token_key(f"product:{p.product_id}")
    assert await cached.get(p.product_id) == p
    old = await cached.store.cache.get(token_of)
    assert isinstance(old, str)
    updated = renamed(p, "Club", ["RB3016-BLK-51"])
    await cached.write_batch([ProductWrite(p, updated, record_change(p, updated, "x", "api"))])
    assert await cached.store.cache.get(token_of) is None
    assert await cached.get(p.product_id) == updated
    assert await cached.store.cache.get(token_of) not in (None, old)
    # An entry a slow reader stores under the old token after the write is never served.
    await cached.store.write(f"p:{p.product_id}", {"t": old, "v": codec.optional_product_to_json(p)}, 60)
    assert await cached.get(p.product_id) == updated
