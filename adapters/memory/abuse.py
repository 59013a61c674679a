"""In-process strike counting (each service process counts its own; Redis shares them).

Also the Redis tracker's fallback while Redis is down. No ``await`` happens inside a method, so each
one is atomic on its event loop without a lock. The state is bounded: an attacker inventing client
ids or addresses creates keys, so idle keys are swept and, past ``max_keys``, the least recently
touched are dropped (losing an offender's count is better than losing the process).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from domain.abuse import DEFAULT_ABUSE_POLICY, AbusePolicy, AbuseTracker, block_length

DEFAULT_MAX_KEYS = 100_000


@dataclass(slots=True)
class _Record:
    strikes: deque[datetime] = field(default_factory=deque)
    blocked: datetime | None = None
    level: int = 0
    last_block_end: datetime | None = None
    trusted: datetime | None = None


class MemoryAbuseTracker(AbuseTracker):
    def __init__(self, policy: AbusePolicy = DEFAULT_ABUSE_POLICY, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.policy = policy
        self.max_keys = max_keys
        self._records: dict[str, _Record] = {}

    def _touch(self, key: str) -> _Record:
        """The key's record (a new one if need be), moved to the most recently used end: dicts keep
        insertion order, which is what ``_shrink`` drops from."""
        record = self._records[key] = self._records.pop(key, None) or _Record()
        return record

    async def strike(self, key: str, now: datetime) -> datetime | None:
        record = self._touch(key)
        record.strikes.append(now)
        while record.strikes and record.strikes[0] <= now - self.policy.window:
            record.strikes.popleft()
        tipped = None
        if len(record.strikes) >= self.policy.strikes:
            record.strikes.clear()
            remembered = record.last_block_end is not None and now < record.last_block_end + self.policy.memory
            record.level = record.level + 1 if remembered else 1
            until = now + block_length(self.policy, record.level)
            if record.blocked is not None and record.blocked > until:
                until = record.blocked  # a strike dated earlier (another clock) never shortens a block
            record.blocked = record.last_block_end = tipped = until
        if len(self._records) > self.max_keys:
            self._shrink(now)
        return tipped

    async def blocked_until(self, key: str, now: datetime) -> datetime | None:
        record = self._records.get(key)
        if record is None or record.blocked is None:
            return None
        if record.blocked <= now:
            record.blocked = None
            return None
        return record.blocked

    async def forgive(self, key: str, now: datetime) -> None:
        self._records.pop(key, None)
        if self.policy.trust:
            self._touch(key).trusted = now + self.policy.trust
            if len(self._records) > self.max_keys:
                self._shrink(now)

    async def trusted(self, key: str, now: datetime) -> bool:
        record = self._records.get(key)
        return record is not None and record.trusted is not None and record.trusted > now

    def _idle(self, record: _Record, now: datetime) -> bool:
        return (
            not (record.strikes and record.strikes[-1] > now - self.policy.window)
            and (record.blocked is None or record.blocked <= now)
            and (record.last_block_end is None or record.last_block_end + self.policy.memory <= now)
            and (record.trusted is None or record.trusted <= now)
        )

    def _shrink(self, now: datetime) -> None:
        """Sweeps idle keys, then drops the least recently touched down to 90 % of ``max_keys``, so
        that the O(n) sweep runs once per 10 % growth at most."""
        for key in [key for key, record in self._records.items() if self._idle(record, now)]:
            del self._records[key]
        excess = len(self._records) - self.max_keys * 9 // 10
        for key in list(self._records)[: max(0, excess)]:
            del self._records[key]

    @property
    def keys_held(self) -> int:
        """How many keys have state (not ``__len__``: an empty tracker must not be falsy)."""
        return len(self._records)
