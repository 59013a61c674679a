"""The key registry contract (ADR 0018): the same assertions against the memory twin and MongoDB.

A property then runs random registrations through both and compares them with the retirement
rule: a key is published at ``now`` iff the latest last-seen of its kid plus the retention is after
``now``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.errors import WriteError

from adapters.auth.key_registry import KeyConflict, KeyRegistry, RegisteredKey
from adapters.auth.keys import generate_key
from adapters.memory.signing_keys import MemoryKeyRegistry
from adapters.mongo.client import MongoOptions, create_client
from adapters.mongo.documents import SigningKeyDocument
from adapters.mongo.migrations import migrate
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.signing_keys import MongoKeyRegistry, key_to_bson

#: Later than the real time, so that MongoDB's TTL monitor never drops a record under a test.
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=400)
KEPT = timedelta(hours=24, minutes=5)


def public(alg: str = "ES256") -> dict[str, str]:
    jwk = generate_key(alg).as_dict(private=False)
    return {name: jwk[name] for name in ("kty", "crv", "x", "y") if name in jwk}


def seen(kid: str, jwk: dict[str, str], at: datetime, alg: str = "ES256") -> RegisteredKey:
    return RegisteredKey.seen(kid, alg, jwk, at, KEPT)


@pytest.fixture(params=["memory", "mongo"])
def registry(request: pytest.FixtureRequest) -> KeyRegistry:
    if request.param == "memory":
        return MemoryKeyRegistry()
    catalog: MongoCatalog = request.getfixturevalue("mongo_catalog")  # emptied: signing_keys too
    return MongoKeyRegistry(catalog.database)


async def test_a_registered_key_is_published_until_it_retires(registry: KeyRegistry) -> None:
    jwk = public()
    stored = await registry.register(seen("k1", jwk, T0))
    assert stored == seen("k1", jwk, T0)
    assert stored.retire_at == T0 + KEPT
    assert await registry.active(T0) == [stored]
    assert await registry.active(T0 + KEPT - timedelta(milliseconds=1)) == [stored]
    assert await registry.active(T0 + KEPT) == []


async def test_renewals_only_move_a_key_forward(registry: KeyRegistry) -> None:
    jwk = public()
    await registry.register(seen("k1", jwk, T0))
    later = await registry.register(seen("k1", jwk, T0 + timedelta(minutes=1)))
    assert (later.last_seen, later.retire_at) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=1) + KEPT)
    stale = await registry.register(seen("k1", jwk, T0))  # a slow replica renewing late
    assert stale == later
    assert await registry.active(T0) == [later]


async def test_another_key_under_a_published_kid_is_refused_and_changes_nothing(registry: KeyRegistry) -> None:
    original = await registry.register(seen("k1", public(), T0))
    with pytest.raises(KeyConflict, match="k1"):
        await registry.register(seen("k1", public(), T0 + timedelta(hours=1)))
    with pytest.raises(KeyConflict):
        await registry.register(seen("k1", public("Ed25519"), T0, alg="Ed25519"))
    assert await registry.active(T0) == [original]


async def test_another_key_may_take_the_kid_of_a_retired_one(registry: KeyRegistry) -> None:
    await registry.register(seen("k1", public(), T0))
    newer = seen("k1", public("Ed25519"), T0 + KEPT, alg="Ed25519")
    assert await registry.register(newer) == newer
    assert await registry.active(T0 + KEPT) == [newer]


async def test_active_lists_the_published_keys_by_kid(registry: KeyRegistry) -> None:
    keys = [seen(kid, public(), T0 + timedelta(minutes=minutes)) for kid, minutes in (("b", 2), ("c", 0), ("a", 1))]
    for key in keys:
        await registry.register(key)
    assert [key.kid for key in await registry.active(T0)] == ["a", "b", "c"]
    assert [key.kid for key in await registry.active(T0 + KEPT + timedelta(seconds=90))] == ["b"]
    assert await registry.active(T0 + KEPT + timedelta(minutes=2)) == []


async def test_a_removed_key_is_no_longer_published(registry: KeyRegistry) -> None:
    kept = await registry.register(seen("kept", public(), T0))
    await registry.register(seen("gone", public(), T0))
    assert await registry.remove("gone") is True
    assert await registry.remove("gone") is False
    assert await registry.active(T0) == [kept]


async def test_concurrent_renewals_of_one_shared_key_keep_the_latest(registry: KeyRegistry) -> None:
    """Replicas sharing one keys file renew one record; none of their renewals is lost."""
    jwk = public()
    offsets = list(range(24))
    await asyncio.gather(*(registry.register(seen("shared", jwk, T0 + timedelta(seconds=s))) for s in offsets))
    assert await registry.active(T0) == [seen("shared", jwk, T0 + timedelta(seconds=max(offsets)))]


def test_only_public_members_can_be_registered() -> None:
    private = generate_key().as_dict(private=True)
    with pytest.raises(ValueError, match="only public JWK members"):
        RegisteredKey("k1", "ES256", {k: private[k] for k in ("kty", "crv", "x", "y", "d")}, T0, T0 + KEPT)
    assert "d" not in RegisteredKey.seen("k1", "ES256", private, T0, KEPT).jwk
    with pytest.raises(ValueError, match="aware"):
        RegisteredKey("k1", "ES256", public(), T0.replace(tzinfo=None), T0 + KEPT)
    with pytest.raises(ValueError, match="kid"):
        RegisteredKey("", "ES256", public(), T0, T0 + KEPT)


async def test_the_server_refuses_a_private_member_from_any_writer(mongo_catalog: MongoCatalog) -> None:
    collection = mongo_catalog.database[SigningKeyDocument.Settings.name]
    document = key_to_bson(seen("k1", public(), T0))
    with pytest.raises(WriteError) as refused:
        await collection.insert_one({**document, "d": generate_key().as_dict(private=True)["d"]})
    assert refused.value.code == 121
    assert await collection.count_documents({}) == 0


# -- the property ---------------------------------------------------------------------------------

KIDS = ("a", "b", "c")
_registrations = st.lists(st.tuples(st.sampled_from(KIDS), st.integers(0, 3 * 86_400)), max_size=12)


def _expected(registrations: list[tuple[str, int]], now: datetime) -> dict[str, datetime]:
    latest: dict[str, int] = {}
    for kid, offset in registrations:
        latest[kid] = max(latest.get(kid, offset), offset)
    seen_at = {kid: T0 + timedelta(seconds=offset) for kid, offset in latest.items()}
    return {kid: at for kid, at in seen_at.items() if now < at + KEPT}


@pytest.fixture(scope="module")
def mongo_registry(mongo_url: str) -> Iterator[tuple[asyncio.AbstractEventLoop, Any]]:
    loop = asyncio.new_event_loop()
    client: Any = create_client(mongo_url, MongoOptions(timeout_ms=30_000))
    database = client[f"eyewear_keys_{uuid.uuid4().hex[:8]}"]
    loop.run_until_complete(migrate(database))
    yield loop, database
    loop.run_until_complete(client.drop_database(database.name))
    loop.run_until_complete(client.close())
    loop.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(registrations=_registrations, now_offset=st.integers(0, 5 * 86_400))
def test_a_key_is_published_iff_its_latest_last_seen_plus_the_retention_is_ahead(
    mongo_registry: tuple[asyncio.AbstractEventLoop, Any], registrations: list[tuple[str, int]], now_offset: int
) -> None:
    loop, database = mongo_registry
    material = {kid: public() for kid in KIDS}
    now = T0 + timedelta(seconds=now_offset)

    async def run(registry: KeyRegistry) -> dict[str, datetime]:
        for kid, offset in registrations:
            await registry.register(seen(kid, material[kid], T0 + timedelta(seconds=offset)))
        return {key.kid: key.last_seen for key in await registry.active(now)}

    async def on_mongo() -> dict[str, datetime]:
        await database[SigningKeyDocument.Settings.name].delete_many({})
        return await run(MongoKeyRegistry(database))

    expected = _expected(registrations, now)
    assert loop.run_until_complete(run(MemoryKeyRegistry())) == expected
    assert loop.run_until_complete(on_mongo()) == expected


@given(
    last_seen=st.integers(0, 10**6),
    later=st.integers(0, 10**6),
    now=st.integers(0, 3 * 10**6),
    kept=st.integers(1, 10**6),
)
def test_publishing_is_monotonic_in_last_seen(last_seen: int, later: int, now: int, kept: int) -> None:
    def published(seen_offset: int) -> bool:
        key = RegisteredKey.seen("k", "ES256", {}, T0 + timedelta(seconds=seen_offset), timedelta(seconds=kept))
        return key.published(T0 + timedelta(seconds=now))

    assert published(last_seen) == (now < last_seen + kept)
    if published(last_seen):
        assert published(last_seen + later), "a later last-seen never unpublishes a key"


class _Overtaken:
    """The real collection, with another writer renewing the record right after each read of it."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection

    def __getattr__(self, name: str) -> Any:
        return getattr(self.collection, name)

    async def find_one(self, query: dict[str, Any]) -> Any:
        found = await self.collection.find_one(query)
        await self.collection.update_one(query, {"$set": {"retire_at": found["retire_at"] + timedelta(seconds=1)}})
        return found


async def test_a_registration_that_keeps_losing_races_gives_up(mongo_catalog: MongoCatalog) -> None:
    registry = MongoKeyRegistry(mongo_catalog.database)
    jwk = public()
    await registry.register(seen("busy", jwk, T0))
    registry.collection = _Overtaken(registry.collection)
    with pytest.raises(RuntimeError, match="lost 8 races"):
        await registry.register(seen("busy", jwk, T0 + timedelta(hours=1)))
    stored = await mongo_catalog.database["signing_keys"].find_one({"_id": "busy"})
    assert stored["retire_at"] == T0 + KEPT + timedelta(seconds=8), "only the other writer's renewals"
