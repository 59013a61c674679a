"""Pool and command statistics from PyMongo's own event listeners (no home-made pool).

The metrics adapter reads these numbers; keeping them here means the driver events are counted
once, whatever exports them.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from pymongo import monitoring


@dataclass
class PoolStatistics:
    connections_open: int = 0
    connections_in_use: int = 0
    checkout_failures: Counter[str] = field(default_factory=Counter)
    command_count: Counter[str] = field(default_factory=Counter)
    command_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    command_failures: Counter[str] = field(default_factory=Counter)


class DriverMonitor(monitoring.ConnectionPoolListener, monitoring.CommandListener):
    """Listens to one client's pool and commands; callbacks run on driver threads, hence the lock."""

    def __init__(self) -> None:
        self.stats = PoolStatistics()
        self._lock = threading.Lock()
        self.command_observers: list[object] = []

    # Connection pool events.
    def pool_created(self, event: monitoring.PoolCreatedEvent) -> None: ...
    def pool_ready(self, event: monitoring.PoolReadyEvent) -> None: ...
    def pool_cleared(self, event: monitoring.PoolClearedEvent) -> None: ...
    def pool_closed(self, event: monitoring.PoolClosedEvent) -> None: ...
    def connection_check_out_started(self, event: monitoring.ConnectionCheckOutStartedEvent) -> None: ...
    def connection_ready(self, event: monitoring.ConnectionReadyEvent) -> None: ...

    def connection_created(self, event: monitoring.ConnectionCreatedEvent) -> None:
        with self._lock:
            self.stats.connections_open += 1

    def connection_closed(self, event: monitoring.ConnectionClosedEvent) -> None:
        with self._lock:
            self.stats.connections_open -= 1

    def connection_checked_out(self, event: monitoring.ConnectionCheckedOutEvent) -> None:
        with self._lock:
            self.stats.connections_in_use += 1

    def connection_checked_in(self, event: monitoring.ConnectionCheckedInEvent) -> None:
        with self._lock:
            self.stats.connections_in_use -= 1

    def connection_check_out_failed(self, event: monitoring.ConnectionCheckOutFailedEvent) -> None:
        with self._lock:
            self.stats.checkout_failures[str(event.reason)] += 1

    # Command events.
    def started(self, event: monitoring.CommandStartedEvent) -> None: ...

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._record(event.command_name, event.duration_micros / 1e6, failed=False)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._record(event.command_name, event.duration_micros / 1e6, failed=True)

    def _record(self, command: str, seconds: float, failed: bool) -> None:
        with self._lock:
            self.stats.command_count[command] += 1
            self.stats.command_seconds[command] += seconds
            if failed:
                self.stats.command_failures[command] += 1
        for observer in self.command_observers:
            observer(command, seconds)  # type: ignore[operator]
