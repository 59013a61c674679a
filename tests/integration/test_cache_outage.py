"""Redis dies mid-test (SIGKILL): reads go on from MongoDB, errors are counted, readiness degrades.

Each test starts its own killable ``redis-server`` (``redis_process``), whatever the environment
gives the other suites.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.cache.backend import MAX_PENDING, PREFIX, RETRY_AFTER
from adapters.mongo.product_repository import MongoCatalog
from domain.history import record_change
from domain.search import SearchFilters, parse_search
from entrypoints.container import Container, resolve
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.builders import T0, creation, payload, product
from tests.support.cache import CountingCatalog, RecordingMetrics, open_cached
from tests.support.servers import redis_process


@pytest.mark.parametrize("invalidations", ["few", "too many to remember"])
async def test_reads_answer_through_an_outage_and_the_cache_returns_without_stale_entries(
    mongo_catalog: MongoCatalog, invalidations: str
) -> None:
    with redis_process() as server:
        inner, metrics = CountingCatalog(mongo_catalog), RecordingMetrics()
        cached = await open_cached(inner, server.url, metrics)
        spy = await open_cached(mongo_catalog, server.url)  # sees Redis as it is, to put it back later
        try:
            p = product()
            await cached.add(p, creation(p))
            key, tag = f"p:{p.product_id}", f"tag:product:{p.product_id}"
            assert await cached.get(p.product_id) == await cached.get(p.product_id) == p
            assert (metrics.misses, metrics.hits) == (1, 1)
            survivors = {k: await spy.store.cache.get_raw(PREFIX + k) for k in (key, tag)}

            server.kill()
            for _ in range(3):
                assert await cached.get(p.product_id) == p
                assert await cached.get_by_sku("RB3016-BLK-51") == p
                assert [x.product_id for x in (await cached.search(parse_search({}))).items] == [p.product_id]
                assert (await cached.facets(SearchFilters()))["brand"][0].count == 1
            assert metrics.errors == 1, "one failed round trip opens the circuit for a second"
            updated = p.replaced_by(dataclasses.replace(product(payload(name="Club")).draft), T0 + timedelta(seconds=1))
            await cached.replace(updated, 1, record_change(p, updated, "x", "api"))  # its invalidation waits
            if invalidations != "few":  # then every cache entry is deleted once Redis is back
                await cached.store.invalidate([f"sku:X-{i}" for i in range(MAX_PENDING)])
            assert await cached.get(p.product_id) == updated

            server.start()
            for name, raw in survivors.items():  # as if the entries had outlived the outage (a partition)
                await spy.store.cache.set_raw(PREFIX + name, raw)
            await asyncio.sleep(RETRY_AFTER + 0.1)
            hits = metrics.hits
            assert await cached.get(p.product_id) == updated  # the waiting invalidation went first
            assert await cached.get(p.product_id) == updated
            assert metrics.hits == hits + 1
            assert await spy.get(p.product_id) == updated
        finally:
            await cached.store.close()
            await spy.store.close()


async def test_readiness_degrades_while_redis_is_down_and_recovers(mongo_url: str, tmp_path: Path) -> None:
    with redis_process() as server:
        settings = Settings(
            mongodb_url=mongo_url,
            mongodb_db=f"eyewear_outage_{uuid.uuid4().hex[:8]}",
            redis_url=server.url,
            data_dir=tmp_path,
        )
        container = Container(settings=settings)
        app = create_app(container)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://catalog.test") as http:
                ready = await http.get("/health/ready")
                assert (ready.status_code, ready.json()) == (
                    200,
                    {"status": "ok", "checks": {"mongodb": "ok", "cache": "ok"}},
                )
                token = container.token_issuer().issue(subject="reader", roles=["viewer"], ttl_seconds=300).token
                http.headers["Authorization"] = f"Bearer {token}"
                catalog: Any = await resolve(container.catalog)
                p = product()
                await catalog.add(p, creation(p))
                assert (await http.get(f"/api/v1/products/{p.product_id}")).status_code == 200  # now cached
                errors_before = _sample((await http.get("/metrics")).text, "eyewear_cache_errors_total")

                server.kill()
                ready = await http.get("/health/ready")
                assert (ready.status_code, ready.json()) == (
                    200,
                    {"status": "degraded", "checks": {"mongodb": "ok", "cache": "error"}},
                )
                # Authenticated reads over HTTP still answer, from MongoDB, with the stored content.
                for path in (f"/api/v1/products/{p.product_id}", "/api/v1/skus/rb3016-blk-51"):
                    response = await http.get(path)
                    assert response.status_code == 200, response.text
                    assert response.json()["product_id"] == p.product_id
                    assert response.headers["ETag"] == '"1"'
                listing = await http.get("/api/v1/products", params={"brand": p.brand})
                assert [item["product_id"] for item in listing.json()["items"]] == [p.product_id]
                assert await catalog.get(p.product_id) == p
                metrics = (await http.get("/metrics")).text
                assert _sample(metrics, "eyewear_cache_errors_total") > errors_before

                server.start()
                ready = await http.get("/health/ready")
                assert ready.json() == {"status": "ok", "checks": {"mongodb": "ok", "cache": "ok"}}
            database = await resolve(container.database)
            await database.client.drop_database(database.name)


def _sample(exposition: str, name: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not exposed")
