"""Pool and command statistics from PyMongo's own event listeners (no home-made pool).

The monitor keeps the numbers and tells its observers (the metrics adapter, wired in the
container) what changed; it never imports an exporter, so the driver events are counted once,
whatever exports them. Driver vocabulary (command names, checkout failure reasons) is folded into
small closed sets here, so that no exporter can grow a label without bound.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pymongo import monitoring

#: Commands worth a label of their own; any other name is reported as ``other``.
KNOWN_COMMANDS = frozenset(
    {
        "find",
        "getMore",
        "aggregate",
        "count",
        "distinct",
        "insert",
        "update",
        "delete",
        "findAndModify",
        "bulkWrite",
        "commitTransaction",
        "abortTransaction",
        "createIndexes",
        "listIndexes",
        "listCollections",
        "create",
        "collMod",
        "drop",
        "dropDatabase",
        "explain",
        "ping",
        "hello",
        "endSessions",
        "killCursors",
    }
)
#: PyMongo's checkout failure reasons, in the snake case of our labels.
CHECKOUT_FAILURE_REASONS = {
    monitoring.ConnectionCheckOutFailedReason.TIMEOUT: "timeout",
    monitoring.ConnectionCheckOutFailedReason.POOL_CLOSED: "pool_closed",
    monitoring.ConnectionCheckOutFailedReason.CONN_ERROR: "connection_error",
}


class DriverObserver(Protocol):
    """Told about every pool and command event that changes a number; called on driver threads."""

    def mongodb_command(self, command: str, seconds: float) -> None: ...

    def mongodb_pool(self, open_connections: int, in_use: int) -> None: ...

    def mongodb_checkout_failure(self, reason: str) -> None: ...


@dataclass
class PoolStatistics:
    connections_open: int = 0
    connections_in_use: int = 0
    checkout_failures: Counter[str] = field(default_factory=Counter)
    command_count: Counter[str] = field(default_factory=Counter)
    command_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    command_failures: Counter[str] = field(default_factory=Counter)


def command_label(name: str) -> str:
    return name if name in KNOWN_COMMANDS else "other"


class DriverMonitor(monitoring.ConnectionPoolListener, monitoring.CommandListener):
    """Listens to one client's pool and commands; callbacks run on driver threads, hence the lock."""

    def __init__(self, observers: list[DriverObserver] | None = None) -> None:
        self.stats = PoolStatistics()
        self._lock = threading.Lock()
        self.observers: list[DriverObserver] = list(observers or [])
        self.command_observers: list[Callable[[str, float], None]] = []

    # Connection pool events.
    def pool_created(self, event: monitoring.PoolCreatedEvent) -> None: ...
    def pool_ready(self, event: monitoring.PoolReadyEvent) -> None: ...
    def pool_cleared(self, event: monitoring.PoolClearedEvent) -> None: ...
    def pool_closed(self, event: monitoring.PoolClosedEvent) -> None: ...
    def connection_check_out_started(self, event: monitoring.ConnectionCheckOutStartedEvent) -> None: ...
    def connection_ready(self, event: monitoring.ConnectionReadyEvent) -> None: ...

    def connection_created(self, event: monitoring.ConnectionCreatedEvent) -> None:
        self._pool(opened=1)

    def connection_closed(self, event: monitoring.ConnectionClosedEvent) -> None:
        self._pool(opened=-1)

    def connection_checked_out(self, event: monitoring.ConnectionCheckedOutEvent) -> None:
        self._pool(in_use=1)

    def connection_checked_in(self, event: monitoring.ConnectionCheckedInEvent) -> None:
        self._pool(in_use=-1)

    def connection_check_out_failed(self, event: monitoring.ConnectionCheckOutFailedEvent) -> None:
        reason = CHECKOUT_FAILURE_REASONS.get(str(event.reason), "other")
        with self._lock:
            self.stats.checkout_failures[reason] += 1
            for observer in self.observers:
                observer.mongodb_checkout_failure(reason)

    def _pool(self, opened: int = 0, in_use: int = 0) -> None:
        # Observers are told under the lock, so a gauge never goes back to an older value.
        with self._lock:
            self.stats.connections_open += opened
            self.stats.connections_in_use += in_use
            for observer in self.observers:
                observer.mongodb_pool(self.stats.connections_open, self.stats.connections_in_use)

    # Command events.
    def started(self, event: monitoring.CommandStartedEvent) -> None: ...

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._record(event.command_name, event.duration_micros / 1e6, failed=False)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._record(event.command_name, event.duration_micros / 1e6, failed=True)

    def _record(self, name: str, seconds: float, failed: bool) -> None:
        command = command_label(name)
        with self._lock:
            self.stats.command_count[command] += 1
            self.stats.command_seconds[command] += seconds
            if failed:
                self.stats.command_failures[command] += 1
        for observer in self.observers:
            observer.mongodb_command(command, seconds)
        for callback in self.command_observers:
            callback(command, seconds)
