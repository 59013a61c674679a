"""Random interleavings of reads and writes through cached catalogs agree with the uncached one.

The model is the MongoDB repository read directly; the things under test are cached catalogs
over the same database: two cache clients on one Redis (written through either, read through
both) or one process's memory cache. Every read, through every side, must give the model's
answer, also when a read and a write run at the same time.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from adapters.cache.backend import PREFIX, CacheStore
from adapters.cache.cached_repository import CachedCatalog
from adapters.html.nh3_sanitizer import Nh3Sanitizer
from adapters.memory.clock import FixedClock
from adapters.mongo.client import MongoOptions, create_client
from adapters.mongo.documents import DOCUMENT_MODELS
from adapters.mongo.migrations import migrate
from adapters.mongo.product_repository import MongoCatalog
from application.catalog_commands import ArchiveProduct, CreateProduct, PatchVariant, ReplaceProduct
from application.metrics import NoCacheMetrics
from tests.builders import authorizer
from tests.contract.test_repository_state_machine import ADMIN, SKUS, outcome, payloads_st, search_st

SIDES = st.integers(0, 1)


class CachedAgreesWithUncached(RuleBasedStateMachine):
    shared: ClassVar[dict[str, Any]] = {}

    def run(self, coroutine: Any) -> Any:
        return self.shared["loop"].run_until_complete(coroutine)

    @initialize()
    def fresh(self) -> None:
        database, url = self.shared["database"], self.shared["redis_url"]
        for model in DOCUMENT_MODELS:
            self.run(database[model.Settings.name].delete_many({}))
        self.model = MongoCatalog(database)
        self.stores = [CacheStore.open(url, NoCacheMetrics()) for _ in range(2 if url else 1)]
        if url:
            self.run(self.stores[0].cache.delete_match(PREFIX + "*"))
        self.sides = [CachedCatalog(MongoCatalog(database), store) for store in self.stores]
        self.clock = FixedClock()
        self.ids: set[str] = set()

    def teardown(self) -> None:
        for store in getattr(self, "stores", []):
            self.run(store.close())

    def side(self, index: int) -> CachedCatalog:
        return self.sides[index % len(self.sides)]

    def agree(self, read: Any) -> None:
        """The same read through the model and every cached side gives one answer."""
        expected = outcome(lambda: self.run(read(self.model)))
        for cached in self.sides:
            assert outcome(lambda cached=cached: self.run(read(cached))) == expected

    def write(self, via: int, command: Any) -> Any:
        result = outcome(lambda: self.run(command(self.side(via))))
        if result[0] == "ok":
            self.ids.add(result[1].product_id)
        return result

    @rule(body=payloads_st, via=SIDES)
    def add(self, body: dict[str, Any], via: int) -> None:
        self.write(via, lambda repo: CreateProduct(repo, self.clock, Nh3Sanitizer(), authorizer())(body, ADMIN))

    @precondition(lambda self: self.ids)
    @rule(body=payloads_st, via=SIDES, stale=st.booleans(), data=st.data())
    def replace(self, body: dict[str, Any], via: int, stale: bool, data: st.DataObject) -> None:
        product_id = data.draw(st.sampled_from(sorted(self.ids)))
        current = self.run(self.model.get(product_id))
        body = {**body, "style_id": current.draft.style_id, "brand": current.brand}
        version = current.version - int(stale)
        replace = ReplaceProduct(self.side(via), self.clock, Nh3Sanitizer(), authorizer())
        self.write(via, lambda repo: replace(product_id, body, version, ADMIN))

    @rule(sku=st.sampled_from(SKUS), stock=st.integers(0, 3), via=SIDES)
    def patch(self, sku: str, stock: int, via: int) -> None:
        """Reads the version through the side that writes: a stale cache would lose the race."""
        product = self.run(self.side(via).get_by_sku(sku))
        change = {"stock_quantity": stock}
        version = product.version if product else 1
        self.write(via, lambda repo: PatchVariant(repo, self.clock, authorizer())(sku, change, version, ADMIN))

    @precondition(lambda self: self.ids)
    @rule(via=SIDES, data=st.data())
    def archive(self, via: int, data: st.DataObject) -> None:
        product_id = data.draw(st.sampled_from(sorted(self.ids)))
        self.write(via, lambda repo: ArchiveProduct(repo, self.clock, authorizer())(product_id, ADMIN))

    @precondition(lambda self: self.ids)
    @rule(body=payloads_st, reader=SIDES, writer=SIDES, data=st.data())
    def read_while_writing(self, body: dict[str, Any], reader: int, writer: int, data: st.DataObject) -> None:
        """A read racing a write may answer either version; the reads after it must be fresh."""
        product_id = data.draw(st.sampled_from(sorted(self.ids)))
        current = self.run(self.model.get(product_id))
        body = {**body, "style_id": current.draft.style_id, "brand": current.brand}
        replace = ReplaceProduct(self.side(writer), self.clock, Nh3Sanitizer(), authorizer())

        async def race() -> Any:
            return await asyncio.gather(
                self.side(reader).get(product_id),
                replace(product_id, body, current.version, ADMIN),
                return_exceptions=True,
            )

        self.run(race())
        self.agree(lambda repo: repo.get(product_id))

    @rule(sku=st.sampled_from([*SKUS, "SKU-404"]))
    def get_by_sku(self, sku: str) -> None:
        self.agree(lambda repo: repo.get_by_sku(sku))

    @rule(params=search_st)
    def search(self, params: dict[str, str]) -> None:
        from domain.search import parse_search

        async def pages(repo: Any) -> list[Any]:
            seen, query = [], dict(params)
            for _ in range(10):
                page = await repo.search(parse_search(query))
                seen.append(page.items)
                if page.next_cursor is None:
                    break
                query["cursor"] = page.next_cursor
            return seen

        self.agree(pages)

    @rule(params=search_st)
    def facets(self, params: dict[str, str]) -> None:
        from domain.search import parse_filters

        filters = parse_filters({k: v for k, v in params.items() if k not in ("sort", "limit")})
        self.agree(lambda repo: repo.facets(filters))

    @invariant()
    def every_product_and_sku_reads_alike(self) -> None:
        for product_id in getattr(self, "ids", ()):
            self.agree(lambda repo, product_id=product_id: repo.get(product_id))
        for sku in SKUS if hasattr(self, "ids") else ():
            self.agree(lambda repo, sku=sku: repo.get_by_sku(sku))


def run_machine(mongo_url: str, redis_url: str | None, examples: int) -> None:
    loop = asyncio.new_event_loop()
    client: Any = create_client(mongo_url, MongoOptions(timeout_ms=30_000))
    database = client[f"eyewear_csm_{uuid.uuid4().hex[:8]}"]
    try:
        loop.run_until_complete(migrate(database))
        CachedAgreesWithUncached.shared.update(loop=loop, database=database, redis_url=redis_url)
        run_state_machine_as_test(
            CachedAgreesWithUncached,
            settings=settings(
                max_examples=examples,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        loop.run_until_complete(client.drop_database(database.name))
        loop.run_until_complete(client.close())
        loop.close()


# In a worker thread: the session loop must keep running meanwhile, or the drivers of the session's
# clients miss their heartbeats and interrupt the next test's operations.
async def test_two_redis_clients_agree_with_the_uncached_catalog(mongo_url: str, redis_url: str) -> None:
    await asyncio.to_thread(run_machine, mongo_url, redis_url, 40)


async def test_a_memory_cache_agrees_with_the_uncached_catalog(mongo_url: str) -> None:
    await asyncio.to_thread(run_machine, mongo_url, None, 30)
