"""The bench's world: the server (configured, or the embedded default), scratch databases that are
dropped afterwards whatever happens, and one container wired to them.

The scratch databases are dropped by synchronous code outside the event loop, after it ends, so
a failure or a Ctrl-C anywhere in the measurements still leaves the server as it was. On Redis
the cache keys of the bench live in another logical database of the same server: the catalog's
cache keys are not per MongoDB database, and a bench product may share its id with a real one.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from pymongo import AsyncMongoClient, MongoClient

from adapters.cache.backend import PREFIX
from adapters.embedded import EmbeddedMongo
from adapters.mongo.migrations import migrate
from application.authorization import Caller
from domain.rbac import Principal, Role
from entrypoints.container import Container, UseCases, resolve
from entrypoints.settings import Settings

#: The logical Redis database the bench uses, unless the configured URL already names it.
BENCH_REDIS_DB = 15


@dataclass
class Scratch:
    """The server's URL and every database the bench made there (all dropped at the end)."""

    url: str
    base: str
    embedded: bool
    #: The bench's own logical database of the configured Redis, if any.
    redis_url: str | None = None
    names: list[str] = field(default_factory=list)

    def database(self, label: str = "") -> str:
        name = f"{self.base}_{label}" if label else self.base
        if name not in self.names:
            self.names.append(name)
        return name


def scratch_base(configured_db: str) -> str:
    """Unique, recognisable, and within MongoDB's and the settings' 63 characters."""
    return f"{configured_db[:30]}_bench_{uuid.uuid4().hex[:12]}"


def bench_redis_url(url: str | None) -> str | None:
    """The same Redis server, another logical database (see the module docstring)."""
    if not url:
        return None
    parts = urlsplit(url)
    current = parts.path.strip("/") or "0"
    db = BENCH_REDIS_DB if current != str(BENCH_REDIS_DB) else BENCH_REDIS_DB - 1
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


@contextlib.contextmanager
def server_and_scratch(settings: Settings) -> Iterator[Scratch]:
    """The configured server or the embedded one; drops the scratch databases on the way out."""
    embedded = None
    url = settings.mongodb_url
    if not url:
        embedded = EmbeddedMongo(settings.data_dir)
        url = embedded.start()
    scratch = Scratch(
        url,
        scratch_base(settings.mongodb_db),
        embedded=embedded is not None,
        redis_url=bench_redis_url(settings.redis_url),
    )
    scratch.database()
    try:
        if scratch.redis_url:
            forget_cache_keys(scratch.redis_url)  # whatever a bench that was killed left there
        yield scratch
    finally:
        try:
            drop_scratch(scratch)
        finally:
            try:
                if scratch.redis_url:
                    forget_cache_keys(scratch.redis_url)
            finally:
                if embedded is not None:
                    embedded.stop()


def drop_scratch(scratch: Scratch) -> None:
    drop_databases(scratch.url, scratch.names)


def forget_cache_keys(redis_url: str) -> None:
    """The cache entries and tag tokens the bench (and its ingestion processes) left in its Redis database."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=PREFIX + "*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def drop_databases(url: str, names: list[str]) -> None:
    client: Any = MongoClient(url, serverSelectionTimeoutMS=10_000)
    try:
        for name in names:
            client.drop_database(name)
    finally:
        client.close()


def bench_caller() -> Caller:
    """A reader as the API sees one: the viewer role, nothing more (every read is still audited)."""
    return Caller(Principal(subject="bench-reader", roles=frozenset({Role.VIEWER})), "bench", "127.0.0.1")


@dataclass
class Session:
    """One container over the scratch database, plus a bare driver client for the baselines."""

    settings: Settings
    scratch: Scratch
    container: Container
    cases: UseCases
    database: Any
    raw: Any
    workdir: Path
    caller: Caller = field(default_factory=bench_caller)

    async def get(self, provider_name: str) -> Any:
        return await resolve(getattr(self.container, provider_name))


def scratch_settings(settings: Settings, scratch: Scratch) -> Settings:
    return settings.model_copy(
        update={
            "mongodb_url": scratch.url,
            "mongodb_db": scratch.database(),
            "redis_url": scratch.redis_url,
        }
    )


#: The client-side limit of each operation in the bench's ingestion processes, at least. The run's
#: verification reads its change log sorted; SecantusDB materialises the whole result before the
#: first batch (~0.4 ms per product), so 44 000 products (200 000 rows) need ~19 s, past the
#: default 10 s: see docs/performance.md, "Found on the way".
CHILD_TIMEOUT_MS = 300_000


def child_environment(settings: Settings, database: str) -> dict[str, str]:
    """What a child ``eyewear`` process needs to work on one scratch database of the same server."""
    env = dict(os.environ)  # the operator's other EYEWEAR_* settings (pool sizes…) apply there too
    env.update(
        EYEWEAR_MONGODB_URL=str(settings.mongodb_url),
        EYEWEAR_MONGODB_DB=database,
        EYEWEAR_DATA_DIR=str(settings.data_dir),
        EYEWEAR_LOG_LEVEL="WARNING",
        EYEWEAR_MONGODB_TIMEOUT_MS=str(max(settings.mongodb_timeout_ms, CHILD_TIMEOUT_MS)),
    )
    env.pop("EYEWEAR_REDIS_URL", None)
    if settings.redis_url:
        env["EYEWEAR_REDIS_URL"] = settings.redis_url
    return env


@contextlib.asynccontextmanager
async def open_session(settings: Settings, scratch: Scratch, workdir: Path) -> AsyncIterator[Session]:
    # The results are named for their audit sink: the container's is the journal (the default);
    # ``read.sku.cached.audit_database`` builds the database sink beside it.
    bench_settings = scratch_settings(settings, scratch).model_copy(update={"audit_sink": "journal"})
    container = Container(settings=bench_settings)
    raw_client: Any = AsyncMongoClient(scratch.url)
    await container.init_resources()  # type: ignore[misc]
    try:
        database = await resolve(container.database)
        await migrate(database)
        yield Session(
            settings=bench_settings,
            scratch=scratch,
            container=container,
            cases=await resolve(container.use_cases),
            database=database,
            raw=raw_client[database.name],
            workdir=workdir,
        )
    finally:
        await container.shutdown_resources()  # type: ignore[misc]
        await raw_client.close()
