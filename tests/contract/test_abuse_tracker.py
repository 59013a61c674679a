"""The abuse tracker contract over the in-process and the Redis adapter (same assertions for both)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.memory.abuse import MemoryAbuseTracker
from adapters.redis.abuse import RedisAbuseTracker
from adapters.redis.client import create_redis
from domain.abuse import AbusePolicy, AbuseTracker

POLICY = AbusePolicy(strikes=3, window=timedelta(seconds=60), block=timedelta(seconds=120))
#: The token endpoint's shape: growing blocks, a cap, a memory of past blocks, trust after a success.
ESCALATING = AbusePolicy(
    strikes=3,
    window=timedelta(seconds=60),
    block=timedelta(seconds=10),
    max_block=timedelta(seconds=40),
    memory=timedelta(minutes=5),
    trust=timedelta(hours=1),
)


@pytest.fixture(params=["memory", "redis"])
async def make_tracker(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """``make_tracker(policy)``: a tracker of the adapter under test; Redis ones share one client."""
    client = create_redis(request.getfixturevalue("redis_url")) if request.param == "redis" else None
    if client is not None:
        await client.flushdb()

    def make(policy: AbusePolicy) -> AbuseTracker:
        return MemoryAbuseTracker(policy) if client is None else RedisAbuseTracker(client, policy)

    yield make
    if client is not None:
        await client.aclose()


@pytest.fixture
def tracker(make_tracker: Any) -> AbuseTracker:
    tracker: AbuseTracker = make_tracker(POLICY)
    return tracker


async def tip(tracker: AbuseTracker, key: str, now: datetime) -> datetime | None:
    """As many strikes as the policy needs at ``now``; the last one's answer."""
    answers = [await tracker.strike(key, now) for _ in range(tracker.policy.strikes)]
    assert all(a is None for a in answers[:-1])
    return answers[-1]


async def test_the_third_strike_blocks_for_the_policy_time(tracker: AbuseTracker) -> None:
    now = datetime.now(UTC)
    assert await tracker.strike("sub:eve", now) is None
    assert await tracker.strike("sub:eve", now) is None
    assert await tracker.blocked_until("sub:eve", now) is None
    until = await tracker.strike("sub:eve", now)
    assert until == now + POLICY.block
    assert await tracker.blocked_until("sub:eve", now + timedelta(seconds=1)) == until
    assert await tracker.blocked_until("sub:bob", now) is None
    assert await tracker.blocked_until("sub:eve", until + timedelta(seconds=1)) is None


async def test_strikes_of_one_key_do_not_count_for_another(tracker: AbuseTracker) -> None:
    now = datetime.now(UTC)
    for key in ("sub:a", "sub:b", "ip:127.0.0.1", "sub:a", "sub:b"):
        assert await tracker.strike(key, now) is None
    assert await tracker.blocked_until("sub:a", now) is None


async def test_the_window_slides_with_the_given_time(tracker: AbuseTracker) -> None:
    now = datetime.now(UTC)
    await tracker.strike("sub:w", now)
    await tracker.strike("sub:w", now + timedelta(seconds=30))
    assert await tracker.strike("sub:w", now + timedelta(seconds=60)) is None  # the first one left the window
    assert await tracker.strike("sub:w", now + timedelta(seconds=61)) == now + timedelta(seconds=181)


async def test_a_fixed_policy_never_grows(tracker: AbuseTracker) -> None:
    now = datetime.now(UTC)
    for _ in range(4):
        until = await tip(tracker, "sub:f", now)
        assert until == now + POLICY.block
        now = until


async def test_blocks_grow_while_remembered_and_stop_at_the_cap(make_tracker: Any) -> None:
    tracker = make_tracker(ESCALATING)
    now = datetime.now(UTC)
    lengths = []
    for _ in range(5):
        until = await tip(tracker, "pair:x", now)
        assert until is not None
        lengths.append((until - now).total_seconds())
        now = until + timedelta(seconds=1)
    assert lengths == [10, 20, 40, 40, 40]
    later = now + ESCALATING.memory
    assert await tip(tracker, "pair:x", later) == later + ESCALATING.block, "the escalation was not forgotten"


async def test_a_strike_while_blocked_never_shortens_the_block(make_tracker: Any) -> None:
    tracker = make_tracker(ESCALATING)
    now = datetime.now(UTC)
    first = await tip(tracker, "pair:y", now)
    second = await tip(tracker, "pair:y", now + timedelta(seconds=1))  # other processes' in-flight checks
    assert first == now + timedelta(seconds=10)
    assert second == now + timedelta(seconds=21)
    assert await tracker.blocked_until("pair:y", now + timedelta(seconds=15)) == second


