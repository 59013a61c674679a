"""The revocation list contract: the same assertions against every adapter of the port.

Every adapter takes a clock callable and treats an id as revoked while ``clock() < expires_at``,
whatever its storage does on its own (Redis key expiry, MongoDB's TTL monitor, which runs only once
a minute): storage expiry bounds the memory, the clock decides. The fixture hands each adapter the
same hand-driven clock, started at the real time so that storage-side expiries stay in the future.

To run the suite against another adapter, add its name to ``ADAPTERS`` and provide a fixture
``<name>_revocation_list(revocation_clock)`` (in tests/conftest.py next to the server fixtures).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory.revocations import MemoryRevocationList
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.revocation_mirror import RevocationMirror
from adapters.mongo.revocations import MongoRevocationList
from adapters.redis.client import create_redis
from adapters.redis.revocations import RedisRevocationList
from domain.audit import RevocationList

ADAPTERS = ["memory", "mongo", "mirrored", "redis", "redis_over_mongo"]


class ManualClock:
    def __init__(self) -> None:
        now = datetime.now(UTC)
        self.current = now.replace(microsecond=now.microsecond // 1000 * 1000)  # what every store keeps

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def revocation_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def memory_revocation_list(revocation_clock: ManualClock) -> RevocationList:
    return MemoryRevocationList(clock=revocation_clock)


@pytest.fixture
def mongo_revocation_list(revocation_clock: ManualClock, mongo_catalog: MongoCatalog) -> RevocationList:
    return MongoRevocationList(mongo_catalog.database, clock=revocation_clock)


@pytest.fixture
async def mirrored_revocation_list(
    revocation_clock: ManualClock, mongo_catalog: MongoCatalog
) -> AsyncIterator[RevocationList]:
    """MongoDB answered from this process's change-stream mirror, which must stay live throughout:
    every check of the suite is then answered from memory, none falls through to MongoDB."""
    mirror = RevocationMirror.on(mongo_catalog.database, clock=revocation_clock)
    await mirror.start()
    assert mirror.live
    yield MongoRevocationList(mongo_catalog.database, clock=revocation_clock, mirror=mirror)
    assert mirror.live
    await mirror.stop()


@pytest.fixture
async def redis_revocation_list(revocation_clock: ManualClock, redis_url: str) -> AsyncIterator[RevocationList]:
    client = create_redis(redis_url)
    await client.flushdb()
    yield RedisRevocationList(client, clock=revocation_clock)
    await client.aclose()


@pytest.fixture
async def redis_over_mongo_revocation_list(
    revocation_clock: ManualClock, redis_url: str, mongo_catalog: MongoCatalog
) -> AsyncIterator[RevocationList]:
    """The container's arrangement with Redis: Redis first, MongoDB behind it for misses and outages."""
    client = create_redis(redis_url)
    await client.flushdb()
    durable = MongoRevocationList(mongo_catalog.database, clock=revocation_clock)
    yield RedisRevocationList(client, clock=revocation_clock, fallback=durable)
    await client.aclose()


@pytest.fixture(params=ADAPTERS)
def revocation_list(request: pytest.FixtureRequest) -> RevocationList:
    revocations: RevocationList = request.getfixturevalue(f"{request.param}_revocation_list")
    return revocations


async def test_revoke_then_is_revoked(revocation_list: RevocationList, revocation_clock: ManualClock) -> None:
    await revocation_list.revoke("jti-1", revocation_clock() + timedelta(minutes=15))
    assert await revocation_list.is_revoked("jti-1")


async def test_an_unknown_id_is_not_revoked(revocation_list: RevocationList, revocation_clock: ManualClock) -> None:
    assert not await revocation_list.is_revoked("never-seen")
    await revocation_list.revoke("jti-1", revocation_clock() + timedelta(minutes=15))
    assert not await revocation_list.is_revoked("jti-2")
    assert not await revocation_list.is_revoked("JTI-1")


async def test_expiry_forgets(revocation_list: RevocationList, revocation_clock: ManualClock) -> None:
    await revocation_list.revoke("short", revocation_clock() + timedelta(seconds=60))
    await revocation_list.revoke("long", revocation_clock() + timedelta(seconds=600))
    revocation_clock.advance(seconds=59)
    assert await revocation_list.is_revoked("short")
    revocation_clock.advance(seconds=2)
    assert not await revocation_list.is_revoked("short")
    assert await revocation_list.is_revoked("long")
    revocation_clock.advance(seconds=600)
    assert not await revocation_list.is_revoked("long")


async def test_an_expiry_already_past_revokes_nothing(
    revocation_list: RevocationList, revocation_clock: ManualClock
) -> None:
    await revocation_list.revoke("stale", revocation_clock() - timedelta(seconds=1))
    assert not await revocation_list.is_revoked("stale")


async def test_revoking_twice_is_harmless(revocation_list: RevocationList, revocation_clock: ManualClock) -> None:
    expires_at = revocation_clock() + timedelta(minutes=15)
    await revocation_list.revoke("jti-1", expires_at)
    await revocation_list.revoke("jti-1", expires_at)
    assert await revocation_list.is_revoked("jti-1")
    revocation_clock.advance(minutes=16)
    assert not await revocation_list.is_revoked("jti-1")


async def test_revoked_until_names_the_expiry(revocation_list: RevocationList, revocation_clock: ManualClock) -> None:
    """The expiry itself comes back (what lets one store copy a revocation into another)."""
    expires_at = revocation_clock() + timedelta(minutes=15)
    assert await revocation_list.revoked_until("jti-1") is None
    await revocation_list.revoke("jti-1", expires_at)
    assert await revocation_list.revoked_until("jti-1") == expires_at
    revocation_clock.advance(minutes=15)
    assert await revocation_list.revoked_until("jti-1") is None
