"""Strike counting in Redis, so every service process sees the same offenders.

One key holds a key's recent strikes (a sorted set scored by time: a sliding window, as in the
memory twin), one its block, one its escalation level, one its good standing. A strike is one Lua
script: counting, blocking and escalating happen atomically, so two processes striking at once
cannot both start a block or skip a level. Times are the caller's ``now`` in microseconds (exact in
Lua's doubles until the year 2255); Redis expiry only collects what is no longer needed.

A Redis outage must not fail the request that is being counted. Without a fallback a strike is
dropped and nobody is blocked (the threat screen's choice). With one (the token endpoint's: the
memory tracker), every call goes to it while Redis fails, so each process goes on throttling on its
own (limits per process instead of shared), and blocks it set then still hold after Redis is back.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.exceptions import RedisError

from domain.abuse import DEFAULT_ABUSE_POLICY, AbusePolicy, AbuseTracker

PREFIX = "eyewear:abuse:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_FAILURES = (RedisError, OSError)

# KEYS: strikes, blocked, level. ARGV: now, window, strikes, block, cap, growth, memory (µs), member.
# The level hash keeps the level and the end of the last block; it is forgotten ``memory`` after it.
_STRIKE = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[8])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then return false end
redis.call('DEL', KEYS[1])
local block, cap, growth, memory = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local level = 1
local last = redis.call('HMGET', KEYS[3], 'level', 'end')
if last[1] and now < tonumber(last[2]) + memory then level = tonumber(last[1]) + 1 end
local length = math.min(block * growth ^ math.min(level - 1, 64), cap)
local ends = now + length
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current > ends then ends = current end
redis.call('SET', KEYS[2], string.format('%.0f', ends), 'PX', math.ceil((ends - now) / 1000))
redis.call('HSET', KEYS[3], 'level', level, 'end', string.format('%.0f', ends))
redis.call('PEXPIRE', KEYS[3], math.ceil((ends - now + memory) / 1000))
return string.format('%.0f', ends)
"""


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


def _moment(micros: Any) -> datetime:
    return _EPOCH + timedelta(microseconds=int(micros.decode() if isinstance(micros, bytes) else micros))


def _us(span: timedelta) -> int:
    return span // _US


class RedisAbuseTracker(AbuseTracker):
    def __init__(
        self, redis: Any, policy: AbusePolicy = DEFAULT_ABUSE_POLICY, fallback: AbuseTracker | None = None
    ) -> None:
        self.redis = redis
        self.policy = policy
        self.fallback = fallback
        self._strike = redis.register_script(_STRIKE)

    def _keys(self, key: str) -> tuple[str, str, str, str]:
        return (f"{PREFIX}strikes:{key}", f"{PREFIX}blocked:{key}", f"{PREFIX}level:{key}", f"{PREFIX}trusted:{key}")

    async def strike(self, key: str, now: datetime) -> datetime | None:
        strikes, blocked, level, _ = self._keys(key)
        p = self.policy
        args = [_micros(now), _us(p.window), p.strikes, _us(p.block), _us(p.cap), p.growth, _us(p.memory)]
        try:
            ends = await self._strike(keys=[strikes, blocked, level], args=[*args, os.urandom(8).hex()])
        except _FAILURES:
            return await self.fallback.strike(key, now) if self.fallback is not None else None
        return _moment(ends) if ends is not None else None

    async def blocked_until(self, key: str, now: datetime) -> datetime | None:
        """The later of Redis's block and the fallback's (a block set during an outage still holds)."""
        held = await self.fallback.blocked_until(key, now) if self.fallback is not None else None
        try:
            stored = await self.redis.get(self._keys(key)[1])
        except _FAILURES:
            return held
        shared = _moment(stored) if stored is not None else None
        if shared is None or shared <= now:
            return held
        return shared if held is None or shared > held else held

    async def forgive(self, key: str, now: datetime) -> None:
        if self.fallback is not None:
            await self.fallback.forgive(key, now)
        strikes, blocked, level, trusted = self._keys(key)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(strikes, blocked, level, trusted)
                if self.policy.trust:
                    until = now + self.policy.trust
                    pipe.set(trusted, _micros(until), px=math.ceil(self.policy.trust.total_seconds() * 1000))
                await pipe.execute()
        except _FAILURES:
            return

    async def trusted(self, key: str, now: datetime) -> bool:
        if self.fallback is not None and await self.fallback.trusted(key, now):
            return True
        try:
            stored = await self.redis.get(self._keys(key)[3])
        except _FAILURES:
            return False
        return stored is not None and _moment(stored) > now
