"""Every query shape the Mongo repository issues is answered by an index: IXSCAN, never COLLSCAN.

The shapes are not restated here: the QueryPlanAnalyzer (the one ``eyewear migrate --check``
uses) records what the repository really sends while it serves every kind of read and write,
and each recorded shape is explained.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from adapters.auth.key_ring import KeyRing
from adapters.auth.keys import SigningKeys
from adapters.mongo.audit_log import MongoAuditLog
from adapters.mongo.ingestion_plan_workload import drive_ingestion
from adapters.mongo.plan_check import copy_indexes
from adapters.mongo.plan_workload import FILTER_SHAPES, drive_repositories
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.query_analyzer import PlanEntry, QueryPlanAnalyzer
from adapters.mongo.revocations import MongoRevocationList
from adapters.mongo.signing_keys import MongoKeyRegistry, drive_signing_keys
from domain.audit import AuditDecision, AuditRecord, parse_audit_query
from domain.errors import DomainError
from domain.history import record_change
from domain.search import SortOrder, parse_filters, parse_search
from tests.builders import T0, creation, payload, product, sunglasses, variant


@pytest.fixture
async def recorded(mongo_catalog: MongoCatalog, mongo_url: str) -> tuple[MongoCatalog, QueryPlanAnalyzer]:
    """Drives every repository operation through a client whose commands are recorded."""
    recorder = QueryPlanAnalyzer()
    client: Any = AsyncMongoClient(mongo_url, tz_aware=True, event_listeners=[recorder])
    repo = MongoCatalog(client[mongo_catalog.database.name])
    items = [
        product(payload(f"S{i}", variants=[variant(f"S{i}-A", f"{50 + i}.00")], name=f"Frame {i}")) for i in range(30)
    ]
    items.append(product(sunglasses(variants=[variant("RB2140-A", gtin="08053672000016", lens_category=3)])))
    for p in items:
        await repo.add(p, creation(p))
    renamed = items[0].replaced_by(dataclasses.replace(items[0].draft, name="Renamed"), T0)
    await repo.replace(renamed, 1, record_change(items[0], renamed, "x", "api"))
    for failing in (repo.add(items[1], creation(items[1])), repo.replace(renamed, 1, creation(renamed))):
        with pytest.raises(DomainError):
            await failing
    thief = product(payload("THIEF", variants=[variant("S2-A", gtin="8053672000016")]))
    with pytest.raises(DomainError):
        await repo.add(thief, creation(thief))
    await repo.get("ray-ban-s1")
    await repo.get_by_sku("S1-A")
    await repo.entries("ray-ban-s1")
    for params in FILTER_SHAPES:
        await repo.facets(parse_filters(params))
        for sort in SortOrder:
            page = await repo.search(parse_search({**params, "sort": sort.value, "limit": "2"}))
            if page.next_cursor:
                await repo.search(
                    parse_search({**params, "sort": sort.value, "limit": "2", "cursor": page.next_cursor})
                )
    audit = MongoAuditLog(client[mongo_catalog.database.name])
    revocations = MongoRevocationList(client[mongo_catalog.database.name])
    for i in range(5):
        await audit.append(
            AuditRecord(
                f"r{i}",
                T0,
                f"u{i % 2}",
                ("viewer",),
                "product:read",
                "products",
                AuditDecision.ALLOW if i % 2 else AuditDecision.DENY,
                "x",
                "c",
                None,
            )
        )
    for params in (
        {},
        {"actor": "u1"},
        {"action": "product:read"},
        {"decision": "deny"},
        {"actor": "u1", "decision": "allow"},
    ):
        page = await audit.query(parse_audit_query({**params, "limit": "1"}))
        await audit.query(parse_audit_query({**params, "limit": "1", "cursor": page.next_cursor or ""}))
    await revocations.revoke("jti-1", T0)
    await revocations.is_revoked("jti-1")
    await client.close()
    return mongo_catalog, recorder


def assert_indexed(entry: PlanEntry) -> None:
    assert "COLLSCAN" not in entry.stages, entry.describe()
    assert {"IXSCAN", "IDHACK", "EXPRESS_IXSCAN"} & set(entry.stages), entry.describe()
    assert entry.uses_index


async def test_every_recorded_query_shape_uses_an_index(recorded: tuple[MongoCatalog, QueryPlanAnalyzer]) -> None:
    catalog, recorder = recorded
    kinds = {next(iter(c)) for c in recorder.commands}
    assert {"find", "aggregate", "update"} <= kinds
    report = await recorder.analyze(catalog.database)
    for entry in report.entries:
        assert_indexed(entry)
    assert not report.offending
    explained = sum(1 for entry in report.entries if entry.command in ("find", "aggregate"))
    assert explained >= len(FILTER_SHAPES) * (len(SortOrder) + 1)


async def test_the_migrate_check_workload_sends_every_shape_this_test_records(
    recorded: tuple[MongoCatalog, QueryPlanAnalyzer], mongo_url: str
) -> None:
    """``eyewear migrate --check`` runs its own workload: it must not miss a shape the code sends."""
    catalog, recorder = recorded
    checker = QueryPlanAnalyzer()
    client: Any = AsyncMongoClient(mongo_url, tz_aware=True, event_listeners=[checker])
    scratch = client[f"{catalog.database.name}_drift"]
    try:
        await copy_indexes(client[catalog.database.name], scratch)
        await drive_repositories(scratch)
    finally:
        await client.drop_database(scratch.name)
        await client.close()

    def shapes(analyzer: QueryPlanAnalyzer) -> set[tuple[str, str, str]]:
        return {(q.collection, q.command, q.shape) for q in analyzer.queries()}

    assert shapes(recorder) <= shapes(checker), shapes(recorder) - shapes(checker)


async def test_every_batch_and_run_query_uses_an_index(mongo_catalog: MongoCatalog, mongo_url: str) -> None:
    """The ingestion adapters' shapes (batch reads and writes, run history, runs, error pages)."""
    recorder = QueryPlanAnalyzer()
    client: Any = AsyncMongoClient(mongo_url, tz_aware=True, event_listeners=[recorder])
    try:
        await drive_ingestion(client[mongo_catalog.database.name])
    finally:
        await client.close()
    report = await recorder.analyze(mongo_catalog.database)
    assert {"products", "product_history", "ingestion_runs", "ingestion_errors"} <= report.collections
    for entry in report.entries:
        assert_indexed(entry)
    shapes = {(entry.collection, entry.command, entry.shape) for entry in report.entries}
    newest = '{"filter": {"kind": "?"}, "sort": {"created_at": -1, "_id": -1}}'
    next_errors = '{"filter": {"run_id": "?", "seq": {"$gt": "?"}}, "sort": {"seq": 1}}'
    assert {("ingestion_runs", "find", newest), ("ingestion_errors", "find", next_errors)} <= shapes
    assert sum(1 for collection, command, _ in shapes if (collection, command) == ("product_history", "find")) >= 3


