"""Every query the store adapters send is answered by an index, and ``migrate --check`` sends them all."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

from adapters.mongo.plan_check import copy_indexes
from adapters.mongo.plan_workload import drive_repositories
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.query_analyzer import QueryPlanAnalyzer
from adapters.mongo.store_plan_workload import STORE_SHAPES, drive_stores
from tests.builders import creation, payload, product, sunglasses, variant


async def _recorded(mongo_url: str, source: Any, suffix: str, workload: Any) -> tuple[set[Any], Any]:
    analyzer = QueryPlanAnalyzer()
    client: Any = AsyncMongoClient(mongo_url, tz_aware=True, event_listeners=[analyzer])
    scratch = client[f"{source.name}_{suffix}"]
    try:
        await copy_indexes(client[source.name], scratch)
        await workload(scratch)
        report = await analyzer.analyze(scratch)
    finally:
        await client.drop_database(scratch.name)
        await client.close()
    return {(q.collection, q.command, q.shape) for q in analyzer.queries()}, report


async def _stores_with_products(database: Any) -> None:
    repo = MongoCatalog(database)
    for item in (
        product(payload(variants=[variant("RB3016-A"), variant("RB3016-B", "9.00", "USD", stock_quantity=0)])),
        product(sunglasses()),
        product(payload("OX1", "Oakley", [variant("OX1-A", "80.00")], frame_shape="round")),
    ):
        await repo.add(item, creation(item))
    await drive_stores(database)


async def test_every_store_query_shape_uses_an_index(mongo_url: str, mongo_database: Any) -> None:
    _, report = await _recorded(mongo_url, mongo_database, "stores", _stores_with_products)
    store_entries = [e for e in report.entries if e.collection == "stores" or e.command == "aggregate"]
    aggregates = [e for e in store_entries if e.command == "aggregate"]
    assert len(aggregates) >= len(STORE_SHAPES)  # several profiles share a shape; each kind of driver is here
    assert {e.collection for e in store_entries} == {"stores", "products"}
    for entry in store_entries:
        assert entry.uses_index, entry.describe()
    assert any("$facet" in e.shape for e in aggregates)
    assert any("$sortArray" in e.shape and "$facet" not in e.shape for e in aggregates)


async def test_the_migrate_check_workload_sends_the_store_shapes(mongo_url: str, mongo_database: Any) -> None:
    mine, _ = await _recorded(mongo_url, mongo_database, "stores_only", _stores_with_products)
    checked, report = await _recorded(mongo_url, mongo_database, "stores_check", drive_repositories)
    assert mine <= checked, mine - checked
    assert not report.offending, [e.describe() for e in report.offending]
