"""The OAuth client and refresh-token store contracts, against every adapter of each port.

The MongoDB half also explains every command its adapter sends (as test_query_plans.py does for the
catalog): each must be answered by an index.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.errors import WriteError

from adapters.memory.clients import MemoryClientStore, MemoryRefreshTokenStore
from adapters.mongo.clients import MongoClientStore, MongoRefreshTokenStore, refresh_to_bson
from adapters.mongo.documents import RefreshTokenDocument
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.query_plans import explain_find
from domain.clients import (
    ClientAlreadyExists,
    OAuthClient,
    RefreshTokenRecord,
    refresh_token_hash,
)
from domain.rbac import Role

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(params=["memory", "mongo"])
def stores(request: pytest.FixtureRequest) -> tuple[Any, Any]:
    if request.param == "memory":
        return MemoryClientStore(), MemoryRefreshTokenStore()
    catalog: MongoCatalog = request.getfixturevalue("mongo_catalog")  # empties the database
    return MongoClientStore(catalog.database), MongoRefreshTokenStore(catalog.database)


def a_client(client_id: str = "shop-sync-1a2b3c", **changes: Any) -> OAuthClient:
    client = OAuthClient(
        client_id=client_id,
        name="Shop sync",
        secret_hash="scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        roles=frozenset({Role.EDITOR, Role.INGESTOR}),
        brands=frozenset({"Ray-Ban", "Oakley"}),
        created_at=T0,
    )
    return dataclasses.replace(client, **changes)


def a_token(token: str, family: str = "family-1", **changes: Any) -> RefreshTokenRecord:
    record = RefreshTokenRecord(
        token_hash=refresh_token_hash(token),
        family_id=family,
        client_id="shop-sync-1a2b3c",
        subject="shop-sync-1a2b3c",
        roles=frozenset({Role.VIEWER}),
        brands=frozenset(),
        issued_at=T0,
        expires_at=T0 + timedelta(days=30),
        access_token_id=f"jti-{token}",
        access_expires_at=T0 + timedelta(minutes=15),
    )
    return dataclasses.replace(record, **changes)


async def test_a_client_comes_back_as_stored(stores: tuple[Any, Any]) -> None:
    clients, _ = stores
    client = a_client()
    await clients.add(client)
    assert await clients.get(client.client_id) == client
    assert await clients.get("someone-else") is None
    disabled = a_client("other-9f9f9f", disabled=True, brands=frozenset())
    await clients.add(disabled)
    assert await clients.get("other-9f9f9f") == disabled


async def test_a_client_id_is_taken_once(stores: tuple[Any, Any]) -> None:
    clients, _ = stores
    await clients.add(a_client())
    with pytest.raises(ClientAlreadyExists):
        await clients.add(a_client(name="Impostor"))
    assert (await clients.get(a_client().client_id)).name == "Shop sync"


async def test_a_refresh_token_is_found_by_its_hash_only(stores: tuple[Any, Any]) -> None:
    _, tokens = stores
    record = a_token("t1")
    await tokens.add(record)
    assert await tokens.get(record.token_hash) == record
    assert await tokens.get("t1") is None
    assert await tokens.get(refresh_token_hash("t2")) is None


async def test_use_marks_used_once(stores: tuple[Any, Any]) -> None:
    _, tokens = stores
    record = a_token("t1")
    await tokens.add(record)
    first = await tokens.use(record.token_hash)
    assert first is not None and first.first_use and first.record == dataclasses.replace(record, used=True)
    again = await tokens.use(record.token_hash)
    assert again is not None and not again.first_use and again.record.used
    assert await tokens.use(refresh_token_hash("unknown")) is None
    assert (await tokens.get(record.token_hash)).used


async def test_concurrent_uses_of_one_token_let_exactly_one_through(stores: tuple[Any, Any]) -> None:
    _, tokens = stores
    for round_ in range(5):
        record = a_token(f"race-{round_}")
        await tokens.add(record)
        outcomes = await asyncio.gather(*(tokens.use(record.token_hash) for _ in range(8)))
        assert sum(1 for o in outcomes if o is not None and o.first_use) == 1


async def test_revoking_a_family_revokes_every_member_and_no_other(stores: tuple[Any, Any]) -> None:
    _, tokens = stores
    members = [a_token(f"m{i}", used=i < 2) for i in range(3)]
    stranger = a_token("s", family="family-2")
    for record in [*members, stranger]:
        await tokens.add(record)
    assert not await tokens.family_revoked("family-1")
    revoked = await tokens.revoke_family("family-1")
    assert sorted(r.access_token_id for r in revoked) == ["jti-m0", "jti-m1", "jti-m2"]
    assert all(r.revoked for r in revoked)
    assert await tokens.family_revoked("family-1")
    assert not await tokens.family_revoked("family-2")
    assert not (await tokens.get(stranger.token_hash)).revoked
    assert len(await tokens.revoke_family("family-1")) == 3  # idempotent
    assert await tokens.revoke_family("no-such-family") == []


async def test_a_member_stored_after_the_revocation_still_belongs_to_a_revoked_family(
    stores: tuple[Any, Any],
) -> None:
    """What makes a refresh that races a revocation safe: the family's state outlives the race."""
    _, tokens = stores
    await tokens.add(a_token("old"))
    await tokens.revoke_family("family-1")
    late = a_token("late")
    await tokens.add(late)
    assert not (await tokens.get(late.token_hash)).revoked
    assert await tokens.family_revoked("family-1")


