"""One asyncio Redis client per process, built from ``EYEWEAR_REDIS_URL``; connects lazily."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis


def create_redis(url: str) -> Any:
    return Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=30)