async def test_every_signing_key_registry_query_uses_an_index(mongo_catalog: MongoCatalog, mongo_url: str) -> None:
    """The key registry's shapes (ADR 0018) as real key rings send them (registrations, renewals,
    lookups), each answered by an index, and all of them in the ``eyewear migrate --check`` workload."""
    recorder, checker = QueryPlanAnalyzer(), QueryPlanAnalyzer()
    client: Any = AsyncMongoClient(mongo_url, tz_aware=True, event_listeners=[recorder])
    checking: Any = AsyncMongoClient(mongo_url, tz_aware=True, event_listeners=[checker])
    scratch = checking[f"{mongo_catalog.database.name}_keys"]
    try:
        registry = MongoKeyRegistry(client[mongo_catalog.database.name])
        ring, other = KeyRing(SigningKeys.generate(), registry), KeyRing(SigningKeys.generate(), registry)
        await ring.start()
        await other.register()
        await ring.register()  # a renewal
        assert await ring.lookup(other.signing_kid) is not None
        assert await ring.lookup("made-up") is None
        await registry.remove(other.signing_kid)
        await ring.stop()
        await copy_indexes(mongo_catalog.database, scratch)
        await drive_signing_keys(scratch)
    finally:
        await checking.drop_database(scratch.name)
        await client.close()
        await checking.close()
    report = await recorder.analyze(mongo_catalog.database)
    assert report.collections == {"signing_keys"}
    for entry in report.entries:
        assert_indexed(entry)
    shapes = {(entry.collection, entry.command, entry.shape) for entry in report.entries}
    assert ("signing_keys", "find", '{"filter": {"retire_at": {"$gt": "?"}}}') in shapes
    assert ("signing_keys", "update", '{"filter": {"_id": "?", "retire_at": "?"}}') in shapes
    checked = {(q.collection, q.command, q.shape) for q in checker.queries()}
    assert shapes <= checked, shapes - checked
