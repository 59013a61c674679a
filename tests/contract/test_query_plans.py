"""Every query shape the Mongo repository issues is answered by an index: IXSCAN, never COLLSCAN.

The shapes are not restated here: a command listener records what the repository really sends
while it serves every kind of read and write, and each recorded filter is explained.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from adapters.mongo.audit_log import MongoAuditLog
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.query_plans import explain_aggregate, explain_find
from adapters.mongo.revocations import MongoRevocationList
from domain.audit import AuditDecision, AuditRecord, parse_audit_query
from domain.errors import DomainError
from domain.history import record_change
from domain.search import SortOrder, parse_filters, parse_search
from tests.builders import T0, creation, payload, product, sunglasses, variant

FILTER_SHAPES: list[dict[str, str]] = [
    {},
    {"brand": "Ray-Ban"},
    {"category": "sunglasses"},
    {"frame_shape": "round"},
    {"frame_material": "metal"},
    {"rim_type": "rimless"},
    {"gender": "kids"},
    {"face_shape": "oval"},
    {"size_class": "large"},
    {"min_price": "10", "max_price": "200", "currency": "EUR"},
    {"in_stock": "true"},
    {"q": "club master"},
    {"brand": "Ray-Ban", "frame_shape": "browline", "min_price": "50", "max_price": "300"},
    {"category": "eyeglasses", "gender": "unisex", "in_stock": "false", "q": "frame"},
]


class Recorder(monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("find", "aggregate", "update", "delete"):
            self.commands.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

    def failed(self, event: monitoring.CommandFailedEvent) -> None: ...


@pytest.fixture
async def recorded(mongo_catalog: MongoCatalog, mongo_url: str) -> tuple[MongoCatalog, Recorder]:
    """Drives every repository operation through a client whose commands are recorded."""
    recorder = Recorder()
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


def assert_indexed(stages: list[str], command: dict[str, Any]) -> None:
    assert "COLLSCAN" not in stages, (stages, command)
    assert {"IXSCAN", "IDHACK", "EXPRESS_IXSCAN"} & set(stages), (stages, command)


async def test_every_recorded_query_shape_uses_an_index(recorded: tuple[MongoCatalog, Recorder]) -> None:
    catalog, recorder = recorded
    kinds = {next(iter(c)) for c in recorder.commands}
    assert {"find", "aggregate", "update"} <= kinds
    explained = 0
    for command in recorder.commands:
        name = next(iter(command))
        collection = command[name]
        if name == "find":
            stages = await explain_find(
                catalog.database,
                collection,
                command.get("filter", {}),
                list(command.get("sort", {}).items()) or None,
                command.get("limit"),
            )
        elif name == "aggregate":
            stages = await explain_aggregate(catalog.database, collection, command["pipeline"])
        else:
            for statement in command.get("updates", command.get("deletes", [])):
                stages = await explain_find(catalog.database, collection, statement["q"])
                assert_indexed(stages, command)
            continue
        assert_indexed(stages, command)
        explained += 1
    assert explained >= len(FILTER_SHAPES) * (len(SortOrder) + 1)
