"""Random operation sequences on the memory twin (the model) and on MongoDB (the real thing).

Both sides run the same use cases with clocks that tick alike; every answer, error and page must
be identical. State machines are synchronous, so the Mongo side gets its own event loop and client.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from adapters.html.nh3_sanitizer import Nh3Sanitizer
from adapters.memory.catalog import MemoryCatalog
from adapters.memory.clock import FixedClock
from adapters.mongo.client import MongoOptions, create_client
from adapters.mongo.documents import DOCUMENT_MODELS
from adapters.mongo.migrations import migrate
from adapters.mongo.product_repository import MongoCatalog
from application.catalog_commands import ArchiveProduct, CreateProduct, PatchVariant, ReplaceProduct
from domain.errors import DomainError
from domain.identifiers import product_id_for
from domain.search import parse_filters, parse_search
from tests.builders import authorizer, caller, payload, variant

ADMIN = caller("sm")
STYLES = ["A1", "A2", "B1"]
BRANDS = ["Ray-Ban", "Kōdo"]
SKUS = ["SKU-1", "SKU-2", "SKU-3", "SKU-4", "SKU-5", "SKU-6", "SKU-7", "SKU-8"]
NAMES = ["club", "Moon", "Club", "aviator Max"]

variants_st = st.lists(
    st.builds(
        lambda sku, amount, currency, stock, lens: variant(
            sku, amount, currency, stock_quantity=stock, lens_width_mm=lens, gtin=None
        ),
        st.sampled_from(SKUS),
        st.sampled_from(["10.00", "99.99", "150.00", "150.50"]),
        st.sampled_from(["EUR", "USD"]),
        st.integers(0, 2),
        st.sampled_from([48, 52, 58]),
    ),
    min_size=1,
    max_size=2,
)
payloads_st = st.builds(
    lambda style, brand, name, shape, variants: payload(
        style, brand, variants, name=name, frame_shape=shape, tags=[name.split()[0].lower()]
    ),
    st.sampled_from(STYLES),
    st.sampled_from(BRANDS),
    st.sampled_from(NAMES),
    st.sampled_from(["round", "browline", "aviator"]),
    variants_st,
)
FILTER_CHOICES = [
    ("brand", "ray-ban"),
    ("brand", "Kōdo"),
    ("frame_shape", "round"),
    ("frame_shape", "aviator"),
    ("face_shape", "square"),
    ("face_shape", "oval"),
    ("min_price", "50"),
    ("max_price", "150"),
    ("currency", "USD"),
    ("in_stock", "true"),
    ("in_stock", "false"),
    ("size_class", "small"),
    ("size_class", "large"),
    ("q", "club"),
    ("q", "mo"),
    ("q", "sku-2"),
    ("q", "!!"),
]
search_st = st.builds(
    lambda filters, sort, limit: {**dict(filters), **sort, **limit},
    st.lists(st.sampled_from(FILTER_CHOICES), max_size=2),
    st.sampled_from([{}, *({"sort": s} for s in ("name", "-name", "price", "-price", "-updated_at"))]),
    st.sampled_from([{}, {"limit": "1"}, {"limit": "2"}]),
)


def outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except DomainError as error:
        return ("error", type(error).__name__, [(e.field, e.code) for e in error.errors])


class CatalogComparison(RuleBasedStateMachine):
    # Held in a dict: hypothesis inspects class attributes, and a database answers every name.
    shared: ClassVar[dict[str, Any]] = {}

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.shared["loop"]  # type: ignore[no-any-return]

    @property
    def database(self) -> Any:
        return self.shared["database"]

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    @initialize()
    def fresh_catalogs(self) -> None:
        for model in DOCUMENT_MODELS:
            self.run(self.database[model.Settings.name].delete_many({}))
        self.model = MemoryCatalog()
        self.real = MongoCatalog(self.database)
        self.clocks = {id(self.model): FixedClock(), id(self.real): FixedClock()}
        self.ids: set[str] = set()

    def both(self, make: Any) -> Any:
        """Runs the same operation on both sides; returns the agreed outcome."""
        results = []
        for repo in (self.model, self.real):
            results.append(outcome(lambda repo=repo: self.run(make(repo, self.clocks[id(repo)]))))
        assert results[0] == results[1], results
        return results[0]

    @rule(body=payloads_st, fresh=st.booleans(), data=st.data())
    def add(self, body: dict[str, Any], fresh: bool, data: st.DataObject) -> None:
        """Mostly a product id not taken yet (hypothesis would keep drawing the same one)."""
        free = [(b, s) for b in BRANDS for s in STYLES if product_id_for(b, s) not in self.ids]
        if fresh and free:
            brand, style = data.draw(st.sampled_from(free))
            body = {**body, "brand": brand, "style_id": style}
        result = self.both(lambda repo, clock: CreateProduct(repo, clock, Nh3Sanitizer(), authorizer())(body, ADMIN))
        if result[0] == "ok":
            self.ids.add(result[1].product_id)

    @rule(body=payloads_st, stale=st.booleans(), data=st.data())
    def replace(self, body: dict[str, Any], stale: bool, data: st.DataObject) -> None:
        if not self.ids:
            return
        product_id = data.draw(st.sampled_from(sorted(self.ids)))
        current = self.run(self.model.get(product_id))
        body = {**body, "style_id": current.draft.style_id, "brand": current.brand}
        version = current.version - 1 if stale else current.version
        self.both(
            lambda repo, clock: ReplaceProduct(repo, clock, Nh3Sanitizer(), authorizer())(
                product_id, body, version, ADMIN
            )
        )

    @rule(sku=st.sampled_from(SKUS), stock=st.integers(0, 3), amount=st.sampled_from(["5.00", "150.00"]))
    def patch(self, sku: str, stock: int, amount: str) -> None:
        product = self.run(self.model.get_by_sku(sku))
        version = product.version if product else 1
        change = {"stock_quantity": stock, "price": {"amount": amount}}
        self.both(lambda repo, clock: PatchVariant(repo, clock, authorizer())(sku, change, version, ADMIN))

    @rule(data=st.data())
    def archive(self, data: st.DataObject) -> None:
        if self.ids:
            product_id = data.draw(st.sampled_from(sorted(self.ids)))
            self.both(lambda repo, clock: ArchiveProduct(repo, clock, authorizer())(product_id, ADMIN))

    @rule(sku=st.sampled_from([*SKUS, "sku-1 "]))
    def get_by_sku(self, sku: str) -> None:
        self.both(lambda repo, clock: repo.get_by_sku(sku.strip().upper()))

    @rule(params=search_st)
    def search_all_pages(self, params: dict[str, str]) -> None:
        async def pages(repo: Any, clock: Any) -> list[Any]:
            seen: list[Any] = []
            query = dict(params)
            for _ in range(10):
                page = await repo.search(parse_search(query))
                seen.append([p.product_id for p in page.items])
                if page.next_cursor is None:
                    break
                query["cursor"] = page.next_cursor
            return seen

        self.both(pages)

    @rule(params=search_st)
    def facets(self, params: dict[str, str]) -> None:
        params = {k: v for k, v in params.items() if k not in ("sort", "limit")}
        self.both(lambda repo, clock: repo.facets(parse_filters(params)))

    @invariant()
    def same_products_and_history(self) -> None:
        if not hasattr(self, "ids"):
            return
        for product_id in self.ids:
            self.both(lambda repo, clock, product_id=product_id: repo.get(product_id))
            self.both(lambda repo, clock, product_id=product_id: repo.entries(product_id))


def run_machine(mongo_url: str) -> None:
    loop = asyncio.new_event_loop()
    client: Any = create_client(mongo_url, MongoOptions(timeout_ms=30_000))
    database = client[f"eyewear_sm_{uuid.uuid4().hex[:8]}"]
    try:
        loop.run_until_complete(migrate(database))
        CatalogComparison.shared.update(loop=loop, database=database)
        run_state_machine_as_test(
            CatalogComparison,
            settings=settings(
                max_examples=60,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        loop.run_until_complete(client.drop_database(database.name))
        loop.run_until_complete(client.close())
        loop.close()


# In a worker thread with a loop of its own: the session loop keeps running meanwhile, so the
# session's drivers (their monitors, pools) never see a stalled loop.
async def test_memory_and_mongo_agree(mongo_url: str) -> None:
    await asyncio.to_thread(run_machine, mongo_url)
