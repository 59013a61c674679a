"""The one AsyncMongoClient of a process, built from settings; its pool is PyMongo's own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from adapters.mongo.monitoring import DriverMonitor


@dataclass(frozen=True)
class MongoOptions:
    max_pool_size: int = 100
    min_pool_size: int = 0
    max_idle_ms: int = 300_000
    wait_queue_timeout_ms: int = 10_000
    timeout_ms: int = 10_000
    server_selection_timeout_ms: int = 10_000


def create_client(
    url: str,
    options: MongoOptions,
    monitor: DriverMonitor | None = None,
    listeners: Sequence[monitoring.CommandListener] = (),
) -> AsyncMongoClient[Any]:
    """Connects lazily: building a client never blocks, the first command does."""
    return AsyncMongoClient(
        url,
        maxPoolSize=options.max_pool_size,
        minPoolSize=options.min_pool_size,
        maxIdleTimeMS=options.max_idle_ms,
        waitQueueTimeoutMS=options.wait_queue_timeout_ms,
        timeoutMS=options.timeout_ms,
        serverSelectionTimeoutMS=options.server_selection_timeout_ms,
        tz_aware=True,
        appname="eyewear-catalog",
        event_listeners=[*([monitor] if monitor else []), *listeners],
    )
