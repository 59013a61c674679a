"""Prometheus metrics with the names of CONTRACT.md section 5, in a registry of their own.

One registry per application instance (not the global default), so that several apps in one
process (tests, the benchmark) never collide on registration. Labels stay low-cardinality:
reasons, kinds, decisions, routes and commands come from closed sets, never from input. Label
values of closed sets are created up front, so a counter exists at 0 before its first event and
``rate()`` and alerts see the first increment.

Several worker processes: set ``PROMETHEUS_MULTIPROC_DIR`` (an empty, writable directory) before
the processes start; each then writes its values there and ``exposition()`` merges every
process's files (docs/operations.md).
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from application.metrics import CacheMetrics, IngestionMetrics, SecurityMetrics

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Request latency buckets; 5 ms, 25 ms, 100 ms and 300 ms are SLO edges.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
#: MongoDB command buckets: finer at the bottom, where an indexed read lands.
MONGODB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.3, 1.0, 2.5, 10.0)
#: Ingestion runs last from a second (a small feed) to many minutes (a full catalog).
INGESTION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

CACHE_RESULTS = ("hit", "miss")
POOL_STATES = ("open", "in_use", "idle")
CHECKOUT_FAILURE_REASONS = ("timeout", "pool_closed", "connection_error", "other")
INGESTION_OUTCOMES = ("created", "updated", "unchanged", "invalid")
INGESTION_STATUSES = ("succeeded", "failed", "rejected", "rolled_back")
UNFINISHED_STATUSES = ("queued", "running")


class PrometheusMetrics(SecurityMetrics, CacheMetrics, IngestionMetrics):
    """Every port of application.metrics, the HTTP middleware's and the driver monitor's, in one place."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.auth_failures = Counter(
            "eyewear_auth_failures", "Requests refused for want of a valid token", ["reason"], registry=r
        )
        self.authz_decisions = Counter("eyewear_authz_decisions", "Authorization decisions", ["decision"], registry=r)
        self.threats = Counter("eyewear_threats_detected", "Threats detected in requests", ["kind"], registry=r)

        self.http_requests = Counter(
            "eyewear_http_requests", "HTTP requests by route template", ["method", "route", "status"], registry=r
        )
        self.http_duration = Histogram(
            "eyewear_http_request_duration_seconds",
            "HTTP request latency, first byte in to last byte out",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )

        self.mongodb_duration = Histogram(
            "eyewear_mongodb_command_duration_seconds",
            "MongoDB command round trips as the driver measured them",
            ["command"],
            buckets=MONGODB_BUCKETS,
            registry=r,
        )
        self.mongodb_pool_connections = Gauge(
            "eyewear_mongodb_pool_connections",
            "Pooled MongoDB connections: open = in_use + idle",
            ["state"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.mongodb_checkout_failures = Counter(
            "eyewear_mongodb_pool_checkout_failures",
            "Connection checkouts that failed (timeout: the pool was exhausted)",
            ["reason"],
            registry=r,
        )

        self.cache_requests = Counter("eyewear_cache_requests", "Cache look-ups by result", ["result"], registry=r)
        self.cache_errors = Counter("eyewear_cache_errors", "Cache operations that failed", registry=r)

        self.ingestion_row_counts = Counter(
            "eyewear_ingestion_rows", "Feed rows by what became of them", ["outcome"], registry=r
        )
        self.ingestion_runs = Counter("eyewear_ingestion_runs", "Finished ingestion runs", ["status"], registry=r)
        self.ingestion_duration = Histogram(
            "eyewear_ingestion_duration_seconds", "Ingestion run duration", buckets=INGESTION_BUCKETS, registry=r
        )
        self.ingestion_unfinished = Gauge(
            "eyewear_ingestion_runs_unfinished",
            "Runs queued or running in the run store, as this process's last sweep counted them",
            ["status"],
            registry=r,
            multiprocess_mode="max",  # every process counts the same shared store
        )
        self.audit_journal_pending = Gauge(
            "eyewear_audit_journal_pending_records",
            "Audit records in this process's journal not yet in MongoDB",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._preset()

    def _child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, remembered: looked up on every request, and the label
        values are small closed sets (CONTRACT 5), so the map stays small."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def _preset(self) -> None:
        for result in CACHE_RESULTS:
            self.cache_requests.labels(result=result)
        for state in POOL_STATES:
            self.mongodb_pool_connections.labels(state=state).set(0)
        for reason in CHECKOUT_FAILURE_REASONS:
            self.mongodb_checkout_failures.labels(reason=reason)
        for outcome in INGESTION_OUTCOMES:
            self.ingestion_row_counts.labels(outcome=outcome)
        for status in INGESTION_STATUSES:
            self.ingestion_runs.labels(status=status)
        for status in UNFINISHED_STATUSES:
            self.ingestion_unfinished.labels(status=status).set(0)
        self.audit_journal_pending.set(0)

    # SecurityMetrics
    def authz_decision(self, decision: str) -> None:
        self._child(self.authz_decisions, decision).inc()

    def auth_failure(self, reason: str) -> None:
        self._child(self.auth_failures, reason).inc()

    def threat_detected(self, kind: str) -> None:
        self._child(self.threats, kind).inc()

    # CacheMetrics
    def cache_request(self, result: str) -> None:
        self._child(self.cache_requests, result).inc()

    def cache_error(self) -> None:
        self.cache_errors.inc()

    # IngestionMetrics
    def ingestion_rows(self, outcome: str, count: int) -> None:
        self._child(self.ingestion_row_counts, outcome).inc(count)

    def ingestion_run(self, status: str, seconds: float) -> None:
        self._child(self.ingestion_runs, status).inc()
        self.ingestion_duration.observe(seconds)

    def runs_unfinished(self, status: str, count: int) -> None:
        self._child(self.ingestion_unfinished, status).set(count)

    # The audit journal's backlog (adapters.files.audit_journal)
    def audit_backlog(self, records: int) -> None:
        self.audit_journal_pending.set(records)

    # The HTTP middleware's port (entrypoints.http.metrics_middleware.HttpMetrics)
    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._child(self.http_requests, method, route, str(status)).inc()
        self._child(self.http_duration, method, route).observe(seconds)

    # The driver monitor's observer (adapters.mongo.monitoring.DriverObserver)
    def mongodb_command(self, command: str, seconds: float) -> None:
        self._child(self.mongodb_duration, command).observe(seconds)

    def mongodb_pool(self, open_connections: int, in_use: int) -> None:
        self._child(self.mongodb_pool_connections, "open").set(open_connections)
        self._child(self.mongodb_pool_connections, "in_use").set(in_use)
        self._child(self.mongodb_pool_connections, "idle").set(max(open_connections - in_use, 0))

    def mongodb_checkout_failure(self, reason: str) -> None:
        self._child(self.mongodb_checkout_failures, reason).inc()

    def exposition(self) -> bytes:
        """This process's registry; with PROMETHEUS_MULTIPROC_DIR, the merged values of every worker."""
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:
            merged = CollectorRegistry()
            MultiProcessCollector(merged, path=directory)
            return generate_latest(merged)
        return generate_latest(self.registry)