async def test_forgive_wipes_strikes_block_and_escalation_and_trusts_the_key(make_tracker: Any) -> None:
    tracker = make_tracker(ESCALATING)
    now = datetime.now(UTC)
    assert not await tracker.trusted("pair:z", now)
    await tip(tracker, "pair:z", now)
    await tip(tracker, "pair:z", now + timedelta(seconds=11))  # level 2
    await tracker.forgive("pair:z", now + timedelta(seconds=12))
    assert await tracker.blocked_until("pair:z", now + timedelta(seconds=12)) is None
    assert await tracker.trusted("pair:z", now + timedelta(seconds=12))
    await tracker.strike("pair:z", now + timedelta(seconds=13))
    await tracker.forgive("pair:z", now + timedelta(seconds=14))
    again = now + timedelta(seconds=15)
    assert await tracker.strike("pair:z", again) is None
    assert await tracker.strike("pair:z", again) is None, "the strike before the forgiveness still counted"
    assert await tracker.strike("pair:z", again) == again + ESCALATING.block, "the escalation survived"
    assert not await tracker.trusted("pair:z", now + timedelta(seconds=14) + ESCALATING.trust)
    assert not await tracker.trusted("pair:other", now)


async def test_forgiving_under_a_policy_without_trust_trusts_nobody(tracker: AbuseTracker) -> None:
    now = datetime.now(UTC)
    await tip(tracker, "sub:t", now)
    await tracker.forgive("sub:t", now)
    assert await tracker.blocked_until("sub:t", now) is None
    assert not await tracker.trusted("sub:t", now)


async def test_concurrent_strikes_tip_once_per_policy_count(make_tracker: Any) -> None:
    """Several processes striking at once (Redis: one script per strike, atomic) start exactly one
    block per ``strikes`` and skip no level."""
    tracker = make_tracker(ESCALATING)
    now = datetime.now(UTC)
    answers = await asyncio.gather(*(tracker.strike("pair:c", now) for _ in range(9)))
    tips = sorted(a for a in answers if a is not None)
    assert tips == [now + timedelta(seconds=10), now + timedelta(seconds=20), now + timedelta(seconds=40)]


async def test_trackers_of_two_processes_share_redis(redis_url: str) -> None:
    first, second = create_redis(redis_url), create_redis(redis_url)
    try:
        key = f"pair:{uuid.uuid4().hex}"
        a, b = RedisAbuseTracker(first, ESCALATING), RedisAbuseTracker(second, ESCALATING)
        now = datetime.now(UTC)
        await a.strike(key, now)
        await b.strike(key, now)
        until = await a.strike(key, now)
        assert until is not None and await b.blocked_until(key, now) == until
        await b.forgive(key, now)
        assert await a.blocked_until(key, now) is None and await a.trusted(key, now)
    finally:
        await first.aclose()
        await second.aclose()


async def test_the_memory_tracker_stays_bounded_and_keeps_recent_offenders() -> None:
    tracker = MemoryAbuseTracker(ESCALATING, max_keys=50)
    now = datetime.now(UTC)
    for n in range(500):  # an attacker inventing client ids
        await tracker.strike(f"pair:invented-{n}", now)
        assert tracker.keys_held <= 50
    until = await tip(tracker, "pair:recent", now)
    assert until is not None and await tracker.blocked_until("pair:recent", now) == until
    await tracker.forgive("pair:recent", now)
    assert await tracker.trusted("pair:recent", now) and tracker.keys_held <= 50


async def test_idle_keys_are_swept_before_any_live_one_is_dropped() -> None:
    tracker = MemoryAbuseTracker(POLICY, max_keys=10)
    now = datetime.now(UTC)
    until = await tip(tracker, "sub:blocked", now)
    for n in range(9):
        await tracker.strike(f"sub:old-{n}", now - timedelta(minutes=10))  # already out of the window
    await tracker.strike("sub:new", now)
    assert tracker.keys_held <= 10
    assert await tracker.blocked_until("sub:blocked", now) == until


async def test_a_strike_dated_earlier_never_shortens_a_block(make_tracker: Any) -> None:
    """Processes' clocks differ: one that is behind must not cut short a block another one set."""
    tracker = make_tracker(ESCALATING)
    now = datetime.now(UTC)
    until = await tip(tracker, "pair:skew", now)
    assert until == now + ESCALATING.block
    behind = now - timedelta(seconds=15)  # its second block (20 s) would end 5 s before the first
    assert await tip(tracker, "pair:skew", behind) == until
    assert await tracker.blocked_until("pair:skew", behind) == until


async def test_forgiven_keys_are_bounded_too() -> None:
    tracker = MemoryAbuseTracker(ESCALATING, max_keys=10)
    now = datetime.now(UTC)
    for n in range(50):
        await tracker.forgive(f"pair:ok-{n}", now)
        assert tracker.keys_held <= 10
    assert await tracker.trusted("pair:ok-49", now)
