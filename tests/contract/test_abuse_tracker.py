"""The abuse tracker contract over the in-process and the Redis adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.memory.abuse import MemoryAbuseTracker
from adapters.redis.abuse import RedisAbuseTracker
from adapters.redis.client import create_redis
from domain.abuse import AbusePolicy

POLICY = AbusePolicy(strikes=3, window=timedelta(seconds=60), block=timedelta(seconds=120))


@pytest.fixture(params=["memory", "redis"])
async def tracker(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryAbuseTracker(POLICY)
        return
    client = create_redis(request.getfixturevalue("redis_url"))
    await client.flushdb()
    yield RedisAbuseTracker(client, POLICY)
    await client.aclose()


async def test_the_third_strike_blocks_for_the_policy_time(tracker: Any) -> None:
    now = datetime.now(UTC)
    assert await tracker.strike("sub:eve", now) is None
    assert await tracker.strike("sub:eve", now) is None
    assert await tracker.blocked_until("sub:eve", now) is None
    until = await tracker.strike("sub:eve", now)
    assert until == now + POLICY.block
    assert await tracker.blocked_until("sub:eve", now + timedelta(seconds=1)) == until
    assert await tracker.blocked_until("sub:bob", now) is None
    assert await tracker.blocked_until("sub:eve", until + timedelta(seconds=1)) is None


async def test_strikes_of_one_key_do_not_count_for_another(tracker: Any) -> None:
    now = datetime.now(UTC)
    for key in ("sub:a", "sub:b", "ip:127.0.0.1", "sub:a", "sub:b"):
        assert await tracker.strike(key, now) is None
