"""A memory cache follows writes made elsewhere through the products collection's change stream."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymongo.errors import AutoReconnect, OperationFailure

from adapters.cache.backend import CacheUnavailable
from adapters.cache.cached_repository import CachedCatalog
from adapters.cache.invalidation import MAX_AGE, ChangeFeedInvalidator, change_tags
from adapters.mongo.product_repository import MongoCatalog
from domain.history import record_change
from domain.search import parse_search
from entrypoints.container import Container, resolve
from entrypoints.settings import Settings
from tests.builders import T0, creation, payload, product, variant
from tests.support.cache import CountingCatalog, open_cached


@pytest.fixture
async def watched(mongo_catalog: MongoCatalog) -> AsyncIterator[tuple[CachedCatalog, CountingCatalog, Any]]:
    """A cached catalog whose memory cache follows the change stream of the test database."""
    inner = CountingCatalog(mongo_catalog)
    cached = await open_cached(inner, None)
    watcher = ChangeFeedInvalidator(mongo_catalog.products, cached.store)
    await watcher.start()
    assert watcher.watching
    yield cached, inner, watcher
    await watcher.stop()
    await cached.store.close()


async def until_fresh(read: Any, expected: Any, limit: float = 1.0) -> float:
    started = time.monotonic()
    while (await read()) != expected:
        assert time.monotonic() - started < limit, f"still stale after {limit}s"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def test_a_write_made_elsewhere_shows_within_a_second(
    watched: tuple[CachedCatalog, CountingCatalog, Any], mongo_catalog: MongoCatalog
) -> None:
    cached, inner, _ = watched
    elsewhere = mongo_catalog  # no cache: like `eyewear ingest` in another process
    p = product()
    assert await cached.get(p.product_id) is None
    assert await cached.get_by_sku("RB3016-NEW-51") is None
    assert [x.name for x in (await cached.search(parse_search({}))).items] == []
    await elsewhere.add(p, creation(p))
    await until_fresh(lambda: cached.get(p.product_id), p)
    assert await cached.get_by_sku("RB3016-BLK-51") == p
    reads = inner.reads["get"]
    assert await cached.get(p.product_id) == p and inner.reads["get"] == reads  # cached again

    moved = p.replaced_by(product(payload(variants=[variant("RB3016-NEW-51")], name="Club")).draft, T0)
    await elsewhere.replace(moved, 1, record_change(p, moved, "x", "api"))
    await until_fresh(lambda: cached.get_by_sku("RB3016-NEW-51"), moved)
    assert await cached.get_by_sku("RB3016-BLK-51") is None
    assert await cached.get(p.product_id) == moved
    assert [x.name for x in (await cached.search(parse_search({}))).items] == ["Club"]


async def test_a_dropped_collection_forgets_everything(
    watched: tuple[CachedCatalog, CountingCatalog, Any], mongo_catalog: MongoCatalog
) -> None:
    cached, inner, watcher = watched
    p = product()
    await cached.add(p, creation(p))
    await asyncio.sleep(0.2)  # the stream echoes this process's own write too: let it pass
    assert await cached.get(p.product_id) == await cached.get(p.product_id) == p
    assert inner.reads["get"] == 1
    await watcher.apply({"operationType": "drop"})
    assert await cached.get(p.product_id) == p
    assert inner.reads["get"] == 2


def test_the_tags_of_a_change() -> None:
    assert change_tags(
        {"operationType": "replace", "documentKey": {"_id": "a"}, "fullDocument": {"skus": ["X-1"]}}
    ) == [
        "product:a",
        "catalog",
        "sku:X-1",
    ]
    assert change_tags({"operationType": "delete", "documentKey": {"_id": "a"}}) == ["product:a", "catalog"]
    assert change_tags({"operationType": "invalidate"}) is None


class FakeStream:
    """Answers ``changes`` one by one, then fails with ``error`` (when given) or waits forever."""

    def __init__(self, changes: list[dict[str, Any]], error: Exception | None = None) -> None:
        self.changes, self.error, self.alive = list(changes), error, True

    async def try_next(self) -> dict[str, Any] | None:
        if self.changes:
            return self.changes.pop(0)
        if self.error is not None:
            raise self.error
        await asyncio.sleep(0.01)
        return None

    async def close(self) -> None:
        self.alive = False


class FakeProducts:
    """A products collection whose ``watch`` answers from a script: an error or a stream per call."""

    def __init__(self, *script: Exception | FakeStream) -> None:
        self.script = list(script)
        self.calls = 0

    async def watch(self, **options: Any) -> FakeStream:
        self.calls += 1
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return step


async def test_without_change_streams_entries_live_briefly(mongo_catalog: MongoCatalog) -> None:
    cached = await open_cached(mongo_catalog, None)
    watcher = ChangeFeedInvalidator(FakeProducts(OperationFailure("not a replica set", code=40573)), cached.store)
    await watcher.start()
    try:
        assert cached.store.max_age == MAX_AGE
        await cached.store.ping()  # in use: briefly, but in use
    finally:
        await watcher.stop()
        await cached.store.close()


async def test_the_cache_is_bypassed_until_the_stream_is_back(mongo_catalog: MongoCatalog) -> None:
    inner = CountingCatalog(mongo_catalog)
    cached = await open_cached(inner, None)
    p = product()
    await mongo_catalog.add(p, creation(p))
    lost = FakeStream([{"operationType": "insert", "documentKey": {"_id": "x"}}], error=AutoReconnect("gone"))
    products = FakeProducts(AutoReconnect("down"), lost, FakeStream([]))
    watcher = ChangeFeedInvalidator(products, cached.store)
    await watcher.start()
    try:
        with pytest.raises(CacheUnavailable):
            await cached.store.ping()
        assert await cached.get(p.product_id) == await cached.get(p.product_id) == p
        assert inner.reads["get"] == 2  # bypassed: nothing cached while the stream is down
        deadline = time.monotonic() + 5
        while products.calls < 3 or not watcher.watching:
            assert time.monotonic() < deadline, "the watcher did not come back"
            await asyncio.sleep(0.01)
        await cached.store.ping()
        assert await cached.get(p.product_id) == await cached.get(p.product_id) == p
        assert inner.reads["get"] == 3
    finally:
        await watcher.stop()
        await cached.store.close()
    assert not watcher.watching


@pytest.mark.parametrize("with_redis", [False, True])
async def test_the_container_wires_the_cache_by_configuration(
    mongo_url: str, redis_url: str, tmp_path: Path, with_redis: bool
) -> None:
    """Use cases read through the cache; only a private (memory) cache follows the change stream."""
    settings = Settings(
        mongodb_url=mongo_url,
        mongodb_db=f"cache_wiring_{uuid.uuid4().hex[:8]}",
        redis_url=redis_url if with_redis else None,
        data_dir=tmp_path,
    )
    container = Container(settings=settings)
    await container.init_resources()
    try:
        catalog = await resolve(container.catalog)
        watcher = await resolve(container.cache_invalidation)
        assert isinstance(catalog, CachedCatalog) and isinstance(catalog.inner, MongoCatalog)
        assert catalog.store.shared is with_redis
        assert (watcher is None) if with_redis else watcher.watching
        await catalog.store.ping()
        database = await resolve(container.database)
        await database.client.drop_database(database.name)
    finally:
        await container.shutdown_resources()
    assert with_redis or not watcher.watching
