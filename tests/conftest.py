"""Shared fixtures: REAL servers (SecantusDB and redis-server processes, or given URLs).

A missing server fails the run; nothing here skips.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from adapters.cache.backend import PREFIX, CacheStore
from adapters.cache.cached_repository import CachedCatalog
from adapters.memory.catalog import MemoryCatalog
from adapters.mongo.client import MongoOptions, create_client
from adapters.mongo.documents import DOCUMENT_MODELS
from adapters.mongo.migrations import bind_documents, migrate
from adapters.mongo.product_repository import MongoCatalog
from application.metrics import NoCacheMetrics
from tests.support.servers import mongo_server, redis_server


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    with mongo_server() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


@pytest.fixture(scope="session")
async def mongo_database(mongo_url: str) -> AsyncIterator[Any]:
    client: Any = create_client(mongo_url, MongoOptions(timeout_ms=30_000))
    database = client[f"eyewear_test_{uuid.uuid4().hex[:8]}"]
    await migrate(database)
    await bind_documents(database)
    yield database
    await client.drop_database(database.name)
    await client.close()


async def empty(database: Any) -> None:
    for model in DOCUMENT_MODELS:
        await database[model.Settings.name].delete_many({})


@pytest.fixture
async def mongo_catalog(mongo_database: Any) -> MongoCatalog:
    await empty(mongo_database)
    return MongoCatalog(mongo_database)


@pytest.fixture
async def cached_memory_catalog(mongo_catalog: MongoCatalog) -> AsyncIterator[CachedCatalog]:
    """The cache adapter over MongoDB, with this process's own memory cache (a fresh one)."""
    store = CacheStore.open(None, NoCacheMetrics())
    await store.init()
    yield CachedCatalog(mongo_catalog, store)
    await store.close()


@pytest.fixture
async def cached_redis_catalog(mongo_catalog: MongoCatalog, redis_url: str) -> AsyncIterator[CachedCatalog]:
    """The cache adapter over MongoDB, with the test Redis emptied of cache entries first."""
    store = CacheStore.open(redis_url, NoCacheMetrics())
    await store.init()
    await store.cache.delete_match(PREFIX + "*")
    yield CachedCatalog(mongo_catalog, store)
    await store.close()


CATALOG_FIXTURES = {
    "mongo": "mongo_catalog",
    "cached-memory": "cached_memory_catalog",
    "cached-redis": "cached_redis_catalog",
}


@pytest.fixture(params=["memory", "mongo", "cached-memory", "cached-redis"])
def catalog(request: pytest.FixtureRequest) -> Any:
    """Every adapter of the repository port; the contract suite runs against each."""
    if request.param == "memory":
        return MemoryCatalog()
    return request.getfixturevalue(CATALOG_FIXTURES[request.param])
