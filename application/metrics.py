"""What the use cases report to operators; the Prometheus adapter turns it into CONTRACT.md 5 metrics.

A port, so that the application never imports prometheus_client and tests can count events in
memory.
"""

from __future__ import annotations

from typing import Protocol


class SecurityMetrics(Protocol):
    def authz_decision(self, decision: str) -> None: ...

    def auth_failure(self, reason: str) -> None: ...

    def threat_detected(self, kind: str) -> None: ...


class NoMetrics:
    """For callers that do not export metrics (a CLI command, a unit test)."""

    def authz_decision(self, decision: str) -> None:
        return None

    def auth_failure(self, reason: str) -> None:
        return None

    def threat_detected(self, kind: str) -> None:
        return None


class CacheMetrics(Protocol):
    """Cache effectiveness: ``result`` is ``hit`` or ``miss``; errors are counted apart."""

    def cache_request(self, result: str) -> None: ...

    def cache_error(self) -> None: ...


class NoCacheMetrics:
    def cache_request(self, result: str) -> None:
        return None

    def cache_error(self) -> None:
        return None


class IngestionMetrics(Protocol):
    """What an ingestion run reports when it ends.

    ``outcome`` is one of the run report counts (``created``, ``updated``, ``unchanged``,
    ``invalid``); ``status`` is the run's final status (``succeeded``, ``failed``, ``rejected``,
    ``rolled_back``). Reported once per run, so a pipeline never pays a call per row.
    """

    def ingestion_rows(self, outcome: str, count: int) -> None: ...

    def ingestion_run(self, status: str, seconds: float) -> None: ...

    def runs_unfinished(self, status: str, count: int) -> None:
        """How many runs are ``queued`` or ``running`` in the run store, as a sweep last counted them."""
        ...


class NoIngestionMetrics:
    def ingestion_rows(self, outcome: str, count: int) -> None:
        return None

    def ingestion_run(self, status: str, seconds: float) -> None:
        return None

    def runs_unfinished(self, status: str, count: int) -> None:
        return None
