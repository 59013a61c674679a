"""Where a measured stretch of ours spent its time: each MongoDB command's round trips (by command
and collection, as the driver times them) and this process's own CPU.

The container's client already carries the app's ``DriverMonitor``; for the length of a ``with``
block its command events are also summed here, so no second client and no other listener is
needed. Client CPU and round trips do not quite add up to the wall time: what is left is waiting
that is neither (the event loop, the other core's work).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Breakdown:
    wall: float = 0.0
    cpu: float = 0.0
    seconds: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)

    @property
    def server(self) -> float:
        return sum(self.seconds.values())

    def describe(self, top: int = 5) -> str:
        if not self.wall:
            return "no breakdown"
        parts = [
            f"{name} {seconds:.2f} s/{self.calls[name]:,}" for name, seconds in self.seconds.most_common(top) if seconds
        ]
        return (
            f"round trips {self.server:.2f} s ({self.server / self.wall:.0%}: {', '.join(parts)}),"
            f" our CPU {self.cpu:.2f} s ({self.cpu / self.wall:.0%})"
        )


@contextlib.contextmanager
def breakdown(monitor: Any, into: Breakdown) -> Iterator[Breakdown]:
    """Sums the command events of ``monitor``'s client (see the module docstring) into ``into``."""
    pending: dict[int, str] = {}

    def started(event: Any) -> None:
        original[0](event)
        target = event.command.get(event.command_name)
        pending[event.request_id] = f"{event.command_name} {target}" if isinstance(target, str) else event.command_name

    def finished(event: Any) -> None:
        name = pending.pop(event.request_id, event.command_name)
        into.seconds[name] += event.duration_micros / 1e6
        into.calls[name] += 1

    original = (monitor.started, monitor.succeeded, monitor.failed)

    def succeeded(event: Any) -> None:
        original[1](event)
        finished(event)

    def failed(event: Any) -> None:
        original[2](event)
        finished(event)

    monitor.started, monitor.succeeded, monitor.failed = started, succeeded, failed
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield into
    finally:
        into.wall += time.perf_counter() - wall
        into.cpu += time.process_time() - cpu
        del monitor.started, monitor.succeeded, monitor.failed
