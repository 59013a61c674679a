"""A clock tests can set and advance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.ports import Clock, truncate_to_millis


class FixedClock(Clock):
    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(milliseconds=1)) -> None:
        self.current = truncate_to_millis(start or datetime(2026, 1, 1, tzinfo=UTC))
        self.step = step

    def now(self) -> datetime:
        """Every call moves time on by ``step``, so successive writes are strictly ordered."""
        moment = self.current
        self.current = truncate_to_millis(moment + self.step)
        return moment

    def advance(self, seconds: float) -> None:
        self.current = truncate_to_millis(self.current + timedelta(seconds=seconds))
