"""Laws of the escalating abuse tracker, for any sequence of strikes, forgivenesses and waits, checked
on the memory adapter and the Redis adapter side by side (which must also agree on every answer):

- no block ever lasts longer than the policy's cap, counted from the strike that started it;
- a forgiveness always wipes the key: not blocked, in good standing, and its next block is a first one;
- blocks are monotonic in failures: while the key's past blocks are remembered, each block that a
  strike starts lasts at least as long as the one before it;
- and ``block_length`` itself never exceeds the cap and never shrinks as the level grows.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.memory.abuse import MemoryAbuseTracker
from adapters.redis.abuse import RedisAbuseTracker
from adapters.redis.client import create_redis
from domain.abuse import DEFAULT_CLIENT_AUTH_POLICY, AbusePolicy, block_length

POLICY = AbusePolicy(
    strikes=2,
    window=timedelta(seconds=30),
    block=timedelta(seconds=10),
    max_block=timedelta(seconds=45),
    growth=2,
    memory=timedelta(seconds=120),
    trust=timedelta(seconds=60),
)
WAITS_MS = (0, 1, 999, 5_000, 10_000, 29_999, 30_000, 45_000, 130_000)

operations = st.lists(
    st.tuples(
        st.sampled_from(("strike", "strike", "strike", "forgive", "check")),
        st.sampled_from("ab"),
        st.sampled_from(WAITS_MS),
    ),
    min_size=1,
    max_size=40,
)


@given(
    policy=st.builds(
        AbusePolicy,
        strikes=st.integers(1, 10),
        block=st.integers(1, 10**6).map(lambda s: timedelta(seconds=s)),
        growth=st.integers(1, 4),
        max_block=st.none() | st.integers(10**6, 10**8).map(lambda s: timedelta(seconds=s)),
    ),
    level=st.integers(0, 10**4),
)
def test_block_length_is_capped_and_grows_with_the_level(policy: AbusePolicy, level: int) -> None:
    length = block_length(policy, level)
    assert policy.block <= length <= policy.cap
    assert block_length(policy, level + 1) >= length
    for named in (DEFAULT_CLIENT_AUTH_POLICY.pair, DEFAULT_CLIENT_AUTH_POLICY.peer, DEFAULT_CLIENT_AUTH_POLICY.client):
        assert block_length(named, level) <= named.cap


def test_the_laws_hold_and_both_adapters_agree(redis_url: str) -> None:
    loop = asyncio.new_event_loop()
    client: Any = loop.run_until_complete(_connect(redis_url))

    @given(steps=operations)
    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    def check(steps: list[tuple[str, str, int]]) -> None:
        loop.run_until_complete(_run(client, steps))

    try:
        check()
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


async def _connect(url: str) -> Any:
    return create_redis(url)


async def _run(client: Any, steps: list[tuple[str, str, int]]) -> None:
    memory, shared = MemoryAbuseTracker(POLICY), RedisAbuseTracker(client, POLICY)
    prefix = uuid.uuid4().hex  # this example's own keys: nothing left over from another one
    now = datetime.now(UTC)
    last_block: dict[str, tuple[datetime, timedelta]] = {}  # key -> (end, length) of its latest block
    for action, name, wait_ms in steps:
        now += timedelta(milliseconds=wait_ms)
        key = f"{prefix}:{name}"
        if action == "strike":
            ends = await memory.strike(key, now)
            assert await shared.strike(key, now) == ends
            if ends is not None:
                length = ends - now
                assert length <= POLICY.cap
                previous = last_block.get(key)
                if previous is not None and now < previous[0] + POLICY.memory:
                    assert length >= previous[1], "a later block was shorter"
                last_block[key] = (ends, length)
        elif action == "forgive":
            await memory.forgive(key, now)
            await shared.forgive(key, now)
            last_block.pop(key, None)
            for tracker in (memory, shared):
                assert await tracker.blocked_until(key, now) is None
                assert await tracker.trusted(key, now)
            first = [await memory.strike(key, now) for _ in range(POLICY.strikes)]
            assert [await shared.strike(key, now) for _ in range(POLICY.strikes)] == first
            assert first[-1] == now + POLICY.block, "a forgiven key's next block was not a first one"
            last_block[key] = (now + POLICY.block, POLICY.block)
        until = await memory.blocked_until(key, now)
        assert await shared.blocked_until(key, now) == until
        assert await shared.trusted(key, now) == await memory.trusted(key, now)
        if until is not None:
            assert until - now <= POLICY.cap
