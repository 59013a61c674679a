"""Abuse policy: a caller that trips threat detection again and again is shut out for a while.

The policy (how many strikes, in what window, for how long) is domain; counting is an adapter
(in-process memory, or Redis so that every service process sees the same strikes).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class AbusePolicy:
    strikes: int = 5
    window: timedelta = timedelta(minutes=1)
    block: timedelta = timedelta(minutes=5)


DEFAULT_ABUSE_POLICY = AbusePolicy()


class AbuseTracker(abc.ABC):
    @abc.abstractmethod
    async def strike(self, key: str, now: datetime) -> datetime | None:
        """Counts one detection for ``key``; returns the end of its block when this one tips it over."""

    @abc.abstractmethod
    async def blocked_until(self, key: str, now: datetime) -> datetime | None:
        """When ``key`` may call again, or None when it is not blocked."""
