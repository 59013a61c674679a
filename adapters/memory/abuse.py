"""In-process strike counting (each service process counts its own; Redis shares them)."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from datetime import datetime

from domain.abuse import DEFAULT_ABUSE_POLICY, AbusePolicy, AbuseTracker


class MemoryAbuseTracker(AbuseTracker):
    def __init__(self, policy: AbusePolicy = DEFAULT_ABUSE_POLICY) -> None:
        self.policy = policy
        self._strikes: dict[str, deque[datetime]] = defaultdict(deque)
        self._blocked: dict[str, datetime] = {}
        self._lock = asyncio.Lock()

    async def strike(self, key: str, now: datetime) -> datetime | None:
        async with self._lock:
            recent = self._strikes[key]
            recent.append(now)
            while recent and recent[0] <= now - self.policy.window:
                recent.popleft()
            if len(recent) >= self.policy.strikes:
                recent.clear()
                self._blocked[key] = now + self.policy.block
                return self._blocked[key]
            return None

    async def blocked_until(self, key: str, now: datetime) -> datetime | None:
        until = self._blocked.get(key)
        if until is not None and until <= now:
            del self._blocked[key]
            return None
        return until
