"""The token endpoint's throttle with Redis (ADR 0014): two service processes (two containers, as two
replicas are) share one count, and a Redis outage neither fails the endpoint nor lifts the throttle:
each process counts in its own memory until Redis is back."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from dependency_injector import providers

from adapters.memory.abuse import MemoryAbuseTracker
from adapters.memory.clock import FixedClock
from adapters.redis.abuse import RedisAbuseTracker
from adapters.redis.client import create_redis
from application.authorization import system_caller
from domain.abuse import DEFAULT_CLIENT_AUTH_POLICY
from domain.rbac import Role
from entrypoints.container import Container, resolve
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.oauth_throttle import CountingHasher, assert_throttled, token, wrong
from tests.support.servers import redis_process


@asynccontextmanager
async def replica(settings: Settings, clock: FixedClock, hasher: CountingHasher) -> AsyncIterator[Any]:
    container = Container(settings=settings)
    container.clock.override(providers.Object(clock))
    container.hasher.override(providers.Object(hasher))
    app = create_app(container)
    async with app.router.lifespan_context(app):
        app.state.test_container = container
        yield app


def peer(app: Any, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40_000))
    return httpx.AsyncClient(transport=transport, base_url="http://catalog.test")


async def test_replicas_share_the_throttle_and_an_outage_falls_back_to_each_process(
    mongo_url: str, tmp_path: Path
) -> None:
    clock = FixedClock(start=datetime.now(UTC))
    first_hasher, second_hasher = CountingHasher(), CountingHasher()
    database = f"throttle_redis_{uuid.uuid4().hex[:8]}"
    with redis_process() as redis:

        def settings(name: str) -> Settings:
            return Settings(mongodb_url=mongo_url, mongodb_db=database, redis_url=redis.url, data_dir=tmp_path / name)

        async with AsyncExitStack() as stack:
            first = await stack.enter_async_context(replica(settings("a"), clock, first_hasher))
            second = await stack.enter_async_context(replica(settings("b"), clock, second_hasher))
            register = await resolve(first.state.test_container.register_client)
            done = await register("Replicated", [Role.VIEWER], (), system_caller("tests"))
            client = (done.client.client_id, done.secret)

            on_first = await stack.enter_async_context(peer(first, "198.51.100.50"))
            on_second = await stack.enter_async_context(peer(second, "198.51.100.50"))
            assert [(await token(on_first, wrong(client))).status_code for _ in range(5)] == [401] * 5
            assert_throttled(await token(on_second, client), retry_after=60)
            assert second_hasher.checks == 0, "the other replica checked a secret its peer was blocked for"

            redis.stop()
            started = time.monotonic()
            during = await stack.enter_async_context(peer(second, "198.51.100.51"))
            answers = [await token(during, wrong(client)) for _ in range(6)]
            assert [a.status_code for a in answers] == [401] * 5 + [429], "the outage lifted the throttle"
            elsewhere = await stack.enter_async_context(peer(second, "192.0.2.50"))
            assert (await token(elsewhere, client)).status_code == 200, "the outage failed the endpoint"
            assert time.monotonic() - started < 30
            redis.start()
            assert_throttled(await token(during, client)), "a block set during the outage was lost"
            await (await resolve(first.state.test_container.database)).client.drop_database(database)


async def test_the_fallback_keeps_counting_blocking_and_trusting_through_an_outage() -> None:
    """Port level: while Redis is down every call goes to the memory fallback, and what it learnt
    (a block, a trusted pair) still counts once Redis is back."""
    policy = DEFAULT_CLIENT_AUTH_POLICY.pair
    with redis_process() as redis:
        client = create_redis(redis.url)
        try:
            tracker = RedisAbuseTracker(client, policy, fallback=MemoryAbuseTracker(policy))
            now = datetime.now(UTC)
            redis.stop()
            tips = [await tracker.strike("pair:down", now) for _ in range(policy.strikes)]
            assert tips[-1] == now + policy.block
            await tracker.forgive("pair:good", now)
            assert await tracker.trusted("pair:good", now)
            assert not await tracker.trusted("pair:unknown", now)
            redis.start()
            assert await tracker.blocked_until("pair:down", now) == now + policy.block
            assert await tracker.trusted("pair:good", now)
            await tracker.forgive("pair:down", now)
            assert await tracker.blocked_until("pair:down", now) is None
        finally:
            await client.aclose()
