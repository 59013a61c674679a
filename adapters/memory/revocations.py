"""Revoked token ids in a dict, each forgotten once the token it names would have expired anyway."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import UTC, datetime

from domain.audit import RevocationList


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MemoryRevocationList(RevocationList):
    """An id is revoked while ``clock() < expires_at``. Expired entries leave on the next call,
    oldest first through a heap, so memory stays bounded by the tokens still alive."""

    def __init__(self, clock: Callable[[], datetime] = _utc_now) -> None:
        self._clock = clock
        self._expiries: dict[str, datetime] = {}
        self._queue: list[tuple[datetime, str]] = []

    async def revoke(self, token_id: str, expires_at: datetime) -> None:
        now = self._clock()
        self._forget_expired(now)
        if expires_at <= now:
            return
        current = self._expiries.get(token_id)
        if current is None or expires_at > current:
            self._expiries[token_id] = expires_at
            heapq.heappush(self._queue, (expires_at, token_id))

    async def revoked_until(self, token_id: str) -> datetime | None:
        now = self._clock()
        self._forget_expired(now)
        expires_at = self._expiries.get(token_id)
        return expires_at if expires_at is not None and now < expires_at else None

    def forget(self, token_id: str) -> None:
        """Drops one id at once (its heap entry leaves later, harmlessly)."""
        self._expiries.pop(token_id, None)

    def clear(self) -> None:
        self._expiries.clear()
        self._queue.clear()

    def __len__(self) -> int:
        return len(self._expiries)

    def _forget_expired(self, now: datetime) -> None:
        while self._queue and self._queue[0][0] <= now:
            expires_at, token_id = heapq.heappop(self._queue)
            if self._expiries.get(token_id) == expires_at:
                del self._expiries[token_id]