class Recorder(monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("find", "update", "findAndModify", "delete"):
            self.commands.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

    def failed(self, event: monitoring.CommandFailedEvent) -> None: ...


def filters_of(command: dict[str, Any]) -> list[dict[str, Any]]:
    name = next(iter(command))
    if name == "find":
        return [command.get("filter", {})]
    if name == "findAndModify":
        return [command["query"]]
    return [statement["q"] for statement in command.get("updates", command.get("deletes", []))]


async def test_every_query_the_mongo_stores_send_uses_an_index(mongo_catalog: MongoCatalog, mongo_url: str) -> None:
    recorder = Recorder()
    client: Any = AsyncMongoClient(mongo_url, tz_aware=True, event_listeners=[recorder])
    database = client[mongo_catalog.database.name]
    clients, tokens = MongoClientStore(database), MongoRefreshTokenStore(database)
    await clients.add(a_client())
    await clients.get(a_client().client_id)
    for i in range(3):
        await tokens.add(a_token(f"p{i}", family=f"f{i % 2}"))
    await tokens.get(refresh_token_hash("p0"))
    await tokens.use(refresh_token_hash("p0"))
    await tokens.use(refresh_token_hash("p0"))
    await tokens.family_revoked("f0")
    await tokens.revoke_family("f0")
    await tokens.family_revoked("f0")
    await client.close()
    kinds = {next(iter(c)) for c in recorder.commands}
    assert {"find", "update", "findAndModify"} <= kinds
    for command in recorder.commands:
        for query in filters_of(command):
            stages = await explain_find(mongo_catalog.database, command[next(iter(command))], query)
            assert "COLLSCAN" not in stages, (stages, command)
            assert {"IXSCAN", "IDHACK", "EXPRESS_IXSCAN"} & set(stages), (stages, command)


async def test_the_validator_refuses_a_refresh_token_stored_in_clear(mongo_catalog: MongoCatalog) -> None:
    raw = refresh_to_bson(a_token("t1"))
    raw["_id"] = f"plain-{uuid.uuid4().hex}"  # not a SHA-256 hex digest
    with pytest.raises(WriteError) as caught:
        await mongo_catalog.database[RefreshTokenDocument.Settings.name].insert_one(raw)
    assert caught.value.code == 121
